//! Franke–Westerhoff / Chiarella agent model, stylized facts and MSM (COMPUTE-SPEC 2).
//!
//! Each simulated path draws its shocks from its own stream
//! `(seed, SIM_PATH, path)`, so paths do not depend on thread count and
//! adding paths leaves the first ones unchanged.

pub mod facts;
pub mod msm;

use crate::error::{Result, invalid};
use crate::rng::{fill_normals, purpose, stream};
use rayon::prelude::*;

/// The chartists' demand rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// d_c = chi (p_t - p_{t-1}) + sigma_c eps (Franke–Westerhoff).
    FwLinear,
    /// d_c = chi tanh(gamma M_t) + sigma_c eps, M an EWMA of price changes.
    ChiarellaTanh { gamma: f64, alpha: f64 },
    /// d_c = chi tanh(gamma (p_t - p̄_{t,L})) + sigma_c eps, p̄ the L-day moving
    /// average of the log-price including p_t (Chiarella, He & Hommes 2006).
    MaTanh { gamma: f64, window: usize },
}

/// The longest moving-average window `Rule::MaTanh` accepts.
pub const MAX_WINDOW: usize = 100_000;

/// The DCA-HPM parameters (FW 2012 daily S&P 500 estimates by default).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Model {
    pub beta: f64,
    pub mu: f64,
    pub phi: f64,
    pub chi: f64,
    pub sigma_f: f64,
    pub sigma_c: f64,
    pub alpha0: f64,
    pub alpha_n: f64,
    pub alpha_p: f64,
    /// Random-walk fundamental step sd (0 = constant p* = 0).
    pub sigma_star: f64,
    pub rule: Rule,
    pub burn_in: usize,
}

impl Default for Model {
    fn default() -> Self {
        Self {
            beta: 1.0,
            mu: 0.01,
            phi: 0.12,
            chi: 1.50,
            sigma_f: 0.708,
            sigma_c: 2.147,
            alpha0: -0.336,
            alpha_n: 1.839,
            alpha_p: 19.671,
            sigma_star: 0.0,
            rule: Rule::FwLinear,
            burn_in: 500,
        }
    }
}

/// Shocks per step: (eps_f, eps_c) or (eps_f, eps_c, eta) with a moving fundamental.
impl Model {
    pub fn n_shocks(&self) -> usize {
        if self.sigma_star > 0.0 { 3 } else { 2 }
    }

    pub fn validate(&self) -> Result<()> {
        let vals = [
            self.beta,
            self.mu,
            self.phi,
            self.chi,
            self.sigma_f,
            self.sigma_c,
            self.alpha0,
            self.alpha_n,
            self.alpha_p,
            self.sigma_star,
        ];
        if vals.iter().any(|v| !v.is_finite()) {
            return Err(invalid("every model parameter must be finite"));
        }
        if self.sigma_f < 0.0 || self.sigma_c < 0.0 || self.sigma_star < 0.0 {
            return Err(invalid(
                "noise scales sigma_f, sigma_c, sigma_star must be >= 0",
            ));
        }
        if let Rule::ChiarellaTanh { gamma, alpha } = self.rule
            && (!gamma.is_finite() || !(0.0..=1.0).contains(&alpha))
        {
            return Err(invalid(
                "chiarella_tanh needs a finite gamma and alpha in [0, 1]",
            ));
        }
        if let Rule::MaTanh { gamma, window } = self.rule
            && (!gamma.is_finite() || !(1..=MAX_WINDOW).contains(&window))
        {
            return Err(invalid(format!(
                "ma_tanh needs a finite gamma and a window in 1..={MAX_WINDOW}, got {window}"
            )));
        }
        Ok(())
    }
}

/// One simulated path after burn-in (length T each).
#[derive(Debug, Clone, Default)]
pub struct Path {
    /// Returns in percent, 100 (p_t - p_{t-1}).
    pub returns: Vec<f64>,
    pub log_price: Vec<f64>,
    /// Majority index x_t in (-1, 1).
    pub x: Vec<f64>,
    /// Fundamentalist share n^f_t = (1 + x_t) / 2.
    pub nf: Vec<f64>,
    /// The path left the sane range (|p| > 1e3 or non-finite); the rest is NaN.
    pub blown_up: bool,
}

/// The state carried from one step to the next.
#[derive(Debug, Clone, Default)]
struct Lane {
    p: f64,
    prev: f64,
    x: f64,
    mom: f64,
    ps: f64,
    ma: Window,
}

