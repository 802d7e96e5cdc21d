//! The backward HJB and forward Fokker–Planck sweeps for one best response.

use super::tridiag::solve as tri_solve;
use super::{Coupling, Grid, Problem};

/// Reward coefficients `(f1[n], f0[n])` per step and `(g1, g0)` at T for an object z.
pub(super) fn coefficients(
    p: &Problem,
    nt: usize,
    z: &[f64],
    f1: &mut [f64],
    f0: &mut [f64],
) -> (f64, f64) {
    match p.coupling {
        Coupling::Controls { alpha } => {
            for n in 0..nt {
                f1[n] = alpha * z[n];
                f0[n] = 0.0;
            }
            (0.0, 0.0)
        }
        Coupling::Mean { kappa_m, kappa_t } => {
            for n in 0..nt {
                let c = kappa_m * z[n];
                f1[n] = 2.0 * p.phi * c;
                f0[n] = -p.phi * c * c;
            }
            let c = kappa_t * z[nt];
            (2.0 * p.g2 * c, -p.g2 * c * c)
        }
    }
}

/// Row i of `I - Δt Q`: `-Δt dn_i`, `1 + Δt (up_i + dn_i)`, `-Δt up_i`, with jump rates
/// `up_i = ν_i⁺/Δx + ε/Δx²` (none at the right end) and `dn_i = ν_i⁻/Δx + ε/Δx²` (none at
/// the left end), `d = ε/Δx²`.
pub(super) fn fill_matrix(
    nu: &[f64],
    dt: f64,
    inv_dx: f64,
    d: f64,
    lower: &mut [f64],
    diag: &mut [f64],
    upper: &mut [f64],
) {
    let n = nu.len();
    for i in 0..n {
        let v = nu[i];
        let up = if i + 1 < n {
            v.max(0.0) * inv_dx + d
        } else {
            0.0
        };
        let dn = if i > 0 {
            (-v).max(0.0) * inv_dx + d
        } else {
            0.0
        };
        lower[i] = -dt * dn;
        upper[i] = -dt * up;
        diag[i] = 1.0 + dt * (up + dn);
    }
}

/// What one backward HJB step needs to build row i of `I - Δt Q` and its right-hand side.
struct Row<'a> {
    next: &'a [f64],
    x: &'a [f64],
    nu: &'a [f64],
    dt: f64,
    inv_dx: f64,
    d: f64,
    kappa: f64,
    phi: f64,
    f1: f64,
    f0: f64,
}

impl Row<'_> {
    /// Writes `lower[i]`, `upper[i]` (as [`fill_matrix`]) and returns `(diag_i, rhs_i)`.
    #[inline(always)]
    fn build(&self, i: usize, lower: &mut [f64], upper: &mut [f64]) -> (f64, f64) {
        let n = self.nu.len();
        let (v, xi) = (self.nu[i], self.x[i]);
        let up = if i + 1 < n {
            v.max(0.0) * self.inv_dx + self.d
        } else {
            0.0
        };
        let dn = if i > 0 {
            (-v).max(0.0) * self.inv_dx + self.d
        } else {
            0.0
        };
        lower[i] = -self.dt * dn;
        upper[i] = -self.dt * up;
        let rhs = self.next[i]
            + self.dt * (-self.kappa * v * v - self.phi * xi * xi + self.f1 * xi + self.f0);
        (1.0 + self.dt * (up + dn), rhs)
    }
}

