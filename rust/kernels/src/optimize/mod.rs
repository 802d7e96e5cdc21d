//! Differential evolution, SHADE and L-SHADE with benchmark functions (docs/compute.md §4).
//!
//! Evaluation is generation-synchronous: all trials of a generation are built
//! from that generation's own stream `(seed, DE_GENERATION, g + 1)`, evaluated
//! as one batch (in parallel for Rust objectives), then selected serially.
//! So a seed gives the same run whatever the thread count.

pub mod functions;
pub mod init;
mod shade;
mod simd;
pub mod sobol;
pub mod step;

pub use functions::Builtin;
pub use init::Init;
pub use step::{Crossover, Method, Mutation, Params, Repair, Scratch, State, Strategy, Trials};

use crate::error::{Result, invalid};
use crate::rng::{SplitMix, purpose};
use step::Source;

/// L-SHADE constants: (N_init per dimension, H, archive rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// Tanabe & Fukunaga (2014) CEC-2014 code: N = 18 D, H = 6, r_arc = 2.6.
    Lshade2014,
    /// The CEC-2021 MATLAB port: H = 5, r_arc = 1.4.
    LshadeCec21,
}

impl Preset {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "lshade2014" => Ok(Self::Lshade2014),
            "lshade_cec21" => Ok(Self::LshadeCec21),
            _ => Err(invalid(format!(
                "unknown preset {name:?}; choose lshade2014 or lshade_cec21"
            ))),
        }
    }
}

/// What the caller asks for; `None` fields take the defaults of docs/compute.md §4.
#[derive(Debug, Clone)]
pub struct Config {
    pub method: Method,
    pub preset: Preset,
    pub pop_size: Option<usize>,
    pub max_evals: usize,
    pub seed: u64,
    /// Stop once the best value is <= target.
    pub target: Option<f64>,
    /// Stop after this many generations without improvement of the best.
    pub stagnation: Option<usize>,
    pub f: f64,
    pub cr: f64,
    pub repair: Option<Repair>,
    /// Classic DE only: Storn–Price order, each trial replaces its parent at once.
    pub immediate: bool,
    /// Population collapse: stop when std(f) <= atol + tol·|mean f| (off when None).
    pub tol: Option<f64>,
    pub atol: f64,
    /// Classic DE only: mutation x crossover, and F ~ U[lo, hi] per generation.
    pub strategy: Strategy,
    pub dither: Option<(f64, f64)>,
    /// The first population's layout (ignored when `minimize` gets one).
    pub init: Init,
}

impl Config {
    pub fn new(method: Method, max_evals: usize, seed: u64) -> Self {
        Self {
            method,
            preset: Preset::Lshade2014,
            pop_size: None,
            max_evals,
            seed,
            target: None,
            stagnation: None,
            f: 0.5,
            cr: 0.9,
            repair: None,
            immediate: false,
            tol: None,
            atol: 0.0,
            strategy: Strategy::default(),
            dither: None,
            init: Init::Uniform,
        }
    }

    /// The resolved algorithm constants for dimension `d`.
    pub fn params(&self, d: usize) -> Params {
        let (n_default, h, arc_rate, p) = match (self.method, self.preset) {
            (Method::De, _) => ((10 * d).max(20), 1, 0.0, 0.0),
            (Method::Shade, _) => (100, 100, 1.0, 0.0),
            (Method::Lshade, Preset::Lshade2014) => ((18 * d).max(4), 6, 2.6, 0.11),
            (Method::Lshade, Preset::LshadeCec21) => ((18 * d).max(4), 5, 1.4, 0.11),
        };
        let n_init = self.pop_size.unwrap_or(n_default);
        Params {
            method: self.method,
            n_init,
            n_min: 4.min(n_init),
            h,
            arc_rate,
            p,
            f: self.f,
            cr: self.cr,
            strategy: self.strategy,
            dither: self.dither,
            repair: self.repair.unwrap_or(match self.method {
                Method::De => Repair::Resample,
                _ => Repair::Midpoint,
            }),
            max_evals: self.max_evals,
        }
    }
}

/// Progress reported after every generation.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub generation: usize,
    pub nfev: usize,
    pub max_evals: usize,
    pub best: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    MaxEvals,
    Target,
    Stagnation,
    Collapse,
    Cancelled,
}

