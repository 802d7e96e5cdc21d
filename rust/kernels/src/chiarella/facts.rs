//! Stylized-fact statistics and the MSM moment vector.

use crate::error::{Result, invalid};

/// Pairwise (cascade) summation: error O(log n) instead of O(n).
pub fn pairwise_sum(x: &[f64]) -> f64 {
    if x.len() <= 64 {
        x.iter().sum()
    } else {
        let (a, b) = x.split_at(x.len() / 2);
        pairwise_sum(a) + pairwise_sum(b)
    }
}

pub fn mean(x: &[f64]) -> f64 {
    pairwise_sum(x) / x.len() as f64
}

fn centred(x: &[f64]) -> Vec<f64> {
    let m = mean(x);
    x.iter().map(|v| v - m).collect()
}

/// Pearson kurtosis m4 / m2^2 (3 for a normal), biased moments.
pub fn kurtosis(x: &[f64]) -> f64 {
    let c = centred(x);
    let m2 = mean(&c.iter().map(|v| v * v).collect::<Vec<_>>());
    let m4 = mean(&c.iter().map(|v| (v * v) * (v * v)).collect::<Vec<_>>());
    m4 / (m2 * m2)
}

/// Autocorrelations at `lags` with the full-sample mean and biased denominator
/// (statsmodels `acf(adjusted=False)`); NaN for lags >= n or a constant series.
pub fn acf(x: &[f64], lags: &[usize]) -> Vec<f64> {
    let c = centred(x);
    let c0 = pairwise_sum(&c.iter().map(|v| v * v).collect::<Vec<_>>());
    let mut prod = Vec::with_capacity(c.len());
    lags.iter()
        .map(|&k| {
            if k >= c.len() || c0 <= 0.0 {
                return f64::NAN;
            }
            prod.clear();
            prod.extend(c[..c.len() - k].iter().zip(&c[k..]).map(|(a, b)| a * b));
            pairwise_sum(&prod) / c0
        })
        .collect()
}

/// Hill tail index of |x| over the top `q` fraction (k = floor(q n) order statistics).
pub fn hill(x: &[f64], q: f64) -> f64 {
    let n = x.len();
    let k = (q * n as f64).floor() as usize;
    if k < 2 || k >= n {
        return f64::NAN;
    }
    let mut a: Vec<f64> = x.iter().map(|v| v.abs()).collect();
    a.select_nth_unstable_by(k, |p, q| q.total_cmp(p));
    let thr = a[k];
    if thr <= 0.0 {
        return f64::NAN;
    }
    let logs: Vec<f64> = a[..k].iter().map(|v| (v / thr).ln()).collect();
    1.0 / mean(&logs)
}

/// Kurtosis of non-overlapping h-period sums (aggregational Gaussianity).
pub fn aggregated_kurtosis(x: &[f64], h: usize) -> f64 {
    if h == 0 || x.len() / h < 4 {
        return f64::NAN;
    }
    let sums: Vec<f64> = x.chunks_exact(h).map(|c| c.iter().sum()).collect();
    kurtosis(&sums)
}

/// Lags of ACF(|r|) in the moment vector.
pub const ABS_LAGS: [usize; 6] = [1, 5, 10, 25, 50, 100];
/// Number of moments: mean |r|, Hill(5%), ACF_1(r), ACF_k(|r|) at ABS_LAGS.
pub const N_MOMENTS: usize = 9;

/// The moment vector's length: 9, or 10 with the (non-robust, opt-in) kurtosis last.
pub fn n_moments(kurt: bool) -> usize {
    N_MOMENTS + usize::from(kurt)
}

/// `moments`, with the Pearson kurtosis appended when `kurt` is set.
pub fn moment_vector(r: &[f64], kurt: bool) -> Result<Vec<f64>> {
    let mut v = moments(r)?.to_vec();
    if kurt {
        v.push(kurtosis(r));
    }
    Ok(v)
}

/// The FW-style moment vector of one return series.
pub fn moments(r: &[f64]) -> Result<[f64; N_MOMENTS]> {
    if r.len() <= 2 * ABS_LAGS[5] {
        return Err(invalid(format!(
            "need more than {} returns for the moment vector, got {}",
            2 * ABS_LAGS[5],
            r.len()
        )));
    }
    let abs: Vec<f64> = r.iter().map(|v| v.abs()).collect();
    let mut m = [0.0; N_MOMENTS];
    m[0] = mean(&abs);
    m[1] = hill(r, 0.05);
    m[2] = acf(r, &[1])[0];
    m[3..].copy_from_slice(&acf(&abs, &ABS_LAGS));
    Ok(m)
}

/// Moving-block bootstrap replications of the moment vector (B × q, row-major).
pub fn bootstrap_moments(
    r: &[f64],
    block: usize,
    n_boot: usize,
    seed: u64,
    kurt: bool,
) -> Result<Vec<f64>> {
    use crate::rng::{purpose, stream, uniform};
    use rayon::prelude::*;
    moments(r)?;
    let n = r.len();
    if block == 0 || block > n {
        return Err(invalid(format!("block must be in 1..={n}, got {block}")));
    }
    if n_boot < 2 {
        return Err(invalid("n_boot must be at least 2"));
    }
    let reps: Vec<Result<Vec<f64>>> = (0..n_boot)
        .into_par_iter()
        .map(|b| {
            let mut rng = stream(seed, purpose::BOOTSTRAP, b as u64);
            let mut y = Vec::with_capacity(n + block);
            while y.len() < n {
                let start = ((uniform(&mut rng) * (n - block + 1) as f64) as usize).min(n - block);
                y.extend_from_slice(&r[start..start + block]);
            }
            y.truncate(n);
            moment_vector(&y, kurt)
        })
        .collect();
    let mut out = Vec::with_capacity(n_boot * n_moments(kurt));
    for m in reps {
        out.extend_from_slice(&m?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_values() {
        let x = [1.0, 2.0, 3.0, 4.0];
        assert!((kurtosis(&x) - 1.64).abs() < 1e-12);
        let a = acf(&x, &[0, 1, 4]);
        assert!((a[0] - 1.0).abs() < 1e-15 && (a[1] - 0.25).abs() < 1e-15 && a[2].is_nan());
        let pareto: Vec<f64> = (1..=2000).map(|i| (2000.0 / i as f64).powf(0.5)).collect();
        assert!((hill(&pareto, 0.05) - 2.0).abs() < 0.1);
    }

    #[test]
    fn kurtosis_is_appended_last() {
        let r: Vec<f64> = (0..500).map(|i| ((i * 7919) % 101) as f64 - 50.0).collect();
        let base = moments(&r).unwrap();
        let v = moment_vector(&r, true).unwrap();
        assert_eq!(v.len(), n_moments(true));
        assert_eq!(&v[..N_MOMENTS], &base[..]);
        assert_eq!(v[N_MOMENTS], kurtosis(&r));
        let b = bootstrap_moments(&r, 50, 4, 1, true).unwrap();
        assert_eq!(b.len(), 4 * 10);
    }
}