/// One backward HJB step: builds each row, factors and eliminates in the same twisted
/// sweep, then substitutes into `now`. The arithmetic is exactly that of
/// [`super::tridiag::factor`] and [`super::tridiag::solve`]; fusing the passes lets the row
/// building hide under the division latency of the factorisation.
fn hjb_step(row: &Row, lower: &mut [f64], upper: &mut [f64], inv: &mut [f64], now: &mut [f64]) {
    let n = now.len();
    let p = n / 2;
    let (top, bottom) = (p, n - 1 - p);
    // the chains carry the previous row's values in registers (no store-to-load latency)
    let (d0, r0) = row.build(0, lower, upper);
    let (mut inv_t, mut now_t, mut up_t) = (1.0 / d0, r0, upper[0]);
    inv[0] = inv_t;
    now[0] = now_t;
    let (mut inv_b, mut now_b, mut lo_b) = (0.0, 0.0, 0.0);
    if bottom > 0 {
        let (dl, rl) = row.build(n - 1, lower, upper);
        (inv_b, now_b, lo_b) = (1.0 / dl, rl, lower[n - 1]);
        inv[n - 1] = inv_b;
        now[n - 1] = now_b;
    }
    for k in 1..top.max(bottom) {
        if k < top {
            let i = k;
            let (di, ri) = row.build(i, lower, upper);
            let li = lower[i];
            let w = 1.0 / (di - li * up_t * inv_t);
            now_t = ri - li * inv_t * now_t;
            (inv_t, up_t) = (w, upper[i]);
            inv[i] = inv_t;
            now[i] = now_t;
        }
        if k < bottom {
            let i = n - 1 - k;
            let (di, ri) = row.build(i, lower, upper);
            let ui = upper[i];
            let w = 1.0 / (di - ui * lo_b * inv_b);
            now_b = ri - ui * inv_b * now_b;
            (inv_b, lo_b) = (w, lower[i]);
            inv[i] = inv_b;
            now[i] = now_b;
        }
    }
    let (mut w, mut r) = row.build(p, lower, upper);
    if p > 0 {
        w -= lower[p] * upper[p - 1] * inv[p - 1];
        r -= lower[p] * inv[p - 1] * now[p - 1];
    }
    if p + 1 < n {
        w -= upper[p] * lower[p + 1] * inv[p + 1];
        r -= upper[p] * inv[p + 1] * now[p + 1];
    }
    inv[p] = 1.0 / w;
    now[p] = r * inv[p];
    let (mut xt, mut xb) = (now[p], now[p]);
    for k in 1..=top.max(bottom) {
        if k <= top {
            let i = p - k;
            xt = now[i] * inv[i] - upper[i] * inv[i] * xt;
            now[i] = xt;
        }
        if k <= bottom {
            let i = p + k;
            xb = now[i] * inv[i] - lower[i] * inv[i] * xb;
            now[i] = xb;
        }
    }
}

/// Buffers for one best response; nothing is allocated inside the time loops.
pub(super) struct Work {
    pub(super) grid: Grid,
    pub(super) x: Vec<f64>,
    pub(super) diag: Vec<f64>,
    pub(super) f1: Vec<f64>,
    pub(super) f0: Vec<f64>,
    /// Off-diagonals and pivots of every step's HJB matrix, nt x n each, reused by FP.
    pub(super) lower: Vec<f64>,
    pub(super) upper: Vec<f64>,
    pub(super) inv: Vec<f64>,
}

/// Health of the forward sweep.
pub(super) struct FpStats {
    pub(super) mass_error: f64,
    pub(super) min_density: f64,
    pub(super) clipped: usize,
}

impl Work {
    pub(super) fn new(grid: Grid) -> Self {
        let (n, nt) = (grid.n, grid.nt);
        Self {
            grid,
            x: (0..n).map(|i| grid.x(i)).collect(),
            diag: vec![0.0; n],
            f1: vec![0.0; nt],
            f0: vec![0.0; nt],
            lower: vec![0.0; nt * n],
            upper: vec![0.0; nt * n],
            inv: vec![0.0; nt * n],
        }
    }

    /// Backward HJB sweep; fills `u`, `nu` and the factors of each step's matrix.
    pub(super) fn hjb(&mut self, p: &Problem, z: &[f64], u: &mut [f64], nu: &mut [f64]) {
        let Grid { n, nt, .. } = self.grid;
        let (dx, dt) = (self.grid.dx(), self.grid.dt());
        let (inv_dx, d) = (1.0 / dx, p.eps / (dx * dx));
        let (g1, g0) = coefficients(p, nt, z, &mut self.f1, &mut self.f0);
        for (ui, &xi) in u[nt * n..].iter_mut().zip(&self.x) {
            *ui = -p.g2 * xi * xi + g1 * xi + g0;
        }
        let scale = 1.0 / (2.0 * p.kappa * dx);
        for k in (0..nt).rev() {
            let (head, tail) = u.split_at_mut((k + 1) * n);
            let next = &tail[..n];
            let now = &mut head[k * n..];
            let nu_k = &mut nu[k * n..(k + 1) * n];
            let mut left = (next[1] - next[0]) * scale;
            nu_k[0] = left;
            for i in 1..n - 1 {
                let right = (next[i + 1] - next[i]) * scale;
                nu_k[i] = 0.5 * (left + right);
                left = right;
            }
            nu_k[n - 1] = left;
            let rows = k * n..(k + 1) * n;
            let row = Row {
                next,
                x: &self.x,
                nu: nu_k,
                dt,
                inv_dx,
                d,
                kappa: p.kappa,
                phi: p.phi,
                f1: self.f1[k],
                f0: self.f0[k],
            };
            hjb_step(
                &row,
                &mut self.lower[rows.clone()],
                &mut self.upper[rows.clone()],
                &mut self.inv[rows],
                now,
            );
        }
    }

