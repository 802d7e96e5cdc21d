//! The six benchmark functions of COMPUTE-SPEC 4 (minimum 0 for each).

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

#[inline(always)]
fn horner(c: &[f64; 9], z: f64) -> f64 {
    let mut acc = c[8];
    for k in (0..8).rev() {
        acc = acc * z + c[k];
    }
    acc
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
    let (c, s) = (
        horner(&COS_C, z).to_bits(),
        (f * horner(&SIN_C, z)).to_bits(),
    );
    // With θ = 2πf: cos(θ + kπ/2) = c, -s, -c, s and sin(θ + kπ/2) = s, c, -s, -c.
    let odd = (k & 1).wrapping_neg();
    let cos = ((s & odd) | (c & !odd)) ^ ((((k + 1) >> 1) & 1) << 63);
    let sin = ((c & odd) | (s & !odd)) ^ (((k >> 1) & 1) << 63);
    (f64::from_bits(sin), f64::from_bits(cos))
}

/// cos(2πx), see `sincos2pi`.
#[inline(always)]
pub fn cos2pi(x: f64) -> f64 {
    sincos2pi(x).1
}

/// Σ (x_j² - 10 cos 2πx_j) in index order (so the sum is the plain loop's),
/// with the terms computed in small vectorisable blocks.
#[inline]
fn rastrigin_sum(x: &[f64]) -> f64 {
    let mut acc = 0.0;
    for chunk in x.chunks(16) {
        let mut terms = [0.0; 16];
        for (t, v) in terms.iter_mut().zip(chunk) {
            *t = v * v - 10.0 * cos2pi(*v);
        }
        for t in &terms[..chunk.len()] {
            acc += t;
        }
    }
    acc
}

/// Σ cos 2πx_j in index order, like `rastrigin_sum`.
#[inline]
fn cos2pi_sum(x: &[f64]) -> f64 {
    let mut acc = 0.0;
    for chunk in x.chunks(16) {
        let mut terms = [0.0; 16];
        for (t, v) in terms.iter_mut().zip(chunk) {
            *t = cos2pi(*v);
        }
        for t in &terms[..chunk.len()] {
            acc += t;
        }
    }
    acc
}

fn fast_cos_ok(x: &[f64]) -> bool {
    x.iter().fold(0.0_f64, |m, v| m.max(v.abs())) <= COS2PI_MAX
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
            Self::Rastrigin if fast_cos_ok(x) => 10.0 * d + rastrigin_sum(x),
            Self::Rastrigin => {
                10.0 * d
                    + x.iter()
                        .map(|v| v * v - 10.0 * (2.0 * PI * v).cos())
                        .sum::<f64>()
            }
            Self::Ackley => {
                let s2 = x.iter().map(|v| v * v).sum::<f64>() / d;
                let sc = if fast_cos_ok(x) {
                    cos2pi_sum(x)
                } else {
                    x.iter().map(|v| (2.0 * PI * v).cos()).sum::<f64>()
                } / d;
                -20.0 * (-0.2 * s2.sqrt()).exp() - sc.exp() + 20.0 + E
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

fn serial(xs: &[f64], d: usize, out: &mut [f64], g: impl Fn(&[f64]) -> f64) {
    for (o, x) in out.iter_mut().zip(xs.chunks_exact(d)) {
        *o = g(x);
    }
}

/// Evaluate `n = out.len()` points stored row-major in `xs`, in parallel.
pub fn eval_batch(f: Builtin, xs: &[f64], d: usize, out: &mut [f64]) {
    use rayon::prelude::*;
    // Small batches, or a one-thread pool, run serially: no rayon bookkeeping.
    if out.len() < 128 || rayon::current_num_threads() == 1 {
        // One loop per function, so the match is not taken per point.
        match f {
            Builtin::Sphere => serial(xs, d, out, |x| Builtin::Sphere.eval(x)),
            Builtin::Rosenbrock => serial(xs, d, out, |x| Builtin::Rosenbrock.eval(x)),
            Builtin::Rastrigin => serial(xs, d, out, |x| Builtin::Rastrigin.eval(x)),
            Builtin::Ackley => serial(xs, d, out, |x| Builtin::Ackley.eval(x)),
            Builtin::Griewank => serial(xs, d, out, |x| Builtin::Griewank.eval(x)),
            Builtin::Schwefel => serial(xs, d, out, |x| Builtin::Schwefel.eval(x)),
        }
        return;
    }
    out.par_iter_mut()
        .zip(xs.par_chunks(d))
        .with_min_len(64)
        .for_each(|(o, x)| *o = f.eval(x));
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
