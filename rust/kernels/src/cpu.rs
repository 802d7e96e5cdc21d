//! Run-time CPU checks for the kernels that are built twice: portable and AVX2.

/// True when this CPU runs AVX2 (std caches the check).
pub fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
