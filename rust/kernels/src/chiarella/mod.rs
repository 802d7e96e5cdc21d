//! Franke–Westerhoff / Chiarella agent model, stylized facts and MSM (docs/compute.md §2).
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

/// Simulated paths after burn-in, row-major S × T. A path that left the sane
/// range (|p| > 1e3 or non-finite) is flagged and NaN from that step on.
#[derive(Debug, Clone, Default)]
pub struct Paths {
    pub t: usize,
    /// Returns in percent, 100 (p_t - p_{t-1}).
    pub returns: Vec<f64>,
    /// Log-price; empty unless the full state was asked for (as are `x` and `nf`).
    pub log_price: Vec<f64>,
    /// Majority index x_t in (-1, 1).
    pub x: Vec<f64>,
    /// Fundamentalist share n^f_t = (1 + x_t) / 2.
    pub nf: Vec<f64>,
    pub blown_up: Vec<bool>,
}

impl Paths {
    fn new(n_paths: usize, t: usize, full: bool) -> Self {
        let f = if full { n_paths * t } else { 0 };
        Self {
            t,
            returns: vec![0.0; n_paths * t],
            log_price: vec![0.0; f],
            x: vec![0.0; f],
            nf: vec![0.0; f],
            blown_up: vec![false; n_paths],
        }
    }

    pub fn len(&self) -> usize {
        self.blown_up.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blown_up.is_empty()
    }

    /// The returns of path `i`.
    pub fn path(&self, i: usize) -> &[f64] {
        &self.returns[i * self.t..(i + 1) * self.t]
    }

    /// One writer per path, in path order.
    fn outs(&mut self) -> Vec<PathOut<'_>> {
        let t = self.t;
        let mut lp = self.log_price.chunks_mut(t);
        let mut x = self.x.chunks_mut(t);
        let mut nf = self.nf.chunks_mut(t);
        self.returns
            .chunks_mut(t)
            .map(|returns| PathOut {
                returns,
                log_price: lp.next().unwrap_or_default(),
                x: x.next().unwrap_or_default(),
                nf: nf.next().unwrap_or_default(),
            })
            .collect()
    }
}

/// Where one path's output goes: `returns` always, the rest only when they are
/// not empty (the full state).
struct PathOut<'a> {
    returns: &'a mut [f64],
    log_price: &'a mut [f64],
    x: &'a mut [f64],
    nf: &'a mut [f64],
}

impl PathOut<'_> {
    #[inline(always)]
    fn record(&mut self, i: usize, p_old: f64, p_new: f64, x_new: f64) {
        self.returns[i] = 100.0 * (p_new - p_old);
        if !self.x.is_empty() {
            self.log_price[i] = p_new;
            self.x[i] = x_new;
            self.nf[i] = 0.5 * (1.0 + x_new);
        }
    }

    /// Everything from output index `i` on is undefined.
    fn void_from(&mut self, i: usize) {
        for v in [
            &mut *self.returns,
            &mut *self.log_price,
            &mut *self.x,
            &mut *self.nf,
        ] {
            let from = i.min(v.len());
            v[from..].fill(f64::NAN);
        }
    }
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

