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
            Self::Rastrigin => {
                10.0 * d
                    + x.iter()
                        .map(|v| v * v - 10.0 * (2.0 * PI * v).cos())
                        .sum::<f64>()
            }
            Self::Ackley => {
                let s2 = x.iter().map(|v| v * v).sum::<f64>() / d;
                let sc = x.iter().map(|v| (2.0 * PI * v).cos()).sum::<f64>() / d;
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
}