impl Lane {
    /// Start at p = p* = 0, x = 0, p_{-1} = p_0; the MA window is padded with p_0.
    fn new(m: &Model) -> Self {
        let ma = match m.rule {
            Rule::MaTanh { window, .. } => Window::new(window, 0.0),
            _ => Window::default(),
        };
        Self {
            ma,
            ..Self::default()
        }
    }
}

/// Running mean of the last L prices. The sum is compensated (Neumaier), so its
/// error stays O(eps) over any number of steps instead of drifting.
#[derive(Debug, Clone, Default)]
struct Window {
    buf: Vec<f64>,
    head: usize,
    sum: f64,
    comp: f64,
}

impl Window {
    fn new(len: usize, fill: f64) -> Self {
        Self {
            buf: vec![fill; len],
            head: 0,
            sum: fill * len as f64,
            comp: 0.0,
        }
    }

    fn mean(&self) -> f64 {
        (self.sum + self.comp) / self.buf.len() as f64
    }

    fn add(&mut self, v: f64) {
        let t = self.sum + v;
        self.comp += if self.sum.abs() >= v.abs() {
            (self.sum - t) + v
        } else {
            (v - t) + self.sum
        };
        self.sum = t;
    }

    fn push(&mut self, p: f64) {
        let old = std::mem::replace(&mut self.buf[self.head], p);
        self.head = (self.head + 1) % self.buf.len();
        self.add(p);
        self.add(-old);
    }
}

/// tanh as 1 - 2/(e^{2z} + 1): half the latency of libm's tanh on the serial
/// chain x_t -> x_{t+1}, absolute error <= 4e-16 (measured), exactly 0 at z = 0
/// and ±1 in saturation (|z| <= 350 after the |a| <= 700 cap; e^{2z} may be inf).
#[inline(always)]
pub fn fast_tanh(z: f64) -> f64 {
    1.0 - 2.0 / ((2.0 * z).exp() + 1.0)
}

/// One step of the recursion; returns (p_new, x_new) and advances the lane.
#[inline(always)]
fn advance(m: &Model, s: &mut Lane, e: &[f64]) -> (f64, f64) {
    let nf = 0.5 * (1.0 + s.x);
    let nc = 1.0 - nf;
    let df = m.phi * (s.ps - s.p) + m.sigma_f * e[0];
    let dc = match m.rule {
        Rule::FwLinear => m.chi * (s.p - s.prev),
        Rule::ChiarellaTanh { gamma, .. } => m.chi * fast_tanh(gamma * s.mom),
        Rule::MaTanh { gamma, .. } => m.chi * fast_tanh(gamma * (s.p - s.ma.mean())),
    } + m.sigma_c * e[1];
    let p_new = s.p + m.mu * (nf * df + nc * dc);
    let dev = s.p - s.ps;
    let a = (m.alpha0 + m.alpha_n * s.x + m.alpha_p * dev * dev).clamp(-700.0, 700.0);
    let x_new = fast_tanh(0.5 * m.beta * a);
    match m.rule {
        Rule::ChiarellaTanh { alpha, .. } => s.mom = (1.0 - alpha) * s.mom + alpha * (p_new - s.p),
        Rule::MaTanh { .. } => s.ma.push(p_new),
        Rule::FwLinear => {}
    }
    if e.len() == 3 {
        s.ps += m.sigma_star * e[2];
    }
    s.prev = s.p;
    s.p = p_new;
    s.x = x_new;
    (p_new, x_new)
}

fn sane(p: f64) -> bool {
    p.is_finite() && p.abs() <= 1e3
}

/// Run one path over `shocks` (row-major steps × n_shocks, steps = burn_in + t).
/// With `full = false` only the returns are kept.
pub fn run_path(m: &Model, shocks: &[f64], t: usize, full: bool) -> Path {
    let k = m.n_shocks();
    let mut out = Path {
        returns: vec![f64::NAN; t],
        ..Path::default()
    };
    if full {
        out.log_price = vec![f64::NAN; t];
        out.x = vec![f64::NAN; t];
        out.nf = vec![f64::NAN; t];
    }
    let mut s = Lane::new(m);
    for (step, e) in shocks.chunks_exact(k).take(m.burn_in + t).enumerate() {
        let p_old = s.p;
        let (p_new, x_new) = advance(m, &mut s, e);
        if !sane(p_new) {
            out.blown_up = true;
            break;
        }
        if step >= m.burn_in {
            let i = step - m.burn_in;
            out.returns[i] = 100.0 * (p_new - p_old);
            if full {
                out.log_price[i] = p_new;
                out.x[i] = x_new;
                out.nf[i] = 0.5 * (1.0 + x_new);
            }
        }
    }
    out
}

