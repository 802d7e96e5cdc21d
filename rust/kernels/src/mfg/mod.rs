//! 1-D mean-field game solver: HJB backward + Fokker–Planck forward (docs/compute.md §5).
//!
//! The agent maximises `E[∫ (-κν² - φx² + f1(t)x + f0(t)) dt + G(x_T)]` with
//! `dX = ν dt + sqrt(2ε) dB` and `G = -g2 x² + g1 x + g0`; the mean-field object sets
//! `f1, f0, g1, g0` (see [`Coupling`]).
//!
//! Scheme, on nodes `x_i = a + iΔx` and steps `t_n = nΔt`:
//! - HJB, backward and policy-lagged: the node control `ν_i` is the average of the face
//!   gradients of `u^{n+1}` divided by 2κ; then `(I - Δt Q) u^n = u^{n+1} + Δt(-κν² + F)`,
//!   where `Q = ν⁺D⁺ + ν⁻D⁻ + ε D2` (upwind transport plus the Neumann Laplacian) is the
//!   generator of a Markov chain: rows sum to 0, off-diagonals ≥ 0.
//! - FP, forward: `(I - Δt Qᵀ) m^{n+1} = m^n` with the same Q, so the discrete HJB and FP
//!   are exactly dual, mass is conserved (columns of Qᵀ sum to 0) and m stays ≥ 0
//!   (`I - ΔtQᵀ` is an M-matrix). Both are tridiagonal: the HJB step is factored once
//!   (twisted Thomas, see `tridiag`) and FP reuses the pivots for the transpose.
//! - Fixed point on the mean-field object z: damped Picard `z += λ(Tz - z)`, fictitious
//!   play `z += (Tz - z)/(k+1)`, or damped Picard with Anderson mixing.

mod anderson;
mod sweeps;
pub mod tridiag;

use anderson::Anderson;

use sweeps::{Work, fill_matrix, sum2};
use tridiag::factor;

use crate::error::{KernelError, Result, invalid};

/// Space-time grid: `n` nodes on `[a, b]`, `nt` steps on `[0, t_end]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid {
    pub a: f64,
    pub b: f64,
    pub n: usize,
    pub t_end: f64,
    pub nt: usize,
}

impl Grid {
    pub fn dx(&self) -> f64 {
        (self.b - self.a) / (self.n - 1) as f64
    }

    pub fn dt(&self) -> f64 {
        self.t_end / self.nt as f64
    }

    pub fn x(&self, i: usize) -> f64 {
        self.a + i as f64 * self.dx()
    }
}

/// How the population enters the agent's reward.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Coupling {
    /// MFG of controls (Cardaliaguet–Lehalle): `f1 = α μ(t)` with `μ = ∫ ν m`.
    /// The object z is μ at the start of each step (length nt).
    Controls { alpha: f64 },
    /// Mean attraction (LQ, Bensoussan–Frehse–Yam): running `-φ(x - κ_m m̄)²`,
    /// terminal `-g2(x - κ_T m̄_T)²`. The object z is m̄ at each time level (length nt + 1).
    Mean { kappa_m: f64, kappa_t: f64 },
}

/// The agent's problem: control cost κν², diffusion ε, running `-φx²`, terminal `-g2 x²`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Problem {
    pub kappa: f64,
    pub eps: f64,
    pub phi: f64,
    pub g2: f64,
    pub coupling: Coupling,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    /// `z += λ (Tz - z)`.
    Picard { damping: f64 },
    /// `z += (Tz - z) / (k + 1)`: the running average of best responses.
    FictitiousPlay,
    /// Damped Picard mixed with the last `depth` iterates (Anderson acceleration).
    Anderson { damping: f64, depth: usize },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    pub method: Method,
    pub tol: f64,
    pub max_iter: usize,
}