impl Stop {
    pub fn message(self) -> &'static str {
        match self {
            Self::MaxEvals => "maximum number of evaluations reached",
            Self::Target => "target value reached",
            Self::Stagnation => "stopped: no improvement of the best value (stagnation)",
            Self::Collapse => "stopped: the population collapsed (spread below tolerance)",
            Self::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub x: Vec<f64>,
    pub fun: f64,
    pub nfev: usize,
    pub nit: usize,
    pub stop: Stop,
    /// Best value after each generation (index 0 = initial population).
    pub history: Vec<f64>,
    pub mem_cr: Vec<f64>,
    pub mem_f: Vec<f64>,
    pub final_pop_size: usize,
}

/// Batch evaluator: fill `out[k]` with f(row k of `xs`).
pub type Eval<'a> = dyn FnMut(&[f64], usize, &mut [f64]) -> Result<()> + 'a;
/// Called after each generation; return false to cancel.
pub type OnGeneration<'a> = dyn FnMut(&Progress) -> bool + 'a;

fn check_bounds(lower: &[f64], upper: &[f64]) -> Result<()> {
    if lower.is_empty() || lower.len() != upper.len() {
        return Err(invalid(
            "bounds must be a non-empty list of (low, high) pairs",
        ));
    }
    for (j, (l, u)) in lower.iter().zip(upper).enumerate() {
        if !(l.is_finite() && u.is_finite() && l < u) {
            return Err(invalid(format!(
                "bound {j} must be finite with low < high, got ({l}, {u})"
            )));
        }
    }
    Ok(())
}

/// The uniform initial population for `seed` (row-major, n × d).
pub fn initial_population(seed: u64, n: usize, lower: &[f64], upper: &[f64]) -> Vec<f64> {
    init::population(Init::Uniform, seed, n, lower, upper).unwrap_or_default()
}

/// F, CR, strategy and dither checks for classic DE (SciPy's ranges: F and
/// the dither ends in [0, 2], CR in [0, 1]).
fn check_de(cfg: &Config) -> Result<()> {
    let in_range = |v: f64, hi: f64| v.is_finite() && (0.0..=hi).contains(&v);
    if cfg.method != Method::De {
        if cfg.strategy != Strategy::default() || cfg.dither.is_some() {
            return Err(invalid(
                "strategy and a (lo, hi) mutation (dither) are only defined for method de",
            ));
        }
        return Ok(());
    }
    if !in_range(cfg.f, 2.0) || !in_range(cfg.cr, 1.0) {
        return Err(invalid(format!(
            "mutation must be in [0, 2] and recombination in [0, 1], got {} and {}",
            cfg.f, cfg.cr
        )));
    }
    if let Some((lo, hi)) = cfg.dither {
        if !(in_range(lo, 2.0) && in_range(hi, 2.0) && lo <= hi) {
            return Err(invalid(format!(
                "a dither mutation (lo, hi) needs 0 <= lo <= hi <= 2, got ({lo}, {hi})"
            )));
        }
    }
    Ok(())
}

/// Minimise over the box [lower, upper]. `init` optionally fixes the first population.
pub fn minimize(
    cfg: &Config,
    lower: &[f64],
    upper: &[f64],
    init: Option<&[f64]>,
    eval: &mut Eval<'_>,
    on_generation: &mut OnGeneration<'_>,
) -> Result<Outcome> {
    check_bounds(lower, upper)?;
    let d = lower.len();
    check_de(cfg)?;
    let mut p = cfg.params(d);
    let min_n = if p.method == Method::De {
        1 + p.strategy.draws()
    } else {
        2
    };
    if let Some(init) = init {
        init::check_given(init, d, min_n, lower, upper)?;
        p.n_init = init.len() / d;
        p.n_min = p.n_min.min(p.n_init);
    }
    if p.n_init < min_n {
        return Err(invalid(format!("pop_size must be at least {min_n}")));
    }
    if cfg.immediate && p.method != Method::De {
        return Err(invalid("immediate updating is only defined for method de"));
    }
    let ok = |v: f64| v.is_finite() && v >= 0.0;
    if cfg.tol.is_some_and(|t| !ok(t)) || !ok(cfg.atol) {
        return Err(invalid("tol and atol must be >= 0"));
    }
    if cfg.max_evals < p.n_init {
        return Err(invalid(format!(
            "max_evals ({}) must be at least the population size ({})",
            cfg.max_evals, p.n_init
        )));
    }
    let pop = match init {
        Some(x) => x.to_vec(),
        None => init::population(cfg.init, cfg.seed, p.n_init, lower, upper)?,
    };
    let mut fit = vec![0.0; p.n_init];
    eval(&pop, d, &mut fit)?;
    let mut s = State {
        d,
        pop,
        fit,
        archive: Vec::new(),
        mem_cr: vec![0.5; p.h],
        mem_f: vec![0.5; p.h],
        mem_pos: 0,
        nfev: p.n_init,
    };
    let best_i = step::argsort(&s.fit)[0];
    let mut best_x = s.pop[best_i * d..(best_i + 1) * d].to_vec();
    let mut best_f = s.fit[best_i];
    let mut history = vec![best_f];
    let mut since_improved = 0;
    let mut generation = 0;
    let better = |a: f64, b: f64| !a.is_nan() && (b.is_nan() || a < b);
    // Buffers reused by every generation.
    let mut trials = Trials::default();
    let mut tf: Vec<f64> = Vec::new();
    let mut work = Scratch::default();
    let stop = loop {
        if cfg.target.is_some_and(|t| best_f <= t) {
            break Stop::Target;
        }
        if s.nfev >= cfg.max_evals {
            break Stop::MaxEvals;
        }
        if cfg.stagnation.is_some_and(|g| since_improved >= g) {
            break Stop::Stagnation;
        }
        if cfg.tol.is_some_and(|t| collapsed(&s.fit, t, cfg.atol)) {
            break Stop::Collapse;
        }
        let progress = Progress {
            generation,
            nfev: s.nfev,
            max_evals: cfg.max_evals,
            best: best_f,
        };
        if !on_generation(&progress) {
            break Stop::Cancelled;
        }
        let mut rng = SplitMix::stream(cfg.seed, purpose::DE_GENERATION, generation as u64 + 1);
        let k = s.n().min(cfg.max_evals - s.nfev);
        tf.clear();
        tf.resize(k, 0.0);
        if cfg.immediate {
            immediate_generation(
                &p,
                &mut s,
                k,
                lower,
                upper,
                eval,
                &mut rng,
                &mut trials,
                &mut tf,
            )?;
        } else {
            step::make_trials_into(&p, &s, lower, upper, &mut rng, &mut trials, &mut work);
            eval(&trials.x[..k * d], d, &mut tf)?;
        }
        let improved = tf
            .iter()
            .enumerate()
            .filter(|&(_, &v)| better(v, best_f))
            .min_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, &v)| (i, v));
        if let Some((i, v)) = improved {
            best_f = v;
            best_x.copy_from_slice(&trials.x[i * d..(i + 1) * d]);
            since_improved = 0;
        } else {
            since_improved += 1;
        }
        if !cfg.immediate {
            step::select_with(&p, &mut s, &trials, &tf, &mut rng, &mut work);
        }
        generation += 1;
        history.push(best_f);
    };
    Ok(Outcome {
        x: best_x,
        fun: best_f,
        nfev: s.nfev,
        nit: generation,
        stop,
        history,
        mem_cr: s.mem_cr.clone(),
        mem_f: s.mem_f.clone(),
        final_pop_size: s.n(),
    })
}

