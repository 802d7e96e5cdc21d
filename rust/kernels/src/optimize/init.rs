//! The first population: uniform, Latin hypercube or shifted Sobol points,
//! all drawn from the run's stream `(seed, DE_GENERATION, 0)`.

use super::sobol;
use super::step::Source;
use crate::error::{Result, invalid};
use crate::rng::{SplitMix, purpose};

/// How the first population is laid out in the box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// Independent uniforms, row by row.
    Uniform,
    /// Latin hypercube: each coordinate has exactly one point in each of the
    /// N equal strata; the strata are permuted independently per coordinate.
    Lhs,
    /// The first N Sobol points with a random digital shift (up to 64 dimensions).
    Sobol,
}

impl Init {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "uniform" => Ok(Self::Uniform),
            "lhs" => Ok(Self::Lhs),
            "sobol" => Ok(Self::Sobol),
            _ => Err(invalid(format!(
                "unknown init {name:?}; choose uniform, lhs, sobol or an (N, D) array"
            ))),
        }
    }
}

/// Unit-cube points (n × d, row-major) for `init`, drawn from `src`.
///
/// Draw order. Uniform: n·d uniforms, row by row. Lhs: per coordinate, a
/// Fisher–Yates shuffle of 0..n (for i = n-1 down to 1, swap i with index(i+1)),
/// then n uniforms for the offsets inside the strata. Sobol: one uniform per
/// coordinate for the 32-bit shift word (floor(u·2^32)).
pub fn unit_points<S: Source + ?Sized>(
    init: Init,
    n: usize,
    d: usize,
    src: &mut S,
) -> Result<Vec<f64>> {
    match init {
        Init::Uniform => {
            let mut out = vec![0.0; n * d];
            for v in &mut out {
                *v = src.uniform();
            }
            Ok(out)
        }
        Init::Lhs => {
            let mut out = vec![0.0; n * d];
            let mut perm: Vec<usize> = Vec::with_capacity(n);
            for j in 0..d {
                perm.clear();
                perm.extend(0..n);
                for i in (1..n).rev() {
                    let k = src.index(i + 1);
                    perm.swap(i, k);
                }
                for (i, &cell) in perm.iter().enumerate() {
                    out[i * d + j] = (cell as f64 + src.uniform()) / n as f64;
                }
            }
            Ok(out)
        }
        Init::Sobol => {
            if d > sobol::MAX_DIM {
                return Err(invalid(format!(
                    "init=\"sobol\" supports at most {} dimensions, got {d}; use lhs or uniform",
                    sobol::MAX_DIM
                )));
            }
            let shift: Vec<u32> = (0..d)
                .map(|_| (src.uniform() * 4_294_967_296.0) as u32)
                .collect();
            sobol::points(n, d, Some(&shift))
        }
    }
}

/// The first population for `seed` in the box (n × d, row-major).
pub fn population(
    init: Init,
    seed: u64,
    n: usize,
    lower: &[f64],
    upper: &[f64],
) -> Result<Vec<f64>> {
    let d = lower.len();
    let mut rng = SplitMix::stream(seed, purpose::DE_GENERATION, 0);
    let mut pts = unit_points(init, n, d, &mut rng)?;
    for row in pts.chunks_exact_mut(d) {
        for (j, v) in row.iter_mut().enumerate() {
            // Stays inside [l, u]: a unit value below 1 maps below u up to rounding.
            *v = (lower[j] + *v * (upper[j] - lower[j])).min(upper[j]);
        }
    }
    Ok(pts)
}

/// A caller-given population: shape (N, d) with N >= `min_n`, finite and inside the box.
pub fn check_given(
    init: &[f64],
    d: usize,
    min_n: usize,
    lower: &[f64],
    upper: &[f64],
) -> Result<()> {
    if init.len() % d != 0 || init.len() / d < min_n {
        return Err(invalid(format!(
            "init must have shape (N, {d}) with N >= {min_n}"
        )));
    }
    for (k, &v) in init.iter().enumerate() {
        let j = k % d;
        if !v.is_finite() || v < lower[j] || v > upper[j] {
            return Err(invalid(format!(
                "init must be finite and inside the bounds; row {} column {j} is {v}",
                k / d
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lhs_has_one_point_per_stratum() {
        let (n, d) = (37, 5);
        let mut rng = SplitMix::stream(3, purpose::DE_GENERATION, 0);
        let p = unit_points(Init::Lhs, n, d, &mut rng).unwrap();
        for j in 0..d {
            let mut cells: Vec<usize> =
                (0..n).map(|i| (p[i * d + j] * n as f64) as usize).collect();
            cells.sort_unstable();
            assert!(cells.iter().enumerate().all(|(i, &c)| i == c));
        }
    }

    #[test]
    fn uniform_matches_the_original_stream_and_sobol_limit() {
        let (lo, hi) = ([-1.0, 0.0], [1.0, 5.0]);
        let a = population(Init::Uniform, 9, 6, &lo, &hi).unwrap();
        let mut rng = SplitMix::stream(9, purpose::DE_GENERATION, 0);
        let want: Vec<f64> = (0..12)
            .map(|k| lo[k % 2] + rng.uniform() * (hi[k % 2] - lo[k % 2]))
            .collect();
        assert_eq!(a, want);
        let lo = vec![0.0; 65];
        let hi = vec![1.0; 65];
        assert!(population(Init::Sobol, 1, 8, &lo, &hi).is_err());
        assert!(check_given(&[0.5, 2.0], 1, 1, &[0.0], &[1.0]).is_err());
        assert!(check_given(&[0.5, f64::NAN], 1, 1, &[0.0], &[1.0]).is_err());
        assert!(check_given(&[0.5, 0.25], 1, 2, &[0.0], &[1.0]).is_ok());
    }
}