/// The last best response and the fixed-point record. Matrices are row-major, one row per
/// time level.
#[derive(Debug, Clone)]
pub struct Solution {
    /// Density, (nt + 1) x n, unit mass `Σ m Δx = 1` on every row.
    pub m: Vec<f64>,
    /// Value function, (nt + 1) x n.
    pub u: Vec<f64>,
    /// Node control used on step n, nt x n.
    pub nu: Vec<f64>,
    /// The mean-field object the agents took as given in the last best response.
    pub field: Vec<f64>,
    /// The same object recomputed from that best response (`Tz`).
    pub realised: Vec<f64>,
    pub mean: Vec<f64>,
    pub var: Vec<f64>,
    pub iterations: usize,
    pub converged: bool,
    /// `max |Tz - z|` per iteration.
    pub residuals: Vec<f64>,
    /// `max_t Σ |m_k - m_{k-1}| Δx` per iteration (NaN on the first).
    pub density_changes: Vec<f64>,
    /// `max_t |Σ m Δx - 1|` in the last best response.
    pub mass_error: f64,
    /// Smallest density value before clipping, in the last best response.
    pub min_density: f64,
    /// How many negative round-off values were clipped to 0 in the last best response.
    pub clipped: usize,
}

/// Length of the mean-field object for a coupling.
pub fn field_len(grid: &Grid, coupling: &Coupling) -> usize {
    match coupling {
        Coupling::Controls { .. } => grid.nt,
        Coupling::Mean { .. } => grid.nt + 1,
    }
}

const MAX_CELLS: usize = 10_000_000;

fn check(grid: &Grid, p: &Problem, m0: &[f64], init: &[f64], opts: &Options) -> Result<()> {
    let finite = |name: &str, v: f64| {
        if v.is_finite() {
            Ok(())
        } else {
            Err(invalid(format!("{name} must be finite, got {v}")))
        }
    };
    for (name, v) in [("a", grid.a), ("b", grid.b), ("t_end", grid.t_end)] {
        finite(name, v)?;
    }
    for (name, v) in [
        ("kappa", p.kappa),
        ("eps", p.eps),
        ("phi", p.phi),
        ("g2", p.g2),
    ] {
        finite(name, v)?;
    }
    match p.coupling {
        Coupling::Controls { alpha } => finite("alpha", alpha)?,
        Coupling::Mean { kappa_m, kappa_t } => {
            finite("kappa_m", kappa_m)?;
            finite("kappa_t", kappa_t)?;
        }
    }
    if grid.b <= grid.a {
        return Err(invalid(format!(
            "the domain needs a < b, got [{}, {}]",
            grid.a, grid.b
        )));
    }
    if grid.n < 3 || grid.nt < 1 {
        return Err(invalid(format!(
            "the grid needs at least 3 nodes and 1 time step, got n={} nt={}",
            grid.n, grid.nt
        )));
    }
    if grid.n.saturating_mul(grid.nt + 1) > MAX_CELLS {
        return Err(invalid(format!(
            "grid too large: n * (nt + 1) = {} cells, the limit is {MAX_CELLS}",
            grid.n.saturating_mul(grid.nt + 1)
        )));
    }
    if grid.t_end <= 0.0 {
        return Err(invalid(format!("t_end must be > 0, got {}", grid.t_end)));
    }
    if p.kappa <= 0.0 {
        return Err(invalid(format!("kappa must be > 0, got {}", p.kappa)));
    }
    if p.eps < 0.0 {
        return Err(invalid(format!("eps must be >= 0, got {}", p.eps)));
    }
    if m0.len() != grid.n {
        return Err(invalid(format!(
            "m0 has {} values but the grid has {} nodes",
            m0.len(),
            grid.n
        )));
    }
    if let Some((i, v)) = m0
        .iter()
        .enumerate()
        .find(|(_, v)| !(v.is_finite() && **v >= 0.0))
    {
        return Err(invalid(format!(
            "m0 must be finite and >= 0; value {v} at node {i}"
        )));
    }
    if m0.iter().sum::<f64>() <= 0.0 {
        return Err(invalid("m0 has zero mass"));
    }
    let want = field_len(grid, &p.coupling);
    if init.len() != want {
        return Err(invalid(format!(
            "the initial guess has {} values, this coupling needs {want}",
            init.len()
        )));
    }
    if let Some(v) = init.iter().find(|v| !v.is_finite()) {
        return Err(invalid(format!(
            "the initial guess must be finite, got {v}"
        )));
    }
    if let Method::Picard { damping } | Method::Anderson { damping, .. } = opts.method
        && !(damping > 0.0 && damping <= 1.0)
    {
        return Err(invalid(format!("damping must be in (0, 1], got {damping}")));
    }
    if let Method::Anderson { depth, .. } = opts.method
        && !(1..=20).contains(&depth)
    {
        return Err(invalid(format!(
            "Anderson depth must be in [1, 20], got {depth}"
        )));
    }
    if !(opts.tol > 0.0 && opts.tol.is_finite()) {
        return Err(invalid(format!("tol must be > 0, got {}", opts.tol)));
    }
    if opts.max_iter < 1 {
        return Err(invalid("max_iter must be >= 1"));
    }
    Ok(())
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |acc, x| acc.max(x.abs()))
}

