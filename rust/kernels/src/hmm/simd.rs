//! The fused E-step built a second time with AVX2 enabled (4 lanes instead
//! of SSE2's 2), chosen at run time. Only AVX2 is enabled, never FMA, and the
//! code never calls mul_add: LLVM does not contract a * b + c on its own, so
//! both builds do the same IEEE operations and give bitwise equal results
//! (tested in `tests.rs`).
#![allow(unsafe_code)] // the one call into a #[target_feature] function

use super::Data;
use super::estep::{Gauss, Presample, Work};
use super::fused;
use super::fused::{Acc, Back, SeqRows, Suff, Want, e_step_portable};
use crate::cpu::has_avx2;

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
    if has_avx2() {
        // SAFETY: `avx2_body` only needs AVX2, and the CPU was just checked
        // to have it; the function itself is safe Rust.
        return unsafe { avx2_body(data, start, a, means, gauss, ws, pre, want, gamma) };
    }
    e_step_portable::<false>(data, start, a, means, gauss, ws, pre, want, gamma)
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
    e_step_portable::<true>(data, start, a, means, gauss, ws, pre, want, gamma)
}

/// `fused::backward` for K <= 4 states in one AVX2 vector (P = 4) and d = 1
/// or 2, with the same operations in the same order; gives the inputs back
/// (Err) when it does not apply or the CPU lacks AVX2.
#[allow(clippy::type_complexity)]
pub(super) fn backward<'g, const K: usize, const P: usize, const D: usize>(
    rows: &SeqRows,
    ac: &[[f64; P]; K],
    acc: Acc<P>,
    gamma: Option<&'g mut [f64]>,
) -> Result<Back<K, P>, (Acc<P>, Option<&'g mut [f64]>)> {
    #[cfg(target_arch = "x86_64")]
    if P == 4 && K <= 4 && (D == 1 || D == 2) && has_avx2() {
        // SAFETY: the CPU was just checked to have AVX2; the body only reads
        // and writes through slices of checked length (see its comments).
        return Ok(unsafe { backward_body::<K, P, D>(rows, ac, acc, gamma) });
    }
    Err((acc, gamma))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn backward_body<const K: usize, const P: usize, const D: usize>(
    rows: &SeqRows,
    ac: &[[f64; P]; K],
    mut acc: Acc<P>,
    mut gamma: Option<&mut [f64]>,
) -> Back<K, P> {
    use std::arch::x86_64::*;
    // P == 4 here: every [f64; P] is exactly one __m256d.
    let load = |v: &[f64; P]| _mm256_set_pd(v[3], v[2], v[1], v[0]);
    let store = |v: __m256d| {
        let mut out = [0.0; P];
        // SAFETY: `out` holds P = 4 doubles, the width of one store.
        unsafe { _mm256_storeu_pd(out.as_mut_ptr(), v) };
        out
    };
    let row = |src: &[f64], t: usize| load(&fused::lanes::<K, P>(&src[t * K..(t + 1) * K]));
    let lane = |v: __m256d, j: usize| match j {
        0 => _mm256_permute4x64_pd::<0x00>(v),
        1 => _mm256_permute4x64_pd::<0x55>(v),
        2 => _mm256_permute4x64_pd::<0xAA>(v),
        _ => _mm256_permute4x64_pd::<0xFF>(v),
    };
    let d = rows.d;
    let len = rows.c.len();
    let acv: [__m256d; K] = std::array::from_fn(|j| load(&ac[j]));
    let (c0, c1) = (load(&acc.c[0]), load(&acc.c[1]));
    let mut nk = load(&acc.nk);
    let mut sx = [load(&acc.sx[0]), load(&acc.sx[1])];
    let mut ss = [load(&acc.ss[0]), load(&acc.ss[1]), load(&acc.ss[2])];
    let mut xs = [_mm256_setzero_pd(); K];
    let mut beta = load(&fused::lanes::<K, P>(&[1.0 / rows.tail; K]));
    let mut g = _mm256_setzero_pd();
    for t in (0..len).rev() {
        let at = row(rows.alpha, t);
        if t + 1 < len {
            let inv = rows.c[t + 1];
            let mut bn = row(rows.b, t + 1);
            if inv != 1.0 {
                bn = _mm256_mul_pd(bn, _mm256_set1_pd(inv));
            }
            let w = _mm256_mul_pd(bn, beta);
            let mut nb = _mm256_mul_pd(lane(beta, 0), _mm256_mul_pd(lane(bn, 0), acv[0]));
            for j in 1..K {
                let m = _mm256_mul_pd(lane(bn, j), acv[j]);
                nb = _mm256_add_pd(nb, _mm256_mul_pd(lane(beta, j), m));
            }
            for i in 0..K {
                xs[i] = _mm256_add_pd(xs[i], _mm256_mul_pd(lane(at, i), w));
            }
            beta = nb;
        }
        g = _mm256_mul_pd(at, beta);
        let x = &rows.x[t * d..(t + 1) * d];
        nk = _mm256_add_pd(nk, g);
        let x0 = _mm256_set1_pd(x[0]);
        sx[0] = _mm256_add_pd(sx[0], _mm256_mul_pd(g, x0));
        let z0 = _mm256_sub_pd(x0, c0);
        if D == 1 {
            ss[0] = _mm256_add_pd(ss[0], _mm256_mul_pd(_mm256_mul_pd(g, z0), z0));
        } else {
            let x1 = _mm256_set1_pd(x[1]);
            sx[1] = _mm256_add_pd(sx[1], _mm256_mul_pd(g, x1));
            let z1 = _mm256_sub_pd(x1, c1);
            ss[0] = _mm256_add_pd(ss[0], _mm256_mul_pd(_mm256_mul_pd(g, z0), z0));
            let gz1 = _mm256_mul_pd(g, z1);
            ss[1] = _mm256_add_pd(ss[1], _mm256_mul_pd(gz1, z0));
            ss[2] = _mm256_add_pd(ss[2], _mm256_mul_pd(gz1, z1));
        }
        if let Some(out) = gamma.as_deref_mut() {
            out[t * K..(t + 1) * K].copy_from_slice(&store(g)[..K]);
        }
    }
    acc.nk = store(nk);
    acc.sx = [store(sx[0]), store(sx[1])];
    acc.ss = [store(ss[0]), store(ss[1]), store(ss[2])];
    Back {
        xs: xs.map(store),
        acc,
        g: store(g),
        beta: store(beta),
    }
}