/// std(f) <= atol + tol·|mean f| over the finite values (SciPy's convergence test).
fn collapsed(fit: &[f64], tol: f64, atol: f64) -> bool {
    let n = fit.len() as f64;
    let mean = fit.iter().sum::<f64>() / n;
    let var = fit.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    var.is_finite() && var.sqrt() <= atol + tol * mean.abs()
}

/// Classic DE in Storn–Price order: build, evaluate and select one trial at a
/// time, so later trials already see the replaced parents. Fills the first `k`
/// rows of `trials` and `tf` (of length `k`).
#[allow(clippy::too_many_arguments)]
fn immediate_generation<S: Source + ?Sized>(
    p: &Params,
    s: &mut State,
    k: usize,
    lower: &[f64],
    upper: &[f64],
    eval: &mut Eval<'_>,
    rng: &mut S,
    trials: &mut Trials,
    tf: &mut [f64],
) -> Result<()> {
    let d = s.d;
    trials.x.resize(k * d, 0.0);
    let mut v = vec![0.0; d];
    let f = step::generation_f(p, rng);
    // The best member, kept current as trials replace their parents.
    let mut best = step::argsort(&s.fit)[0];
    for i in 0..k {
        let u = &mut trials.x[i * d..(i + 1) * d];
        let g = step::Generation {
            order: &[best],
            lshade_best: 0,
            f,
        };
        step::make_trial(p, s, &g, i, lower, upper, rng, &mut v, u);
        eval(u, d, &mut tf[i..=i])?;
        if step::key(tf[i]) <= step::key(s.fit[i]) {
            s.pop[i * d..(i + 1) * d].copy_from_slice(u);
            s.fit[i] = tf[i];
            if step::key(tf[i]) < step::key(s.fit[best]) {
                best = i;
            }
        }
    }
    s.nfev += k;
    Ok(())
}