/// Largest per-time-level L1 distance between two densities.
fn l1_change(a: &[f64], b: &[f64], n: usize, dx: f64) -> f64 {
    a.chunks_exact(n)
        .zip(b.chunks_exact(n))
        .map(|(r, s)| sum2(r, s, |x, y| (x - y).abs()) * dx)
        .fold(0.0, f64::max)
}

/// Solves the MFG from the initial density `m0` (normalised here to unit mass) and the
/// initial guess `init` of the mean-field object (length [`field_len`]).
///
/// `progress(iteration, residual)` runs after every iteration; returning false cancels.
/// Running out of iterations is not an error: `converged` is false.
pub fn solve(
    grid: &Grid,
    p: &Problem,
    m0: &[f64],
    init: &[f64],
    opts: &Options,
    progress: &mut dyn FnMut(usize, f64) -> bool,
) -> Result<Solution> {
    check(grid, p, m0, init, opts)?;
    let Grid { n, nt, .. } = *grid;
    let dx = grid.dx();
    let mut work = Work::new(*grid);
    let mut u = vec![0.0; (nt + 1) * n];
    let mut nu = vec![0.0; nt * n];
    let mut m = vec![0.0; (nt + 1) * n];
    let mut m_prev = vec![0.0; (nt + 1) * n];
    let mass0 = m0.iter().sum::<f64>() * dx;
    for (dst, src) in m.iter_mut().zip(m0) {
        *dst = src / mass0;
    }
    m_prev[..n].copy_from_slice(&m[..n]);
    let mut z = init.to_vec();
    let mut tz = vec![0.0; z.len()];
    let mut residuals = Vec::new();
    let mut density_changes = Vec::new();
    let mut converged;
    let mut anderson = match opts.method {
        Method::Anderson { damping, depth } => Some(Anderson::new(depth, damping)),
        _ => None,
    };
    let mut stats;
    let mut k = 0;
    loop {
        work.hjb(p, &z, &mut u, &mut nu);
        stats = work.fp(&mut m);
        if !stats.mass_error.is_finite() || stats.mass_error > 1e-6 {
            return Err(KernelError::Numerical(format!(
                "the Fokker–Planck sweep lost mass (error {:.3e}) at iteration {}; \
                 check the inputs are of moderate size",
                stats.mass_error,
                k + 1
            )));
        }
        work.field(p, &m, &nu, &mut tz);
        let residual = z
            .iter()
            .zip(&tz)
            .fold(0.0_f64, |acc, (a, b)| acc.max((b - a).abs()));
        let change = if k == 0 {
            f64::NAN
        } else {
            l1_change(&m, &m_prev, n, dx)
        };
        residuals.push(residual);
        density_changes.push(change);
        let scale = opts.tol * (1.0 + max_abs(&z));
        let (weight, moved) = match opts.method {
            Method::Picard { damping } => (damping, damping * residual),
            // The averaging step shrinks like 1/k whatever the error, and the Anderson step
            // is not a multiple of the residual, so both are judged on the residual itself.
            Method::FictitiousPlay => (1.0 / (k + 1) as f64, residual),
            Method::Anderson { damping, .. } => (damping, residual),
        };
        k += 1;
        converged = moved <= scale && change <= opts.tol;
        if !progress(k, residual) {
            return Err(KernelError::Cancelled);
        }
        if converged || k >= opts.max_iter {
            break;
        }
        if let Some(acc) = anderson.as_mut() {
            let f: Vec<f64> = tz.iter().zip(&z).map(|(t, zi)| t - zi).collect();
            acc.step(&mut z, &f);
        } else {
            for (zi, ti) in z.iter_mut().zip(&tz) {
                *zi += weight * (ti - *zi);
            }
        }
        std::mem::swap(&mut m, &mut m_prev);
        m[..n].copy_from_slice(&m_prev[..n]);
    }
    let mut mean = vec![0.0; nt + 1];
    let mut var = vec![0.0; nt + 1];
    for (k, row) in m.chunks_exact(n).enumerate() {
        let e = row.iter().zip(&work.x).map(|(a, b)| a * b).sum::<f64>() * dx;
        let s = row
            .iter()
            .zip(&work.x)
            .map(|(a, b)| a * (b - e) * (b - e))
            .sum::<f64>()
            * dx;
        mean[k] = e;
        var[k] = s;
    }
    if !converged && residuals.last().is_some_and(|r| !r.is_finite()) {
        return Err(KernelError::Numerical(
            "the fixed-point iteration diverged".into(),
        ));
    }
    Ok(Solution {
        m,
        u,
        nu,
        field: z,
        realised: tz,
        mean,
        var,
        iterations: k,
        converged,
        residuals,
        density_changes,
        mass_error: stats.mass_error,
        min_density: stats.min_density,
        clipped: stats.clipped,
    })
}

