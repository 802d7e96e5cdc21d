//! The six benchmark functions of docs/compute.md §4 (minimum 0 for each).

use crate::error::{Result, invalid};
use std::f64::consts::{E, PI};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Sphere,
    Rosenbrock,
    Rastrigin,
    Ackley,
    Griewank,
    Schwefel,
}

pub const NAMES: [&str; 6] = [
    "sphere",
    "rosenbrock",
    "rastrigin",
    "ackley",
    "griewank",
    "schwefel",
];

const SCHWEFEL_C: f64 = 418.982_887_272_433_8;

/// Taylor coefficients of cos(2πf) in f² and of sin(2πf)/f in f², |f| <= 1/8:
/// the first dropped terms are below 5e-17.
const COS_C: [f64; 9] = [
    1.0,
    -19.739_208_802_178_716,
    64.939_394_022_668_28,
    -85.456_817_206_693_71,
    60.244_641_371_876_64,
    -26.426_256_783_374_388,
    7.903_536_371_318_465,
    -1.714_390_711_088_671_1,
    0.282_005_968_455_791,
];
const SIN_C: [f64; 9] = [
    std::f64::consts::TAU,
    -41.341_702_240_399_755,
    81.605_249_276_075_04,
    -76.705_859_753_061_36,
    42.058_693_944_897_634,
    -15.094_642_576_822_984,
    3.819_952_584_848_280_3,
    -0.718_122_301_778_500_1,
    0.104_229_162_208_139_78,
];

/// Inputs up to this size take the fast cos(2πx) (the rounding trick needs |4x| < 2^51).
const COS2PI_MAX: f64 = 1e14;

/// Σ c_k z^k by Estrin's scheme (pairs, then pairs of pairs, ...): the
/// dependency chain is about log2(N) multiply-adds long, against N for Horner.
/// A few more operations, but measured no slower in batches and faster where
/// values come one at a time.
#[inline(always)]
fn poly<const N: usize>(c: &[f64; N], z: f64) -> f64 {
    let mut a = *c;
    let (mut m, mut p) = (N, z);
    while m > 1 {
        for k in 0..m.div_ceil(2) {
            a[k] = if 2 * k + 1 < m {
                a[2 * k] + a[2 * k + 1] * p
            } else {
                a[2 * k]
            };
        }
        m = m.div_ceil(2);
        p *= p;
    }
    a[0]
}

/// (sin 2πx, cos 2πx) for |x| <= COS2PI_MAX, branch-free so a loop of it
/// vectorises. The reduction is exact: q = round(4x) and f = x - q/4
/// (|f| <= 1/8) carry no rounding error, so unlike libm's cos(2π·x) the
/// argument is not rounded; each value is within about 2e-16 of the truth.
#[inline(always)]
pub fn sincos2pi(x: f64) -> (f64, f64) {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5·2^52: adding it rounds to an integer
    let t = x * 4.0 + MAGIC;
    let q = t - MAGIC;
    let f = x - q * 0.25;
    let k = t.to_bits() & 3; // q mod 4
    let z = f * f;
    let (c, s) = (poly(&COS_C, z).to_bits(), (f * poly(&SIN_C, z)).to_bits());
    // With θ = 2πf: cos(θ + kπ/2) = c, -s, -c, s and sin(θ + kπ/2) = s, c, -s, -c.
    let odd = (k & 1).wrapping_neg();
    let cos = ((s & odd) | (c & !odd)) ^ ((((k + 1) >> 1) & 1) << 63);
    let sin = ((c & odd) | (s & !odd)) ^ (((k >> 1) & 1) << 63);
    (f64::from_bits(sin), f64::from_bits(cos))
}

/// Taylor coefficients in z = b² of R(z) = cos(2πb) / (1/16 - b²), which has
/// no zero for |b| <= 1/4; the first dropped term is below 2e-18 of R.
const COS_R: [f64; 11] = [
    16.0,
    -59.827_340_834_859_48,
    81.792_851_004_941_06,
    -58.623_459_228_042_826,
    25.938_914_301_341_324,
    -7.797_479_712_529_167,
    1.696_906_540_628_820_2,
    -0.279_746_727_357_631_23,
    0.036_147_857_570_559_924,
    -0.003_759_737_151_771_980_4,
    0.000_321_552_782_528_943_9,
];

