//! Tridiagonal solves for M-matrices without pivoting: a twisted (two-sided) Thomas
//! algorithm.
//!
//! Rows above the middle row `p = n / 2` are eliminated downwards and rows below it
//! upwards, meeting at p. The two halves are independent chains, interleaved in one loop,
//! which halves the latency of the division chain. Only the pivots `inv[i] = 1 / w_i` are
//! stored: the transpose `Mᵀ` has the same pivots, so the Fokker–Planck step (the transposed
//! HJB matrix) reuses the HJB factors without a division. Stable for matrices that are
//! diagonally dominant by rows, as the upwind MFG matrices are.

/// Pivots of the twisted factorisation of M (sub-diagonal `lower`, `lower[0]` ignored;
/// super-diagonal `upper`, `upper[n-1]` ignored).
pub fn factor(lower: &[f64], diag: &[f64], upper: &[f64], inv: &mut [f64]) {
    let n = diag.len();
    debug_assert!(n >= 2 && lower.len() == n && upper.len() == n && inv.len() == n);
    let p = n / 2;
    let (top, bottom) = (p, n - 1 - p);
    inv[0] = 1.0 / diag[0];
    if bottom > 0 {
        inv[n - 1] = 1.0 / diag[n - 1];
    }
    for k in 1..top.max(bottom) {
        if k < top {
            let i = k;
            inv[i] = 1.0 / (diag[i] - lower[i] * upper[i - 1] * inv[i - 1]);
        }
        if k < bottom {
            let i = n - 1 - k;
            inv[i] = 1.0 / (diag[i] - upper[i] * lower[i + 1] * inv[i + 1]);
        }
    }
    let mut w = diag[p];
    if p > 0 {
        w -= lower[p] * upper[p - 1] * inv[p - 1];
    }
    if p + 1 < n {
        w -= upper[p] * lower[p + 1] * inv[p + 1];
    }
    inv[p] = 1.0 / w;
}

/// Solves `M x = rhs` (`transpose = false`) or `Mᵀ x = rhs` with the pivots from [`factor`].
///
/// `Mᵀ` has sub-diagonal `upper[i-1]` and super-diagonal `lower[i+1]`.
pub fn solve(
    lower: &[f64],
    upper: &[f64],
    inv: &[f64],
    rhs: &[f64],
    x: &mut [f64],
    transpose: bool,
) {
    if transpose {
        solve_impl::<true>(lower, upper, inv, rhs, x);
    } else {
        solve_impl::<false>(lower, upper, inv, rhs, x);
    }
}