/// The density and sweep health of a forward Fokker–Planck solve for a given control.
#[derive(Debug, Clone)]
pub struct Transport {
    /// (nt + 1) x n, unit mass on every row.
    pub m: Vec<f64>,
    pub mass_error: f64,
    pub min_density: f64,
    pub clipped: usize,
}

/// Moves `m0` (normalised here) forward under the node controls `nu` (nt x n) with
/// diffusion `eps`, using the same matrices as the coupled solver.
pub fn fokker_planck(grid: &Grid, eps: f64, nu: &[f64], m0: &[f64]) -> Result<Transport> {
    let p = Problem {
        kappa: 1.0,
        eps,
        phi: 0.0,
        g2: 0.0,
        coupling: Coupling::Controls { alpha: 0.0 },
    };
    let opts = Options {
        method: Method::Picard { damping: 1.0 },
        tol: 1.0,
        max_iter: 1,
    };
    check(grid, &p, m0, &vec![0.0; grid.nt], &opts)?;
    let Grid { n, nt, .. } = *grid;
    if nu.len() != nt * n {
        return Err(invalid(format!(
            "the control has {} values, the grid needs nt * n = {}",
            nu.len(),
            nt * n
        )));
    }
    if let Some(v) = nu.iter().find(|v| !v.is_finite()) {
        return Err(invalid(format!("the control must be finite, got {v}")));
    }
    let dx = grid.dx();
    let (dt, inv_dx, d) = (grid.dt(), 1.0 / dx, eps / (dx * dx));
    let mut work = Work::new(*grid);
    for k in 0..nt {
        let rows = k * n..(k + 1) * n;
        let lower = &mut work.lower[rows.clone()];
        let upper = &mut work.upper[rows.clone()];
        fill_matrix(
            &nu[rows.clone()],
            dt,
            inv_dx,
            d,
            lower,
            &mut work.diag,
            upper,
        );
        factor(lower, &work.diag, upper, &mut work.inv[rows]);
    }
    let mut m = vec![0.0; (nt + 1) * n];
    let mass0 = m0.iter().sum::<f64>() * dx;
    for (dst, src) in m.iter_mut().zip(m0) {
        *dst = src / mass0;
    }
    let stats = work.fp(&mut m);
    Ok(Transport {
        m,
        mass_error: stats.mass_error,
        min_density: stats.min_density,
        clipped: stats.clipped,
    })
}

#[cfg(test)]
mod tests;
