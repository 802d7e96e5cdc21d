//! Small dense symmetric linear algebra: Cholesky, Jacobi eigensolver and the
//! generalised symmetric-definite eigenproblem `M v = lambda G v`.
//!
//! Matrices are row-major `n x n` slices. Eigenvectors come back as the
//! columns of a row-major matrix, eigenvalues in ascending order.

// `!(x > 0.0)` is used on purpose: it also rejects NaN.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use crate::error::{KernelError, Result};

/// Lower Cholesky factor `L` with `A = L L^T`.
pub fn cholesky(a: &[f64], n: usize) -> Result<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if !(s > 0.0) || !s.is_finite() {
                    return Err(KernelError::Numerical(format!(
                        "covariance matrix is not positive definite (pivot {i} = {s:e}); \
                         the assets are (nearly) collinear"
                    )));
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    Ok(l)
}

/// Solve `L y = b` in place (L lower triangular).
fn forward(l: &[f64], n: usize, b: &mut [f64]) {
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * n + k] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
}

/// Solve `L^T y = b` in place.
fn backward(l: &[f64], n: usize, b: &mut [f64]) {
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in i + 1..n {
            s -= l[k * n + i] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
}

/// Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations.
/// Returns (ascending eigenvalues, eigenvectors as columns, row-major).
pub fn eigh(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = a.to_vec();
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    for sweep in 0..100 {
        let mut off = 0.0;
        for p in 0..n {
            for q in p + 1..n {
                off += a[p * n + q] * a[p * n + q];
            }
        }
        if off == 0.0 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                let app = a[p * n + p];
                let aqq = a[q * n + q];
                let g = 100.0 * apq.abs();
                if sweep > 3 && app.abs() + g == app.abs() && aqq.abs() + g == aqq.abs() {
                    a[p * n + q] = 0.0;
                    a[q * n + p] = 0.0;
                    continue;
                }
                if apq == 0.0 {
                    continue;
                }
                let h = aqq - app;
                let t = if h.abs() + g == h.abs() {
                    apq / h
                } else {
                    let theta = 0.5 * h / apq;
                    let t = 1.0 / (theta.abs() + (1.0 + theta * theta).sqrt());
                    if theta < 0.0 { -t } else { t }
                };
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = t * c;
                for k in 0..n {
                    let akp = a[k * n + p];
                    let akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let apk = a[p * n + k];
                    let aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                a[p * n + p] = app - t * apq;
                a[q * n + q] = aqq + t * apq;
                a[p * n + q] = 0.0;
                a[q * n + p] = 0.0;
                for k in 0..n {
                    let vkp = v[k * n + p];
                    let vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| a[i * n + i].total_cmp(&a[j * n + j]));
    let vals = order.iter().map(|&i| a[i * n + i]).collect();
    let mut vecs = vec![0.0; n * n];
    for (col, &src) in order.iter().enumerate() {
        for r in 0..n {
            vecs[r * n + col] = v[r * n + src];
        }
    }
    (vals, vecs)
}

/// `M v = lambda G v` for symmetric M and symmetric positive definite G.
/// Eigenvalues ascending; eigenvectors (columns) normalised to `v^T G v = 1`.
pub fn gen_eigh(m: &[f64], g: &[f64], n: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    let l = cholesky(g, n)?;
    // X = L^-1 M (column by column), then C = L^-1 X^T = L^-1 M L^-T.
    let mut x = vec![0.0; n * n];
    let mut col = vec![0.0; n];
    for j in 0..n {
        for i in 0..n {
            col[i] = m[i * n + j];
        }
        forward(&l, n, &mut col);
        for i in 0..n {
            x[i * n + j] = col[i];
        }
    }
    let mut c = vec![0.0; n * n];
    for j in 0..n {
        // column j of X^T is row j of X
        col.copy_from_slice(&x[j * n..(j + 1) * n]);
        forward(&l, n, &mut col);
        for i in 0..n {
            c[i * n + j] = col[i];
        }
    }
    for i in 0..n {
        for j in i + 1..n {
            let s = 0.5 * (c[i * n + j] + c[j * n + i]);
            c[i * n + j] = s;
            c[j * n + i] = s;
        }
    }
    let (vals, y) = eigh(&c, n);
    let mut w = vec![0.0; n * n];
    for j in 0..n {
        for i in 0..n {
            col[i] = y[i * n + j];
        }
        backward(&l, n, &mut col);
        for i in 0..n {
            w[i * n + j] = col[i];
        }
    }
    Ok((vals, w))
}

/// Largest / smallest eigenvalue of a symmetric positive definite matrix.
pub fn condition_number(a: &[f64], n: usize) -> f64 {
    let (vals, _) = eigh(a, n);
    let lo = vals[0];
    let hi = vals[n - 1];
    if lo > 0.0 { hi / lo } else { f64::INFINITY }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spd(n: usize, seed: u64) -> Vec<f64> {
        let mut state = seed;
        let mut r = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64) / ((1u64 << 53) as f64) - 0.5
        };
        let b: Vec<f64> = (0..n * n).map(|_| r()).collect();
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..n).map(|k| b[i * n + k] * b[j * n + k]).sum::<f64>();
            }
            a[i * n + i] += 0.1;
        }
        a
    }

    #[test]
    fn eigh_reconstructs_the_matrix() {
        let n = 7;
        let a = spd(n, 3);
        let (vals, v) = eigh(&a, n);
        assert!(vals.windows(2).all(|w| w[0] <= w[1]));
        for i in 0..n {
            for j in 0..n {
                let r: f64 = (0..n).map(|k| v[i * n + k] * vals[k] * v[j * n + k]).sum();
                assert!((r - a[i * n + j]).abs() < 1e-12, "{r} vs {}", a[i * n + j]);
            }
        }
    }

    #[test]
    fn generalised_eigenvectors_satisfy_the_equation() {
        let n = 5;
        let m = spd(n, 1);
        let g = spd(n, 2);
        let (vals, w) = gen_eigh(&m, &g, n).unwrap();
        for j in 0..n {
            for i in 0..n {
                let mv: f64 = (0..n).map(|k| m[i * n + k] * w[k * n + j]).sum();
                let gv: f64 = (0..n).map(|k| g[i * n + k] * w[k * n + j]).sum();
                assert!((mv - vals[j] * gv).abs() < 1e-10);
            }
        }
    }

    #[test]
    fn cholesky_rejects_singular() {
        let a = [1.0, 1.0, 1.0, 1.0];
        assert!(cholesky(&a, 2).is_err());
    }
}