/// Paths run in lockstep, so the latency of one lane's tanh overlaps with the
/// others'. Each lane does exactly what `run_path` does (bitwise).
pub fn run_lanes<const L: usize>(
    m: &Model,
    shocks: [&[f64]; L],
    t: usize,
    full: bool,
) -> [Path; L] {
    let k = m.n_shocks();
    let mut out: [Path; L] = std::array::from_fn(|_| {
        let nan = || if full { vec![f64::NAN; t] } else { Vec::new() };
        Path {
            returns: vec![f64::NAN; t],
            log_price: nan(),
            x: nan(),
            nf: nan(),
            blown_up: false,
        }
    });
    let mut lanes: [Lane; L] = std::array::from_fn(|_| Lane::new(m));
    let mut alive = [true; L];
    for step in 0..m.burn_in + t {
        let at = step * k;
        for l in 0..L {
            if !alive[l] {
                continue;
            }
            let p_old = lanes[l].p;
            let (p_new, x_new) = advance(m, &mut lanes[l], &shocks[l][at..at + k]);
            if !sane(p_new) {
                alive[l] = false;
                out[l].blown_up = true;
            } else if step >= m.burn_in {
                let (i, o) = (step - m.burn_in, &mut out[l]);
                o.returns[i] = 100.0 * (p_new - p_old);
                if full {
                    o.log_price[i] = p_new;
                    o.x[i] = x_new;
                    o.nf[i] = 0.5 * (1.0 + x_new);
                }
            }
        }
    }
    out
}

/// Paths run in lockstep by `run_many`, and the size of one parallel task.
pub const LANES: usize = 4;

/// Paths for a set of shock vectors, LANES at a time.
pub fn run_many(m: &Model, shocks: &[&[f64]], t: usize, full: bool) -> Vec<Path> {
    let mut out = Vec::with_capacity(shocks.len());
    let mut chunks = shocks.chunks_exact(LANES);
    for c in &mut chunks {
        out.extend(run_lanes::<LANES>(
            m,
            std::array::from_fn(|i| c[i]),
            t,
            full,
        ));
    }
    out.extend(chunks.remainder().iter().map(|sh| run_path(m, sh, t, full)));
    out
}

/// The standard-normal shocks of path `index` under `seed`.
pub fn path_shocks(m: &Model, seed: u64, index: u64, t: usize) -> Vec<f64> {
    let mut buf = vec![0.0; (m.burn_in + t) * m.n_shocks()];
    fill_normals(&mut stream(seed, purpose::SIM_PATH, index), &mut buf);
    buf
}

fn check_len(t: usize) -> Result<()> {
    if t == 0 {
        return Err(invalid("n_steps must be at least 1"));
    }
    Ok(())
}

/// Simulate `n_paths` paths with seeded shocks, one rayon task per path.
pub fn simulate(m: &Model, t: usize, n_paths: usize, seed: u64, full: bool) -> Result<Vec<Path>> {
    m.validate()?;
    check_len(t)?;
    if n_paths == 0 {
        return Err(invalid("n_paths must be at least 1"));
    }
    // One group of LANES paths, its shocks drawn by index.
    let group = |idx: &[usize]| {
        let sh: Vec<Vec<f64>> = idx
            .iter()
            .map(|&s| path_shocks(m, seed, s as u64, t))
            .collect();
        run_many(
            m,
            &sh.iter().map(Vec::as_slice).collect::<Vec<_>>(),
            t,
            full,
        )
    };
    let idx: Vec<usize> = (0..n_paths).collect();
    if n_paths <= LANES {
        // One group: nothing to spread over threads.
        return Ok(group(&idx));
    }
    let groups: Vec<Vec<Path>> = idx.par_chunks(LANES).map(group).collect();
    Ok(groups.into_iter().flatten().collect())
}