    /// Forward FP sweep `(I - Δt Q)ᵀ m^{k+1} = m^k` with the factors of the last HJB sweep;
    /// `m` row 0 holds m0.
    pub(super) fn fp(&mut self, m: &mut [f64]) -> FpStats {
        let Grid { n, nt, .. } = self.grid;
        let dx = self.grid.dx();
        let mut stats = FpStats {
            mass_error: (m[..n].iter().sum::<f64>() * dx - 1.0).abs(),
            min_density: m[..n].iter().copied().fold(f64::INFINITY, f64::min),
            clipped: 0,
        };
        for k in 0..nt {
            let (head, tail) = m.split_at_mut((k + 1) * n);
            let next = &mut tail[..n];
            let rows = k * n..(k + 1) * n;
            tri_solve(
                &self.lower[rows.clone()],
                &self.upper[rows.clone()],
                &self.inv[rows],
                &head[k * n..],
                next,
                true,
            );
            let (mut mass, low) = sum_min(next);
            if low < 0.0 {
                for v in next.iter_mut().filter(|v| **v < 0.0) {
                    stats.clipped += 1;
                    *v = 0.0;
                }
                mass = sum2(next, next, |a, _| a);
            }
            stats.min_density = stats.min_density.min(low);
            stats.mass_error = stats.mass_error.max((mass * dx - 1.0).abs());
        }
        stats
    }

    /// `Tz`: the mean-field object implied by a best response.
    pub(super) fn field(&self, p: &Problem, m: &[f64], nu: &[f64], out: &mut [f64]) {
        let Grid { n, .. } = self.grid;
        let dx = self.grid.dx();
        match p.coupling {
            Coupling::Controls { .. } => {
                for (k, o) in out.iter_mut().enumerate() {
                    let row = &m[k * n..(k + 1) * n];
                    let v = &nu[k * n..(k + 1) * n];
                    *o = sum2(row, v, |a, b| a * b) * dx;
                }
            }
            Coupling::Mean { .. } => {
                for (k, o) in out.iter_mut().enumerate() {
                    let row = &m[k * n..(k + 1) * n];
                    *o = sum2(row, &self.x, |a, b| a * b) * dx;
                }
            }
        }
    }
}

/// `Σ f(a_i, b_i)` with four partial sums: a shorter dependency chain than a plain fold,
/// and a fixed order, so the result is the same on every run.
#[inline]
pub(super) fn sum2(a: &[f64], b: &[f64], f: impl Fn(f64, f64) -> f64) -> f64 {
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let mut tail = 0.0;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += f(*x, *y);
    }
    let mut acc = [0.0; 4];
    for (x, y) in ca.zip(cb) {
        for l in 0..4 {
            acc[l] += f(x[l], y[l]);
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Sum and minimum of a row, four lanes at a time.
fn sum_min(v: &[f64]) -> (f64, f64) {
    let chunks = v.chunks_exact(4);
    let (mut tail_sum, mut tail_min) = (0.0, f64::INFINITY);
    for x in chunks.remainder() {
        tail_sum += x;
        tail_min = tail_min.min(*x);
    }
    let (mut sum, mut low) = ([0.0; 4], [f64::INFINITY; 4]);
    for x in chunks {
        for l in 0..4 {
            sum[l] += x[l];
            low[l] = low[l].min(x[l]);
        }
    }
    let total = (sum[0] + sum[1]) + (sum[2] + sum[3]) + tail_sum;
    let least = low[0].min(low[1]).min(low[2]).min(low[3]).min(tail_min);
    (total, least)
}
