//! Gaussian hidden Markov model: EM, Viterbi, restarts (docs/compute.md §1).
//!
//! Data are row-major n x d slices split into sequences by `lengths`.
//! Covariances are always passed and returned as k full d x d matrices;
//! the covariance type only shapes the M-step and the parameter count.
//! EM runs in the data's own units; the column variances only scale
//! `reg_covar` and the variance floor, and k-means++ runs on z-scores.
#![allow(clippy::needless_range_loop)] // index loops read like the maths here

mod em;
pub mod estep;
pub mod fastexp;
pub mod fused;
pub mod init;
pub mod linalg;
mod simd;

#[cfg(test)]
mod tests;

use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::rng::{purpose, stream};
use crate::{KernelError, Result, error::invalid};
pub use em::{Estep, e_step};
use em::{Run, em, initial_params};
use estep::{Gauss, Work};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CovType {
    Full,
    Diag,
    Spherical,
    Tied,
}

impl CovType {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "full" => Ok(Self::Full),
            "diag" => Ok(Self::Diag),
            "spherical" => Ok(Self::Spherical),
            "tied" => Ok(Self::Tied),
            _ => Err(invalid(format!(
                "covariance_type must be full, diag, spherical or tied, got {s:?}"
            ))),
        }
    }

    /// Free covariance parameters for k states in d dimensions.
    pub fn n_params(self, k: usize, d: usize) -> usize {
        match self {
            Self::Full => k * d * (d + 1) / 2,
            Self::Diag => k * d,
            Self::Spherical => k,
            Self::Tied => d * (d + 1) / 2,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitMethod {
    /// k-means++ means on z-scores, global covariance, sticky transitions.
    KMeansPP,
    /// hmmlearn 0.3 style: Dirichlet(1/K) start and rows, k-means means, cov + 1e-3 I.
    Hmmlearn,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartMode {
    /// The initial law is a free parameter (hmmlearn).
    Free,
    /// The initial law is the chain's stationary law (statsmodels MarkovRegression).
    Stationary,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderBy {
    /// Ascending variance of column 0, ties by mean.
    Vol,
    /// Ascending mean of column 0, ties by variance.
    Mean,
    /// Keep EM's labels (for parity tests).
    None,
}

/// Observations: n rows of d features, split into sequences.
pub struct Data<'a> {
    pub x: &'a [f64],
    pub n: usize,
    pub d: usize,
    pub seqs: Vec<(usize, usize)>,
}

impl<'a> Data<'a> {
    pub fn new(x: &'a [f64], d: usize, lengths: Option<&[i64]>) -> Result<Self> {
        if d == 0 || x.len() % d != 0 {
            return Err(invalid("x must have at least one column"));
        }
        let n = x.len() / d;
        if n == 0 {
            return Err(invalid("x has no rows"));
        }
        if x.iter().any(|v| !v.is_finite()) {
            return Err(invalid("x contains NaN or infinite values"));
        }
        let seqs = match lengths {
            None => vec![(0, n)],
            Some(ls) => {
                let mut out = Vec::with_capacity(ls.len());
                let mut o = 0usize;
                for &l in ls {
                    if l <= 0 {
                        return Err(invalid("every length must be positive"));
                    }
                    out.push((o, l as usize));
                    o += l as usize;
                }
                if o != n {
                    return Err(invalid(format!("lengths sum to {o} but x has {n} rows")));
                }
                out
            }
        };
        Ok(Self { x, n, d, seqs })
    }

    /// Sum of (x - mean)(x - mean)^T over rows for a fixed d, the sums in
    /// local registers (same additions, in the same order, as the loop for
    /// any d).
    fn scatter<const D: usize>(&self, mean: &[f64]) -> Vec<f64> {
        let mut acc = [[0.0; D]; D];
        for row in self.x.chunks_exact(D) {
            for i in 0..D {
                for j in 0..D {
                    acc[i][j] += (row[i] - mean[i]) * (row[j] - mean[j]);
                }
            }
        }
        acc.iter().flatten().copied().collect()
    }

    fn col_stats(&self) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let (n, d) = (self.n, self.d);
        let mut mean = vec![0.0; d];
        for row in self.x.chunks_exact(d) {
            for i in 0..d {
                mean[i] += row[i];
            }
        }
        mean.iter_mut().for_each(|v| *v /= n as f64);
        let mut cov = match d {
            1 => self.scatter::<1>(&mean),
            2 => self.scatter::<2>(&mean),
            _ => {
                let mut cov = vec![0.0; d * d];
                for row in self.x.chunks_exact(d) {
                    for i in 0..d {
                        for j in 0..d {
                            cov[i * d + j] += (row[i] - mean[i]) * (row[j] - mean[j]);
                        }
                    }
                }
                cov
            }
        };
        cov.iter_mut().for_each(|v| *v /= n as f64);
        let var = (0..d).map(|i| cov[i * d + i]).collect();
        (mean, var, cov)
    }
}

/// Model parameters; `covars` holds k full d x d matrices.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    pub k: usize,
    pub d: usize,
    pub startprob: Vec<f64>,
    pub transmat: Vec<f64>,
    pub means: Vec<f64>,
    pub covars: Vec<f64>,
}

impl Params {
    pub fn validate(&self) -> Result<()> {
        let (k, d) = (self.k, self.d);
        if k == 0 {
            return Err(invalid("n_states must be at least 1"));
        }
        if self.startprob.len() != k
            || self.transmat.len() != k * k
            || self.means.len() != k * d
            || self.covars.len() != k * d * d
        {
            return Err(invalid(
                "parameter shapes do not match n_states and n_features",
            ));
        }
        let all = self.startprob.iter().chain(&self.transmat);
        if all.clone().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(invalid("probabilities must be finite and non-negative"));
        }
        let rows = std::iter::once(&self.startprob[..]).chain(self.transmat.chunks_exact(k));
        for r in rows {
            if (r.iter().sum::<f64>() - 1.0).abs() > 1e-8 {
                return Err(invalid("startprob and rows of transmat must sum to 1"));
            }
        }
        if self
            .means
            .iter()
            .chain(&self.covars)
            .any(|v| !v.is_finite())
        {
            return Err(invalid("means and covars must be finite"));
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
pub struct FitOptions {
    pub k: usize,
    pub cov: CovType,
    pub n_init: usize,
    pub max_iter: usize,
    /// Relative tolerance on the log-likelihood gain.
    pub tol: f64,
    pub seed: u64,
    pub init: InitMethod,
    pub start: StartMode,
    /// Added to the diagonal, times each column's variance.
    pub reg_covar: f64,
    /// Variance floor, times each column's variance.
    pub min_covar: f64,
    pub order: OrderBy,
}

impl FitOptions {
    pub fn new(k: usize, cov: CovType) -> Self {
        Self {
            k,
            cov,
            n_init: 10,
            max_iter: 1000,
            tol: 1e-8,
            seed: 0,
            init: InitMethod::KMeansPP,
            start: StartMode::Free,
            reg_covar: 1e-6,
            min_covar: 1e-6,
            order: OrderBy::Vol,
        }
    }
}

#[derive(Clone, Debug)]
pub struct FitResult {
    pub params: Params,
    /// Log-likelihood of the returned parameters.
    pub log_likelihood: f64,
    /// Number of M-steps of the best restart.
    pub n_iter: usize,
    pub converged: bool,
    /// Log-likelihood before each M-step, then of the returned parameters.
    pub history: Vec<f64>,
    /// False when the log-likelihood fell by more than 1e-8 |ll| at some step.
    pub monotone: bool,
    /// True when a collapsing state was re-seeded during the best restart.
    pub reinitialised: bool,
    /// Final log-likelihood of every restart (NaN when it failed).
    pub restart_log_likelihoods: Vec<f64>,
    pub best_restart: usize,
}

/// Per-dataset constants shared by all restarts.
struct Ctx {
    mean: Vec<f64>,
    var: Vec<f64>,
    /// Units of reg_covar and min_covar per column (their mean when spherical).
    scale: Vec<f64>,
    cov: Vec<f64>,
}

fn check_options(data: &Data, o: &FitOptions) -> Result<()> {
    if o.k == 0 {
        return Err(invalid("n_states must be at least 1"));
    }
    if o.n_init == 0 {
        return Err(invalid("n_init must be at least 1"));
    }
    if o.tol.is_nan() || o.reg_covar < 0.0 || o.min_covar < 0.0 {
        return Err(invalid(
            "tol, reg_covar and min_covar must be numbers >= 0 (tol may be -inf)",
        ));
    }
    let p = n_free_params(o.k, data.d, o.cov, o.start);
    if data.n <= p.max(o.k) {
        return Err(invalid(format!(
            "{} rows are too few for {} states ({} free parameters)",
            data.n, o.k, p
        )));
    }
    Ok(())
}

/// Free parameters: (K-1) + K(K-1) + K d + covariance terms; the start law
/// is not free in stationary mode.
pub fn n_free_params(k: usize, d: usize, cov: CovType, start: StartMode) -> usize {
    let s = if start == StartMode::Free { k - 1 } else { 0 };
    s + k * (k - 1) + k * d + cov.n_params(k, d)
}

/// Fit by EM with `n_init` restarts (parallel), or from `init` alone when given.
pub fn fit(data: &Data, o: &FitOptions, init: Option<&Params>) -> Result<FitResult> {
    check_options(data, o)?;
    let (mean, var, cov) = data.col_stats();
    if var.iter().any(|v| !v.is_finite() || *v <= 0.0) {
        return Err(invalid(
            "x is constant in at least one column; nothing to fit",
        ));
    }
    let scale = if o.cov == CovType::Spherical {
        vec![var.iter().sum::<f64>() / var.len() as f64; var.len()]
    } else {
        var.clone()
    };
    let ctx = Ctx {
        mean,
        var,
        scale,
        cov,
    };
    if let Some(p) = init {
        p.validate()?;
        if p.k != o.k || p.d != data.d {
            return Err(invalid(
                "initial parameters do not match n_states and n_features",
            ));
        }
        let mut ws = Work::take(data.n, o.k);
        let mut gamma = Vec::new();
        let run = em(data, o, &ctx, p.clone(), &mut ws, &mut gamma);
        ws.recycle();
        return Ok(finish(run?, vec![], 0, o));
    }
    let runs: Vec<Result<Run>> = (0..o.n_init)
        .into_par_iter()
        .map_init(
            || (Work::new(data.n, o.k), Vec::new()),
            |(ws, gamma), r| {
                let mut rng = stream(o.seed, purpose::HMM_RESTART, r as u64);
                let p0 = initial_params(data, o, &ctx, r, &mut rng);
                em(data, o, &ctx, p0, ws, gamma)
            },
        )
        .collect();
    let lls: Vec<f64> = runs
        .iter()
        .map(|r| r.as_ref().map_or(f64::NAN, |r| r.ll))
        .collect();
    let mut best: Option<usize> = None;
    for (i, ll) in lls.iter().enumerate() {
        if ll.is_finite() && best.is_none_or(|b| *ll > lls[b]) {
            best = Some(i);
        }
    }
    let Some(b) = best else {
        let first = runs.into_iter().find_map(|r| r.err());
        return Err(first.unwrap_or_else(|| KernelError::Numerical("every restart failed".into())));
    };
    let run = runs
        .into_iter()
        .nth(b)
        .and_then(|r| r.ok())
        .ok_or_else(|| KernelError::Numerical("best restart vanished".into()))?;
    Ok(finish(run, lls, b, o))
}

fn finish(mut run: Run, lls: Vec<f64>, best: usize, o: &FitOptions) -> FitResult {
    reorder(&mut run.params, o.order);
    let lls = if lls.is_empty() { vec![run.ll] } else { lls };
    FitResult {
        log_likelihood: run.ll,
        params: run.params,
        n_iter: run.n_iter,
        converged: run.converged,
        history: run.history,
        monotone: run.monotone,
        reinitialised: run.reinitialised,
        restart_log_likelihoods: lls,
        best_restart: best,
    }
}

/// Canonical labels: sort states by (variance, mean) or (mean, variance) of column 0.
pub fn reorder(p: &mut Params, order: OrderBy) {
    let (k, d) = (p.k, p.d);
    let var = |s: usize| p.covars[s * d * d];
    let mu = |s: usize| p.means[s * d];
    let mut perm: Vec<usize> = (0..k).collect();
    match order {
        OrderBy::None => return,
        OrderBy::Vol => {
            perm.sort_by(|&a, &b| var(a).total_cmp(&var(b)).then(mu(a).total_cmp(&mu(b))))
        }
        OrderBy::Mean => {
            perm.sort_by(|&a, &b| mu(a).total_cmp(&mu(b)).then(var(a).total_cmp(&var(b))))
        }
    }
    let old = p.clone();
    for (i, &pi) in perm.iter().enumerate() {
        p.startprob[i] = old.startprob[pi];
        for (j, &pj) in perm.iter().enumerate() {
            p.transmat[i * k + j] = old.transmat[pi * k + pj];
        }
        p.means[i * d..(i + 1) * d].copy_from_slice(&old.means[pi * d..(pi + 1) * d]);
        p.covars[i * d * d..(i + 1) * d * d]
            .copy_from_slice(&old.covars[pi * d * d..(pi + 1) * d * d]);
    }
}

/// Forward log-likelihood at fixed parameters.
pub fn score(data: &Data, p: &Params) -> Result<f64> {
    check_params(data, p)?;
    let gauss = Gauss::new(&p.covars, p.k, data.d)?;
    let mut ws = Work::take(data.n, p.k);
    let fast = fused::e_step(
        data,
        &p.startprob,
        &p.transmat,
        &p.means,
        &gauss,
        &mut ws,
        None,
        fused::Want::Score,
        None,
    );
    ws.recycle();
    match fast {
        Some(st) if st.ll.is_finite() => Ok(st.ll),
        _ => posteriors(data, p).map(|r| r.2),
    }
}

/// (smoothed gamma, filtered alpha, log-likelihood) at fixed parameters.
pub fn posteriors(data: &Data, p: &Params) -> Result<(Vec<f64>, Vec<f64>, f64)> {
    check_params(data, p)?;
    let k = p.k;
    let gauss = Gauss::new(&p.covars, k, data.d)?;
    let mut ws = Work::take(data.n, k);
    let mut gamma = vec![0.0; data.n * k];
    let fast = fused::e_step(
        data,
        &p.startprob,
        &p.transmat,
        &p.means,
        &gauss,
        &mut ws,
        None,
        fused::Want::Stats,
        Some(&mut gamma),
    );
    if let Some(st) = fast.filter(|st| st.ll.is_finite()) {
        // The fused pass leaves alpha unnormalised: filtered = alpha / sum.
        for row in ws.alpha.chunks_exact_mut(k) {
            let inv = 1.0 / row.iter().sum::<f64>();
            row.iter_mut().for_each(|v| *v *= inv);
        }
        let alpha = std::mem::take(&mut ws.alpha);
        ws.recycle();
        return Ok((gamma, alpha, st.ll));
    }
    let st = e_step(data, p, &mut ws, &mut gamma, None);
    let alpha = std::mem::take(&mut ws.alpha);
    ws.recycle();
    Ok((gamma, alpha, st?.ll))
}

/// Most likely state path and its joint log-probability (summed over sequences).
pub fn decode(data: &Data, p: &Params) -> Result<(Vec<i64>, f64)> {
    check_params(data, p)?;
    let k = p.k;
    let gauss = Gauss::new(&p.covars, k, data.d)?;
    let mut logb = vec![0.0; data.n * k];
    gauss.log_density(data.x, &p.means, &mut logb);
    let mut path = vec![0i64; data.n];
    let mut total = 0.0;
    for &(o, len) in &data.seqs {
        total += estep::viterbi(
            &p.startprob,
            &p.transmat,
            k,
            &logb[o * k..(o + len) * k],
            &mut path[o..o + len],
        );
    }
    Ok((path, total))
}

fn check_params(data: &Data, p: &Params) -> Result<()> {
    p.validate()?;
    if p.d != data.d {
        return Err(invalid(format!(
            "the model has {} features but x has {}",
            p.d, data.d
        )));
    }
    Ok(())
}

/// Draw n rows (and their states) from the model.
pub fn sample(p: &Params, n: usize, seed: u64) -> Result<(Vec<f64>, Vec<i64>)> {
    p.validate()?;
    let (k, d) = (p.k, p.d);
    let gauss = Gauss::new(&p.covars, k, d)?;
    let mut rng = stream(seed, purpose::SIM_PATH, 0);
    let draw = |probs: &[f64], rng: &mut ChaCha8Rng| {
        let u: f64 = rand::RngExt::random(rng);
        let mut acc = 0.0;
        for (j, v) in probs.iter().enumerate() {
            acc += v;
            if u < acc {
                return j;
            }
        }
        probs.iter().rposition(|v| *v > 0.0).unwrap_or(0)
    };
    let mut x = vec![0.0; n * d];
    let mut states = vec![0i64; n];
    let mut s = 0usize;
    let mut z = vec![0.0; d];
    for t in 0..n {
        s = if t == 0 {
            draw(&p.startprob, &mut rng)
        } else {
            draw(&p.transmat[s * k..(s + 1) * k], &mut rng)
        };
        states[t] = s as i64;
        z.iter_mut().for_each(|v| *v = init::normal(&mut rng));
        let l = gauss.chol(s);
        for i in 0..d {
            let v: f64 = (0..=i).map(|q| l[i * d + q] * z[q]).sum();
            x[t * d + i] = p.means[s * d + i] + v;
        }
    }
    Ok((x, states))
}
