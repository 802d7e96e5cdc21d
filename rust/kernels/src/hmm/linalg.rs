//! Small dense helpers for d x d covariance matrices (row-major).
#![allow(clippy::needless_range_loop)] // index loops read like the maths here

/// Lower Cholesky factor of an SPD matrix, or None when not positive definite.
pub fn cholesky(a: &[f64], d: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let mut s = a[i * d + j];
            for p in 0..j {
                s -= l[i * d + p] * l[j * d + p];
            }
            if i == j {
                if !s.is_finite() || s <= 0.0 {
                    return None;
                }
                l[i * d + i] = s.sqrt();
            } else {
                l[i * d + j] = s / l[j * d + j];
            }
        }
    }
    Some(l)
}

/// Cholesky with diagonal jitter `1e-10 * tr/d`, retried up to 5 times.
pub fn cholesky_jitter(a: &[f64], d: usize) -> Option<Vec<f64>> {
    if let Some(l) = cholesky(a, d) {
        return Some(l);
    }
    let tr: f64 = (0..d).map(|i| a[i * d + i]).sum::<f64>() / d as f64;
    let mut jitter = 1e-10 * tr.abs().max(f64::MIN_POSITIVE);
    let mut m = a.to_vec();
    for _ in 0..5 {
        for i in 0..d {
            m[i * d + i] = a[i * d + i] + jitter;
        }
        if let Some(l) = cholesky(&m, d) {
            return Some(l);
        }
        jitter *= 10.0;
    }
    None
}

/// Solve L z = b in place (forward substitution).
#[inline]
pub fn solve_lower(l: &[f64], d: usize, z: &mut [f64]) {
    for i in 0..d {
        let mut s = z[i];
        for p in 0..i {
            s -= l[i * d + p] * z[p];
        }
        z[i] = s / l[i * d + i];
    }
}

/// Stationary distribution of a row-stochastic K x K matrix: solves
/// pi (A - I) = 0 with sum(pi) = 1 by Gaussian elimination with pivoting.
pub fn stationary(a: &[f64], k: usize) -> Vec<f64> {
    if k == 1 {
        return vec![1.0];
    }
    // Rows of m: equations; unknowns pi_0..pi_{k-1}. Equation j: sum_i pi_i (A_ij - d_ij) = 0,
    // the last equation is replaced by sum_i pi_i = 1.
    let mut m = vec![0.0; k * (k + 1)];
    for j in 0..k {
        for i in 0..k {
            m[j * (k + 1) + i] = if j == k - 1 {
                1.0
            } else {
                a[i * k + j] - if i == j { 1.0 } else { 0.0 }
            };
        }
        m[j * (k + 1) + k] = if j == k - 1 { 1.0 } else { 0.0 };
    }
    let w = k + 1;
    for col in 0..k {
        let piv = (col..k)
            .max_by(|&r, &s| m[r * w + col].abs().total_cmp(&m[s * w + col].abs()))
            .unwrap_or(col);
        if piv != col {
            for c in 0..w {
                m.swap(piv * w + c, col * w + c);
            }
        }
        let p = m[col * w + col];
        if p.abs() < 1e-300 {
            continue;
        }
        for r in 0..k {
            if r != col {
                let f = m[r * w + col] / p;
                if f != 0.0 {
                    for c in col..w {
                        m[r * w + c] -= f * m[col * w + c];
                    }
                }
            }
        }
    }
    let mut pi: Vec<f64> = (0..k)
        .map(|i| {
            let p = m[i * w + i];
            if p.abs() < 1e-300 {
                0.0
            } else {
                (m[i * w + k] / p).max(0.0)
            }
        })
        .collect();
    let s: f64 = pi.iter().sum();
    if s > 0.0 && s.is_finite() {
        pi.iter_mut().for_each(|v| *v /= s);
    } else {
        pi.iter_mut().for_each(|v| *v = 1.0 / k as f64);
    }
    pi
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_reconstructs() {
        let a = [4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];
        let l = cholesky(&a, 3).unwrap();
        for i in 0..3 {
            for j in 0..3 {
                let s: f64 = (0..3).map(|p| l[i * 3 + p] * l[j * 3 + p]).sum();
                assert!((s - a[i * 3 + j]).abs() < 1e-12);
            }
        }
        assert!(cholesky(&[1.0, 2.0, 2.0, 1.0], 2).is_none());
    }

    #[test]
    fn stationary_two_state() {
        let a = [0.9, 0.1, 0.3, 0.7];
        let pi = stationary(&a, 2);
        assert!((pi[0] - 0.75).abs() < 1e-14 && (pi[1] - 0.25).abs() < 1e-14);
    }
}