/// Minimise a built-in function, evaluating each generation in parallel.
pub fn minimize_builtin(
    f: Builtin,
    cfg: &Config,
    lower: &[f64],
    upper: &[f64],
    on_generation: &mut OnGeneration<'_>,
) -> Result<Outcome> {
    let mut eval = |xs: &[f64], d: usize, out: &mut [f64]| {
        functions::eval_batch(f, xs, d, out);
        Ok(())
    };
    minimize(cfg, lower, upper, None, &mut eval, on_generation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(method: Method, f: Builtin, d: usize, evals: usize, seed: u64) -> Outcome {
        let (l, u) = f.bounds();
        let cfg = Config::new(method, evals, seed);
        minimize_builtin(f, &cfg, &vec![l; d], &vec![u; d], &mut |_| true).unwrap()
    }

    #[test]
    fn lshade_solves_sphere_and_respects_budget() {
        let out = run(Method::Lshade, Builtin::Sphere, 5, 20_000, 1);
        assert!(out.fun < 1e-8, "{}", out.fun);
        assert_eq!(out.nfev, 20_000);
        assert_eq!(out.final_pop_size, 4);
        assert!(out.history.windows(2).all(|w| w[1] <= w[0]));
    }

    #[test]
    fn same_seed_same_run_and_de_shade_work() {
        let a = run(Method::Shade, Builtin::Rastrigin, 4, 5_000, 3);
        let b = run(Method::Shade, Builtin::Rastrigin, 4, 5_000, 3);
        assert_eq!(a.history, b.history);
        let c = run(Method::De, Builtin::Sphere, 3, 6_000, 3);
        assert!(c.fun < 1e-6, "{}", c.fun);
    }

    #[test]
    fn immediate_de_and_collapse_stop() {
        let (l, u) = Builtin::Sphere.bounds();
        let mut cfg = Config::new(Method::De, 30_000, 2);
        cfg.immediate = true;
        let lo = vec![l; 3];
        let hi = vec![u; 3];
        let out = minimize_builtin(Builtin::Sphere, &cfg, &lo, &hi, &mut |_| true).unwrap();
        assert!(out.fun < 1e-8 && out.nfev == 30_000, "{}", out.fun);
        cfg.immediate = false;
        cfg.tol = Some(0.0);
        cfg.atol = 1e-3;
        let out = minimize_builtin(Builtin::Sphere, &cfg, &lo, &hi, &mut |_| true).unwrap();
        assert_eq!(out.stop, Stop::Collapse);
        assert!(out.nfev < 30_000);
        cfg.immediate = true;
        cfg.method = Method::Lshade;
        assert!(minimize_builtin(Builtin::Sphere, &cfg, &lo, &hi, &mut |_| true).is_err());
    }

    #[test]
    fn lpsr_sizes_follow_formula() {
        assert_eq!(step::lpsr_size(180, 4, 0, 1000), 180);
        assert_eq!(step::lpsr_size(180, 4, 500, 1000), 92);
        assert_eq!(step::lpsr_size(180, 4, 1000, 1000), 4);
    }

    #[test]
    fn bad_bounds_and_cancel() {
        let cfg = Config::new(Method::Lshade, 1000, 0);
        let mut eval = |_: &[f64], _: usize, _: &mut [f64]| Ok(());
        assert!(minimize(&cfg, &[1.0], &[0.0], None, &mut eval, &mut |_| true).is_err());
        let out = minimize_builtin(Builtin::Sphere, &cfg, &[-1.0], &[1.0], &mut |_| false).unwrap();
        assert_eq!(out.stop, Stop::Cancelled);
    }
}