/// cos(2πx) for |x| <= COS2PI_MAX, branch-free so loops of it vectorise.
/// r = x - round(x) is exact; cos is even with period 1, and for |r| > 1/4
/// cos(2πr) = -cos(2π(1/2 - |r|)), where 1/2 - |r| is exact too. On
/// b in [0, 1/4], cos(2πb) = (1/4 - b)(1/4 + b) R(b²): the factor carries the
/// zero at 1/4 exactly, so the value has a small relative error everywhere
/// (within about 2e-16 of the truth, exact at multiples of 1/4), and unlike
/// libm's cos(2π·x) the argument is never rounded.
#[inline(always)]
pub fn cos2pi(x: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5·2^52: adding it rounds to an integer
    let q = (x + MAGIC) - MAGIC;
    let a = (x - q).abs();
    let flip = a > 0.25;
    let b = if flip { 0.5 - a } else { a };
    let z = b * b;
    let c = ((0.25 - b) * (0.25 + b)) * poly(&COS_R, z);
    if flip { -c } else { c }
}

/// Σ term(x_j) in index order, with the terms computed in small vectorisable
/// blocks. Every sum of `term`s here (per point and in `block_sums`) adds in
/// index order from 0.0, so a point's value is bitwise the same either way.
#[inline(always)]
fn term_sum(x: &[f64], term: impl Fn(f64) -> f64) -> f64 {
    let mut acc = 0.0;
    for chunk in x.chunks(16) {
        let mut terms = [0.0; 16];
        for (t, v) in terms.iter_mut().zip(chunk) {
            *t = term(*v);
        }
        for t in &terms[..chunk.len()] {
            acc += t;
        }
    }
    acc
}

#[inline(always)]
fn rastrigin_term(v: f64) -> f64 {
    v * v - 10.0 * cos2pi(v)
}

#[inline(always)]
fn square(v: f64) -> f64 {
    v * v
}

/// Values per block in `block_sums`.
const BLOCK: usize = 256;

/// out[i] = Σ_j term(x_ij) for the rows of `xs`, like `term_sum`: the terms of
/// whole blocks of rows come from one contiguous loop (full vector width), then
/// each row adds its own in index order (rows' sums overlap in the pipeline).
#[inline(always)]
fn block_sums(xs: &[f64], d: usize, out: &mut [f64], term: impl Fn(f64) -> f64 + Copy) {
    let per = BLOCK / d;
    if per < 2 {
        for (o, x) in out.iter_mut().zip(xs.chunks_exact(d)) {
            *o = term_sum(x, term);
        }
        return;
    }
    let mut buf = [0.0; BLOCK];
    for (o, rows) in out.chunks_mut(per).zip(xs.chunks(per * d)) {
        let terms = &mut buf[..rows.len()];
        for (t, v) in terms.iter_mut().zip(rows) {
            *t = term(*v);
        }
        for (o, r) in o.iter_mut().zip(terms.chunks_exact(d)) {
            let mut acc = 0.0;
            for t in r {
                acc += t;
            }
            *o = acc;
        }
    }
}

fn ackley(s2: f64, sc: f64, d: f64) -> f64 {
    -20.0 * (-0.2 * (s2 / d).sqrt()).exp() - (sc / d).exp() + 20.0 + E
}

/// Every |x_j| <= COS2PI_MAX (false for NaN), without a branch per value.
#[inline(always)]
fn fast_cos_ok(x: &[f64]) -> bool {
    x.iter().fold(true, |ok, v| ok & (v.abs() <= COS2PI_MAX))
}