fn solve_impl<const T: bool>(
    lower: &[f64],
    upper: &[f64],
    inv: &[f64],
    rhs: &[f64],
    x: &mut [f64],
) {
    let n = rhs.len();
    debug_assert!(lower.len() == n && upper.len() == n && inv.len() == n && x.len() == n);
    // sub(i) couples row i to i-1, sup(i) couples row i to i+1
    let sub = |i: usize| if T { upper[i - 1] } else { lower[i] };
    let sup = |i: usize| if T { lower[i + 1] } else { upper[i] };
    let p = n / 2;
    let (top, bottom) = (p, n - 1 - p);
    // eliminate towards p: x holds the modified right-hand sides; each chain carries its
    // last value in a register
    let mut xt = rhs[0];
    x[0] = xt;
    let mut xb = rhs[n - 1];
    if bottom > 0 {
        x[n - 1] = xb;
    }
    for k in 1..top.max(bottom) {
        if k < top {
            let i = k;
            xt = rhs[i] - sub(i) * inv[i - 1] * xt;
            x[i] = xt;
        }
        if k < bottom {
            let i = n - 1 - k;
            xb = rhs[i] - sup(i) * inv[i + 1] * xb;
            x[i] = xb;
        }
    }
    let mut r = rhs[p];
    if p > 0 {
        r -= sub(p) * inv[p - 1] * x[p - 1];
    }
    if p + 1 < n {
        r -= sup(p) * inv[p + 1] * x[p + 1];
    }
    x[p] = r * inv[p];
    // substitute outwards from p; the multipliers sup(i) * inv[i] stay off the chain
    let (mut xt, mut xb) = (x[p], x[p]);
    for k in 1..=top.max(bottom) {
        if k <= top {
            let i = p - k;
            xt = x[i] * inv[i] - sup(i) * inv[i] * xt;
            x[i] = xt;
        }
        if k <= bottom {
            let i = p + k;
            xb = x[i] * inv[i] - sub(i) * inv[i] * xb;
            x[i] = xb;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `M x` (or `Mᵀ x`) for a tridiagonal M.
    fn matvec(lower: &[f64], diag: &[f64], upper: &[f64], x: &[f64], transpose: bool) -> Vec<f64> {
        let n = diag.len();
        (0..n)
            .map(|i| {
                let mut s = diag[i] * x[i];
                if i > 0 {
                    s += if transpose { upper[i - 1] } else { lower[i] } * x[i - 1];
                }
                if i + 1 < n {
                    s += if transpose { lower[i + 1] } else { upper[i] } * x[i + 1];
                }
                s
            })
            .collect()
    }

    fn system(n: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let lower: Vec<f64> = (0..n).map(|i| -0.3 - 0.01 * (i % 7) as f64).collect();
        let upper: Vec<f64> = (0..n).map(|i| -0.5 + 0.02 * (i % 5) as f64).collect();
        let diag = (0..n)
            .map(|i| 1.0 + lower[i].abs() + upper[i].abs())
            .collect();
        (lower, diag, upper)
    }

    #[test]
    fn solves_a_dominant_system_and_its_transpose_to_round_off() {
        for n in [2, 3, 4, 5, 8, 199, 200, 361] {
            let (lower, diag, upper) = system(n);
            let want: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin() + 0.1).collect();
            let (mut inv, mut got) = (vec![0.0; n], vec![0.0; n]);
            factor(&lower, &diag, &upper, &mut inv);
            for transpose in [false, true] {
                let rhs = matvec(&lower, &diag, &upper, &want, transpose);
                solve(&lower, &upper, &inv, &rhs, &mut got, transpose);
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (g - w).abs() < 1e-13,
                        "n={n} transpose={transpose}: {g} vs {w}"
                    );
                }
            }
        }
    }

    #[test]
    fn matches_cramers_rule_on_a_3x3_system() {
        let (lower, diag, upper) = ([0.0, -1.0, -2.0], [4.0, 5.0, 6.0], [-1.5, -0.5, 0.0]);
        let rhs = [1.0, 2.0, 3.0];
        let (mut inv, mut x) = ([0.0; 3], [0.0; 3]);
        factor(&lower, &diag, &upper, &mut inv);
        solve(&lower, &upper, &inv, &rhs, &mut x, false);
        let det = |m: [[f64; 3]; 3]| {
            m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
                - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
                + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
        };
        let a = [[4.0, -1.5, 0.0], [-1.0, 5.0, -0.5], [0.0, -2.0, 6.0]];
        let d = det(a);
        for k in 0..3 {
            let mut ak = a;
            for r in 0..3 {
                ak[r][k] = rhs[r];
            }
            assert!((x[k] - det(ak) / d).abs() < 1e-14);
        }
    }

    #[test]
    fn transposed_solve_of_a_generator_matrix_conserves_the_sum() {
        // M = I - dt Q with Q a generator (rows sum to 0): the columns of Mᵀ sum to 1, so
        // the solution of Mᵀ y = r keeps sum(y) = sum(r), and y > 0 for r > 0.
        let n = 50;
        let up: Vec<f64> = (0..n)
            .map(|i| if i + 1 < n { 1.0 + (i % 3) as f64 } else { 0.0 })
            .collect();
        let dn: Vec<f64> = (0..n)
            .map(|i| if i > 0 { 0.5 + (i % 4) as f64 } else { 0.0 })
            .collect();
        let dt = 0.3;
        let lower: Vec<f64> = dn.iter().map(|d| -dt * d).collect();
        let upper: Vec<f64> = up.iter().map(|u| -dt * u).collect();
        let diag: Vec<f64> = (0..n).map(|i| 1.0 + dt * (up[i] + dn[i])).collect();
        let r: Vec<f64> = (0..n).map(|i| 1.0 + (i as f64).cos()).collect();
        let (mut inv, mut y) = (vec![0.0; n], vec![0.0; n]);
        factor(&lower, &diag, &upper, &mut inv);
        solve(&lower, &upper, &inv, &r, &mut y, true);
        let (sr, sy): (f64, f64) = (r.iter().sum(), y.iter().sum());
        assert!((sr - sy).abs() < 1e-12 * sr, "{sr} vs {sy}");
        assert!(y.iter().all(|v| *v > 0.0));
    }
}
