//! Batch evaluation of the built-in objectives built a second time with AVX2
//! enabled (4 lanes instead of SSE2's 2), chosen at run time. Never FMA, and
//! no mul_add: both builds do the same IEEE operations, so the values are
//! bitwise equal (tested in `functions.rs`).
#![allow(unsafe_code)] // the one call into a #[target_feature] function

use super::functions::{Builtin, serial_batch_portable};

/// `out[k]` = f(row k of `xs`) on this thread, through the AVX2 build when
/// the CPU has it.
pub fn serial_batch(f: Builtin, xs: &[f64], d: usize, out: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::has_avx2() {
        // SAFETY: the CPU was just checked to have AVX2, the only feature the
        // body is built with; the body itself is safe Rust.
        return unsafe { serial_batch_avx2(f, xs, d, out) };
    }
    serial_batch_portable(f, xs, d, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn serial_batch_avx2(f: Builtin, xs: &[f64], d: usize, out: &mut [f64]) {
    serial_batch_portable(f, xs, d, out);
}