impl Builtin {
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "sphere" => Self::Sphere,
            "rosenbrock" => Self::Rosenbrock,
            "rastrigin" => Self::Rastrigin,
            "ackley" => Self::Ackley,
            "griewank" => Self::Griewank,
            "schwefel" => Self::Schwefel,
            _ => {
                return Err(invalid(format!(
                    "unknown objective {name:?}; choose one of {}",
                    NAMES.join(", ")
                )));
            }
        })
    }

    /// The conventional search box (same for every coordinate).
    pub fn bounds(self) -> (f64, f64) {
        match self {
            Self::Sphere => (-100.0, 100.0),
            Self::Rosenbrock => (-30.0, 30.0),
            Self::Rastrigin => (-5.12, 5.12),
            Self::Ackley => (-32.768, 32.768),
            Self::Griewank => (-600.0, 600.0),
            Self::Schwefel => (-500.0, 500.0),
        }
    }

    #[inline]
    pub fn eval(self, x: &[f64]) -> f64 {
        let d = x.len() as f64;
        match self {
            Self::Sphere => x.iter().map(|v| v * v).sum(),
            Self::Rosenbrock => x
                .windows(2)
                .map(|w| 100.0 * (w[1] - w[0] * w[0]).powi(2) + (1.0 - w[0]).powi(2))
                .sum(),
            // NaN fails the size check and takes the libm path (NaN out).
            Self::Rastrigin if fast_cos_ok(x) => 10.0 * d + term_sum(x, rastrigin_term),
            Self::Rastrigin => {
                10.0 * d
                    + x.iter()
                        .map(|v| v * v - 10.0 * (2.0 * PI * v).cos())
                        .sum::<f64>()
            }
            Self::Ackley if fast_cos_ok(x) => ackley(term_sum(x, square), term_sum(x, cos2pi), d),
            Self::Ackley => {
                let sc = x.iter().map(|v| (2.0 * PI * v).cos()).sum::<f64>();
                ackley(term_sum(x, square), sc, d)
            }
            Self::Griewank => {
                let s = x.iter().map(|v| v * v).sum::<f64>() / 4000.0;
                let p: f64 = x
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (v / ((i + 1) as f64).sqrt()).cos())
                    .product();
                1.0 + s - p
            }
            Self::Schwefel => {
                SCHWEFEL_C * d - x.iter().map(|v| v * v.abs().sqrt().sin()).sum::<f64>()
            }
        }
    }
}

#[inline(always)]
fn serial(xs: &[f64], d: usize, out: &mut [f64], g: impl Fn(&[f64]) -> f64) {
    for (o, x) in out.iter_mut().zip(xs.chunks_exact(d)) {
        *o = g(x);
    }
}

/// Rastrigin or Ackley by blocks; a point with a huge or NaN coordinate is
/// evaluated again on the libm path.
#[inline(always)]
fn serial_cos_family(f: Builtin, xs: &[f64], d: usize, out: &mut [f64]) {
    let xs = &xs[..out.len() * d];
    let n = d as f64;
    if f == Builtin::Rastrigin {
        block_sums(xs, d, out, rastrigin_term);
        out.iter_mut().for_each(|o| *o += 10.0 * n);
    } else {
        let mut s2 = vec![0.0; out.len()];
        block_sums(xs, d, &mut s2, square);
        block_sums(xs, d, out, cos2pi);
        for (o, s2) in out.iter_mut().zip(s2) {
            *o = ackley(s2, *o, n);
        }
    }
    for (o, x) in out.iter_mut().zip(xs.chunks_exact(d)) {
        if !fast_cos_ok(x) {
            *o = f.eval(x);
        }
    }
}

/// One thread's share of a batch. Inlined into both builds of `simd::serial_batch`.
#[inline(always)]
pub(super) fn serial_batch_portable(f: Builtin, xs: &[f64], d: usize, out: &mut [f64]) {
    // One loop per function, so the match is not taken per point.
    match f {
        Builtin::Sphere => serial(xs, d, out, |x| Builtin::Sphere.eval(x)),
        Builtin::Rosenbrock => serial(xs, d, out, |x| Builtin::Rosenbrock.eval(x)),
        Builtin::Rastrigin | Builtin::Ackley => serial_cos_family(f, xs, d, out),
        Builtin::Griewank => serial(xs, d, out, |x| Builtin::Griewank.eval(x)),
        Builtin::Schwefel => serial(xs, d, out, |x| Builtin::Schwefel.eval(x)),
    }
}

/// Evaluate `n = out.len()` points stored row-major in `xs` on this thread.
pub fn eval_serial(f: Builtin, xs: &[f64], d: usize, out: &mut [f64]) {
    super::simd::serial_batch(f, xs, d, out);
}