/// Simulate with injected shocks: `shocks` is paths × (burn_in + t) × n_shocks, row-major.
pub fn simulate_with(m: &Model, t: usize, shocks: &[f64], full: bool) -> Result<Vec<Path>> {
    m.validate()?;
    check_len(t)?;
    let per = (m.burn_in + t) * m.n_shocks();
    if shocks.is_empty() || shocks.len() % per != 0 {
        return Err(invalid(format!(
            "shocks must have shape (n_paths, burn_in + n_steps = {}, {})",
            m.burn_in + t,
            m.n_shocks()
        )));
    }
    if shocks.iter().any(|v| !v.is_finite()) {
        return Err(invalid("shocks must be finite"));
    }
    let paths: Vec<&[f64]> = shocks.chunks_exact(per).collect();
    if paths.len() <= LANES {
        // One group: nothing to spread over threads.
        return Ok(run_many(m, &paths, t, full));
    }
    let groups: Vec<Vec<Path>> = paths
        .par_chunks(LANES)
        .map(|g| run_many(m, g, t, full))
        .collect();
    Ok(groups.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_reproducible_and_prefix_stable() {
        let m = Model::default();
        let a = simulate(&m, 300, 3, 9, false).unwrap();
        let b = simulate(&m, 300, 5, 9, false).unwrap();
        for i in 0..3 {
            assert_eq!(a[i].returns, b[i].returns);
        }
        assert!(
            a.iter()
                .all(|p| !p.blown_up && p.returns.iter().all(|r| r.is_finite()))
        );
    }

    #[test]
    fn lanes_equal_single_paths_bitwise() {
        for m in [
            Model::default(),
            Model {
                rule: Rule::ChiarellaTanh {
                    gamma: 10.0,
                    alpha: 0.2,
                },
                sigma_star: 0.1,
                ..Model::default()
            },
            Model {
                rule: Rule::MaTanh {
                    gamma: 8.0,
                    window: 20,
                },
                ..Model::default()
            },
            Model {
                phi: -50.0,
                chi: 50.0,
                ..Model::default()
            },
        ] {
            let sh: Vec<Vec<f64>> = (0..7).map(|s| path_shocks(&m, 3, s, 400)).collect();
            let refs: Vec<&[f64]> = sh.iter().map(Vec::as_slice).collect();
            let lanes = run_many(&m, &refs, 400, true);
            for (s, p) in sh.iter().zip(&lanes) {
                let one = run_path(&m, s, 400, true);
                assert_eq!(one.blown_up, p.blown_up);
                for (a, b) in [
                    (&one.returns, &p.returns),
                    (&one.log_price, &p.log_price),
                    (&one.x, &p.x),
                    (&one.nf, &p.nf),
                ] {
                    assert!(a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits()));
                }
            }
        }
    }

    #[test]
    fn window_mean_tracks_exact_mean() {
        let mut w = Window::new(7, 0.0);
        let xs: Vec<f64> = (0..5000).map(|i| 1e3 * ((i as f64) * 0.37).sin()).collect();
        for (i, &x) in xs.iter().enumerate() {
            w.push(x);
            // Before 7 pushes the window still holds its zero padding.
            let exact = xs[(i + 1).saturating_sub(7)..=i].iter().sum::<f64>() / 7.0;
            assert!((w.mean() - exact).abs() < 1e-12, "{i}");
        }
    }

    #[test]
    fn ma_rule_with_window_one_is_pure_noise_demand() {
        // p̄_{t,1} = p_t, so tanh(0) = 0: the chartists only add sigma_c noise,
        // the same path as fw_linear with chi = 0.
        let ma = Model {
            rule: Rule::MaTanh {
                gamma: 5.0,
                window: 1,
            },
            ..Model::default()
        };
        let lin = Model {
            chi: 0.0,
            ..Model::default()
        };
        let sh = path_shocks(&ma, 4, 0, 300);
        let (a, b) = (
            run_path(&ma, &sh, 300, false),
            run_path(&lin, &sh, 300, false),
        );
        assert!(
            a.returns
                .iter()
                .zip(&b.returns)
                .all(|(x, y)| (x - y).abs() < 1e-12)
        );
        let bad = Model {
            rule: Rule::MaTanh {
                gamma: 5.0,
                window: 0,
            },
            ..Model::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn fast_tanh_is_accurate() {
        let mut worst: f64 = 0.0;
        for i in -200_000..=200_000 {
            let z = i as f64 * 1e-4;
            worst = worst.max((fast_tanh(z) - z.tanh()).abs());
        }
        assert!(worst < 5e-16, "{worst}");
        assert_eq!(fast_tanh(0.0), 0.0);
        assert_eq!(fast_tanh(400.0), 1.0);
        assert_eq!(fast_tanh(-400.0), -1.0);
        assert!(fast_tanh(1e-12) != 0.0);
    }

    #[test]
    fn blow_up_is_flagged() {
        let m = Model {
            phi: -50.0,
            chi: 50.0,
            ..Model::default()
        };
        let p = simulate(&m, 200, 1, 1, true).unwrap();
        assert!(p[0].blown_up);
    }
}
