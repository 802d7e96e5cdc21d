//! The fused E-step built a second time with AVX2 enabled (4 lanes instead
//! of SSE2's 2), chosen at run time. Only AVX2 is enabled, never FMA, and the
//! code never calls mul_add: LLVM does not contract a * b + c on its own, so
//! both builds do the same IEEE operations and give bitwise equal results
//! (tested in `tests.rs`).
#![allow(unsafe_code)] // the one call into a #[target_feature] function

use super::Data;
use super::estep::{Gauss, Presample, Work};
use super::fused::{Suff, Want, e_step_portable};

/// True when this CPU runs AVX2 (the check is cached by std).
pub fn avx2_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The fused E-step through the AVX2 build, or the portable one when the
/// CPU lacks AVX2.
#[allow(clippy::too_many_arguments)]
pub fn e_step_avx2(
    data: &Data,
    start: &[f64],
    a: &[f64],
    means: &[f64],
    gauss: &Gauss,
    ws: &mut Work,
    pre: Option<&Presample>,
    want: Want,
    gamma: Option<&mut [f64]>,
) -> Option<Suff> {
    #[cfg(target_arch = "x86_64")]
    if avx2_available() {
        // SAFETY: `avx2_body` only needs AVX2, and the CPU was just checked
        // to have it; the function itself is safe Rust.
        return unsafe { avx2_body(data, start, a, means, gauss, ws, pre, want, gamma) };
    }
    e_step_portable(data, start, a, means, gauss, ws, pre, want, gamma)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
fn avx2_body(
    data: &Data,
    start: &[f64],
    a: &[f64],
    means: &[f64],
    gauss: &Gauss,
    ws: &mut Work,
    pre: Option<&Presample>,
    want: Want,
    gamma: Option<&mut [f64]>,
) -> Option<Suff> {
    e_step_portable(data, start, a, means, gauss, ws, pre, want, gamma)
}