/// Evaluate `n = out.len()` points stored row-major in `xs`, in parallel.
pub fn eval_batch(f: Builtin, xs: &[f64], d: usize, out: &mut [f64]) {
    use rayon::prelude::*;
    // Small batches, or a one-thread pool, run serially: no rayon bookkeeping.
    if out.len() < 128 || rayon::current_num_threads() == 1 {
        eval_serial(f, xs, d, out);
        return;
    }
    out.par_chunks_mut(64)
        .zip(xs.par_chunks(64 * d))
        .for_each(|(o, x)| super::simd::serial_batch(f, x, d, o));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optima_are_zero() {
        let d = 10;
        assert_eq!(Builtin::Sphere.eval(&vec![0.0; d]), 0.0);
        assert_eq!(Builtin::Rosenbrock.eval(&vec![1.0; d]), 0.0);
        assert!(Builtin::Rastrigin.eval(&vec![0.0; d]).abs() < 1e-12);
        assert!(Builtin::Ackley.eval(&vec![0.0; d]).abs() < 1e-12);
        assert!(Builtin::Griewank.eval(&vec![0.0; d]).abs() < 1e-12);
        assert!(Builtin::Schwefel.eval(&vec![420.968_746; d]).abs() < 1e-9 * d as f64);
        assert!(Builtin::parse("nope").is_err());
    }

    #[test]
    fn batches_equal_points_bitwise() {
        let all = [
            Builtin::Sphere,
            Builtin::Rosenbrock,
            Builtin::Rastrigin,
            Builtin::Ackley,
            Builtin::Griewank,
            Builtin::Schwefel,
        ];
        let mut rng = crate::rng::stream(5, crate::rng::purpose::MISC, 0);
        for d in [1, 3, 10, 30, 200] {
            let n = 301;
            let mut xs: Vec<f64> = (0..n * d)
                .map(|_| -6.0 + 12.0 * crate::rng::uniform(&mut rng))
                .collect();
            // A NaN row and a huge row take the per-point (libm) path.
            xs[7 * d] = f64::NAN;
            xs[12 * d + d / 2] = 3e15;
            for f in all {
                let want: Vec<f64> = xs.chunks_exact(d).map(|x| f.eval(x)).collect();
                let mut got = vec![0.0; n];
                eval_serial(f, &xs, d, &mut got);
                let same =
                    |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same(&want, &got), "{f:?} d={d}");
                let mut par = vec![0.0; n];
                eval_batch(f, &xs, d, &mut par);
                assert!(same(&want, &par), "{f:?} d={d} parallel");
                let mut portable = vec![0.0; n];
                serial_batch_portable(f, &xs, d, &mut portable);
                assert!(same(&want, &portable), "{f:?} d={d} portable");
            }
        }
    }

    #[test]
    fn cos2pi_matches_reduced_libm() {
        // Reference: libm on the exactly reduced argument r = x - round(x), |2πr| <= π.
        let mut worst: f64 = 0.0;
        for i in 0..200_001 {
            let x = -40.0 + 80.0 * i as f64 / 200_000.0 + 1e-7 * (i % 7) as f64;
            let want = (2.0 * PI * (x - x.round())).cos();
            worst = worst.max((cos2pi(x) - want).abs());
        }
        assert!(worst <= 1e-15, "{worst}");
        for (x, want) in [
            (0.0, 1.0),
            (0.25, 0.0),
            (0.5, -1.0),
            (-0.75, 0.0),
            (3.0, 1.0),
        ] {
            assert!((cos2pi(x) - want).abs() <= 1e-16, "{x}");
        }
        assert!(cos2pi(f64::NAN).is_nan() && cos2pi(f64::INFINITY).is_nan());
        for i in 0..20_001 {
            let x = -0.5 + i as f64 / 20_000.0;
            let want = (2.0 * PI * x).sin();
            assert!((sincos2pi(x).0 - want).abs() <= 1e-15, "{x}");
        }
        let big = [1e15, 2.0];
        assert!(Builtin::Rastrigin.eval(&big).is_finite());
    }
}