/// Paths run in lockstep, so the latency of one lane's tanh overlaps with the
/// others'. Lanes are independent: a path's output does not depend on L or on
/// its neighbours. Returns which lanes blew up.
fn run_lanes<const L: usize>(
    m: &Model,
    shocks: [&[f64]; L],
    t: usize,
    outs: &mut [PathOut<'_>; L],
) -> [bool; L] {
    let k = m.n_shocks();
    let mut lanes: [Lane; L] = std::array::from_fn(|_| Lane::new(m));
    let mut blown = [false; L];
    for step in 0..m.burn_in + t {
        let at = step * k;
        for l in 0..L {
            if blown[l] {
                continue;
            }
            let p_old = lanes[l].p;
            let (p_new, x_new) = advance(m, &mut lanes[l], &shocks[l][at..at + k]);
            if !sane(p_new) {
                blown[l] = true;
                outs[l].void_from(step.saturating_sub(m.burn_in));
            } else if step >= m.burn_in {
                outs[l].record(step - m.burn_in, p_old, p_new, x_new);
            }
        }
    }
    blown
}

/// Paths run in lockstep by `run_lanes`, and the size of one parallel task.
pub const LANES: usize = 4;

/// One task: LANES paths in lockstep, or fewer one at a time.
fn run_group(m: &Model, shocks: &[&[f64]], t: usize, outs: &mut [PathOut<'_>], blown: &mut [bool]) {
    if let Ok(o) = <&mut [PathOut<'_>; LANES]>::try_from(&mut *outs) {
        blown.copy_from_slice(&run_lanes::<LANES>(
            m,
            std::array::from_fn(|i| shocks[i]),
            t,
            o,
        ));
        return;
    }
    for ((sh, o), b) in shocks
        .iter()
        .zip(outs.chunks_exact_mut(1))
        .zip(blown.iter_mut())
    {
        let o: &mut [PathOut<'_>; 1] = o.try_into().expect("chunks of one");
        *b = run_lanes::<1>(m, [sh], t, o)[0];
    }
}

/// Run `shocks.len()` paths (each (burn_in + t) × n_shocks, row-major) into one
/// flat result, LANES paths per task; `parallel` spreads the tasks over rayon.
pub fn run_paths(m: &Model, shocks: &[&[f64]], t: usize, full: bool, parallel: bool) -> Paths {
    let mut out = Paths::new(shocks.len(), t, full);
    let mut blown = std::mem::take(&mut out.blown_up);
    let mut outs = out.outs();
    if parallel && shocks.len() > LANES {
        outs.par_chunks_mut(LANES)
            .zip(shocks.par_chunks(LANES))
            .zip(blown.par_chunks_mut(LANES))
            .for_each(|((o, sh), b)| run_group(m, sh, t, o, b));
    } else {
        for ((o, sh), b) in outs
            .chunks_mut(LANES)
            .zip(shocks.chunks(LANES))
            .zip(blown.chunks_mut(LANES))
        {
            run_group(m, sh, t, o, b);
        }
    }
    drop(outs);
    out.blown_up = blown;
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

/// Simulate `n_paths` paths with seeded shocks (stream `index` per path).
pub fn simulate(m: &Model, t: usize, n_paths: usize, seed: u64, full: bool) -> Result<Paths> {
    m.validate()?;
    check_len(t)?;
    if n_paths == 0 {
        return Err(invalid("n_paths must be at least 1"));
    }
    let draw = |s: usize| path_shocks(m, seed, s as u64, t);
    // One group of lanes: nothing to spread over threads.
    let parallel = n_paths > LANES;
    let sh: Vec<Vec<f64>> = if parallel {
        (0..n_paths).into_par_iter().map(draw).collect()
    } else {
        (0..n_paths).map(draw).collect()
    };
    let refs: Vec<&[f64]> = sh.iter().map(Vec::as_slice).collect();
    Ok(run_paths(m, &refs, t, full, parallel))
}

/// Simulate with injected shocks: `shocks` is paths × (burn_in + t) × n_shocks, row-major.
pub fn simulate_with(m: &Model, t: usize, shocks: &[f64], full: bool) -> Result<Paths> {
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
    Ok(run_paths(m, &paths, t, full, true))
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
            assert_eq!(a.path(i), b.path(i));
        }
        assert_eq!(a.len(), 3);
        assert!(a.x.is_empty());
        assert!(!a.blown_up.iter().any(|&b| b) && a.returns.iter().all(|r| r.is_finite()));
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
            let all = run_paths(&m, &refs, 400, true, true);
            assert!(bitwise(&all, &run_paths(&m, &refs, 400, true, false)));
            for (i, s) in refs.iter().enumerate() {
                let one = run_paths(&m, &[s], 400, true, false);
                let row = |v: &Vec<f64>| v[i * 400..(i + 1) * 400].to_vec();
                let lane = Paths {
                    t: 400,
                    returns: row(&all.returns),
                    log_price: row(&all.log_price),
                    x: row(&all.x),
                    nf: row(&all.nf),
                    blown_up: vec![all.blown_up[i]],
                };
                assert!(bitwise(&one, &lane), "path {i}");
            }
        }
    }

    fn bitwise(a: &Paths, b: &Paths) -> bool {
        let eq = |x: &[f64], y: &[f64]| {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits())
        };
        a.blown_up == b.blown_up
            && eq(&a.returns, &b.returns)
            && eq(&a.log_price, &b.log_price)
            && eq(&a.x, &b.x)
            && eq(&a.nf, &b.nf)
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
            run_paths(&ma, &[&sh], 300, false, false),
            run_paths(&lin, &[&sh], 300, false, false),
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
        assert!(p.blown_up[0]);
        assert!(p.returns.iter().all(|r| r.is_nan()) && p.x.iter().all(|v| v.is_nan()));
    }
}
