//! EM for one restart: starting points, the E-step sums (fused pass or the
//! log-space fallback through gamma) and the M-step with degeneracy guard.

#![allow(clippy::needless_range_loop)] // index loops read like the maths here

use rand_chacha::ChaCha8Rng;

use super::estep::{self, Gauss, Presample, Work};
use super::fused::{self, Suff};
use super::{CovType, Ctx, Data, FitOptions, InitMethod, Params, StartMode, init, linalg};
use crate::{KernelError, Result};

fn project(cov: CovType, full: &[f64], d: usize) -> Vec<f64> {
    let mut out = vec![0.0; d * d];
    match cov {
        CovType::Full | CovType::Tied => out.copy_from_slice(full),
        CovType::Diag => (0..d).for_each(|i| out[i * d + i] = full[i * d + i]),
        CovType::Spherical => {
            let m = (0..d).map(|i| full[i * d + i]).sum::<f64>() / d as f64;
            (0..d).for_each(|i| out[i * d + i] = m);
        }
    }
    out
}

pub(super) fn initial_params(
    data: &Data,
    o: &FitOptions,
    ctx: &Ctx,
    restart: usize,
    rng: &mut ChaCha8Rng,
) -> Params {
    let (n, d, k) = (data.n, data.d, o.k);
    match o.init {
        InitMethod::KMeansPP => {
            let sd: Vec<f64> = ctx.var.iter().map(|v| v.sqrt()).collect();
            let z: Vec<f64> = data
                .x
                .chunks_exact(d)
                .flat_map(|r| {
                    (0..d)
                        .map(|i| (r[i] - ctx.mean[i]) / sd[i])
                        .collect::<Vec<_>>()
                })
                .collect();
            let c = init::kmeans(&z, n, d, k, 20, rng);
            let means = (0..k * d)
                .map(|q| c[q] * sd[q % d] + ctx.mean[q % d])
                .collect();
            let mut g = project(o.cov, &ctx.cov, d);
            for i in 0..d {
                g[i * d + i] += o.reg_covar * ctx.scale[i];
            }
            let off = if k > 1 { 0.05 / (k - 1) as f64 } else { 0.0 };
            let mut transmat: Vec<f64> = (0..k * k)
                .map(|q| {
                    if q / k == q % k {
                        if k > 1 { 0.95 } else { 1.0 }
                    } else {
                        off
                    }
                })
                .collect();
            let mut startprob = vec![1.0 / k as f64; k];
            // Deviation (docs/compute.md §1(a)): odd restarts draw the
            // chain from Dirichlet(1/K) like hmmlearn. With K >= 4 on returns the
            // sticky start alone keeps landing in one local optimum.
            if restart % 2 == 1 {
                let alpha = 1.0 / k as f64;
                startprob = init::dirichlet(rng, k, alpha);
                transmat = (0..k)
                    .flat_map(|_| init::dirichlet(rng, k, alpha))
                    .collect();
            }
            if o.start == StartMode::Stationary {
                startprob = linalg::stationary(&transmat, k);
            }
            Params {
                k,
                d,
                startprob,
                transmat,
                means,
                covars: g.repeat(k),
            }
        }
        InitMethod::Hmmlearn => {
            let alpha = 1.0 / k as f64;
            let mut startprob = init::dirichlet(rng, k, alpha);
            let transmat: Vec<f64> = (0..k)
                .flat_map(|_| init::dirichlet(rng, k, alpha))
                .collect();
            if o.start == StartMode::Stationary {
                startprob = linalg::stationary(&transmat, k);
            }
            let means = init::kmeans(data.x, n, d, k, 100, rng);
            let scale = n as f64 / (n as f64 - 1.0).max(1.0);
            let mut g: Vec<f64> = ctx.cov.iter().map(|v| v * scale).collect();
            for i in 0..d {
                g[i * d + i] += 1e-3;
            }
            let g = project(o.cov, &g, d);
            Params {
                k,
                d,
                startprob,
                transmat,
                means,
                covars: g.repeat(k),
            }
        }
    }
}

pub(super) struct Run {
    pub(super) params: Params,
    pub(super) ll: f64,
    pub(super) n_iter: usize,
    pub(super) converged: bool,
    pub(super) history: Vec<f64>,
    pub(super) monotone: bool,
    pub(super) reinitialised: bool,
}

/// Sufficient statistics of one E-step.
pub struct Estep {
    pub ll: f64,
    pub xi: Vec<f64>,
    pub start: Vec<f64>,
}

/// E-step over all sequences: gamma (n x k) and, in `ws.alpha`, the filtered
/// probabilities; xi is the K x K sum of pair posteriors.
pub fn e_step(
    data: &Data,
    p: &Params,
    ws: &mut Work,
    gamma: &mut [f64],
    presample: Option<&Presample>,
) -> Result<Estep> {
    let k = p.k;
    let gauss = Gauss::new(&p.covars, k, data.d)?;
    ws.emissions(data.x, &p.means, &gauss, k);
    let start = presample.map_or(&p.startprob[..], |s| s.start());
    let a = &p.transmat;
    let mut xi = vec![0.0; k * k];
    let mut start_sum = vec![0.0; k];
    let mut xs = vec![0.0; k * k];
    let mut ll = 0.0;
    for &(o, len) in &data.seqs {
        let r = o * k..(o + len) * k;
        let ok = estep::forward(
            start,
            a,
            k,
            &ws.b[r.clone()],
            &mut ws.alpha[r.clone()],
            &mut ws.c[o..o + len],
        );
        let w1: Vec<f64>;
        if ok {
            xs.iter_mut().for_each(|v| *v = 0.0);
            estep::backward(
                a,
                k,
                &ws.b[r.clone()],
                &ws.c[o..o + len],
                &ws.alpha[r.clone()],
                &mut ws.beta[r.clone()],
                Some(&mut xs),
            );
            for q in 0..k * k {
                xi[q] += xs[q] * a[q];
            }
            for q in r.clone() {
                gamma[q] = ws.alpha[q] * ws.beta[q];
            }
            ll += ws.c[o..o + len].iter().map(|c| c.ln()).sum::<f64>()
                + ws.m[o..o + len].iter().sum::<f64>();
            w1 = (0..k)
                .map(|j| ws.b[o * k + j] * ws.beta[o * k + j])
                .collect();
        } else {
            let lp = estep::log_forward_backward(
                start,
                a,
                k,
                &ws.logb[r.clone()],
                &mut gamma[r.clone()],
                &mut ws.alpha[r.clone()],
                Some(&mut xi),
            );
            ll += lp.ll;
            let mx = lp.log_w1.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            w1 = lp.log_w1.iter().map(|v| (v - mx).exp()).collect();
        }
        for j in 0..k {
            start_sum[j] += gamma[o * k + j];
        }
        if let Some(ps) = presample {
            ps.add_xi(a, &w1, &mut xi);
        }
    }
    if !ll.is_finite() {
        return Err(KernelError::Numerical(
            "log-likelihood is not finite: the data are impossible under the model".into(),
        ));
    }
    Ok(Estep {
        ll,
        xi,
        start: start_sum,
    })
}

/// E-step sums for EM: the fused two-pass recursion, or the log-space
/// path through gamma when the scaled one hits c_t = 0. The fused pass skips
/// its backward sweep when `stop(log L)` is true (`has_stats` is then false).
fn suff_stats(
    data: &Data,
    p: &Params,
    ws: &mut Work,
    gamma: &mut Vec<f64>,
    pre: Option<&Presample>,
    stop: &dyn Fn(f64) -> bool,
) -> Result<Suff> {
    let (k, d) = (p.k, data.d);
    let gauss = Gauss::new(&p.covars, k, d)?;
    let start = pre.map_or(&p.startprob[..], |s| s.start());
    let st = match fused::e_step(
        data,
        start,
        &p.transmat,
        &p.means,
        &gauss,
        ws,
        pre,
        fused::Want::StatsUnless(stop),
        None,
    ) {
        Some(st) => st,
        None => {
            gamma.resize(data.n * k, 0.0);
            let e = e_step(data, p, ws, gamma, pre)?;
            let mut st = Suff::new(k, d, &p.means);
            for (g, x) in gamma.chunks_exact(k).zip(data.x.chunks_exact(d)) {
                st.add(k, d, g, x);
            }
            st.symmetrise(k, d);
            st.ll = e.ll;
            st.xi = e.xi;
            st.start = e.start;
            st
        }
    };
    if !st.ll.is_finite() {
        return Err(KernelError::Numerical(
            "log-likelihood is not finite: the data are impossible under the model".into(),
        ));
    }
    Ok(st)
}

pub(super) fn em(
    data: &Data,
    o: &FitOptions,
    ctx: &Ctx,
    mut p: Params,
    ws: &mut Work,
    gamma: &mut Vec<f64>,
) -> Result<Run> {
    let mut history = Vec::new();
    let mut prev: Option<f64> = None;
    let (mut n_iter, mut converged, mut monotone, mut reinit) = (0, false, true, false);
    let done = |prev: Option<f64>, ll: f64| prev.is_some_and(|p| ll - p < o.tol * p.abs().max(1.0));
    loop {
        let pre = (o.start == StartMode::Stationary).then(|| Presample::new(&p.transmat, p.k));
        let last = n_iter >= o.max_iter;
        let stop = |ll: f64| last || done(prev, ll);
        let st = suff_stats(data, &p, ws, gamma, pre.as_ref(), &stop)?;
        history.push(st.ll);
        if let Some(prev) = prev {
            if st.ll - prev < -1e-8 * prev.abs() {
                monotone = false;
            }
        }
        if done(prev, st.ll) {
            converged = true;
            break;
        }
        if last {
            break;
        }
        debug_assert!(st.has_stats);
        let reseeded = m_step(data, o, ctx, &st, &ws.m, &mut p);
        reinit |= reseeded;
        n_iter += 1;
        prev = if reseeded { None } else { Some(st.ll) };
    }
    let ll = *history.last().unwrap_or(&f64::NAN);
    Ok(Run {
        params: p,
        ll,
        n_iter,
        converged,
        history,
        monotone,
        reinitialised: reinit,
    })
}

/// M-step (MLE, centred covariances). Returns true when a state was re-seeded.
fn m_step(data: &Data, o: &FitOptions, ctx: &Ctx, st: &Suff, m: &[f64], p: &mut Params) -> bool {
    let (k, d, n) = (p.k, p.d, data.n);
    for i in 0..k {
        let row = &st.xi[i * k..(i + 1) * k];
        let s: f64 = row.iter().sum();
        if s > 0.0 {
            for j in 0..k {
                p.transmat[i * k + j] = row[j] / s;
            }
        }
    }
    if o.start == StartMode::Free {
        let s: f64 = st.start.iter().sum();
        if s > 0.0 {
            p.startprob
                .iter_mut()
                .zip(&st.start)
                .for_each(|(v, g)| *v = g / s);
        }
    } else {
        p.startprob = linalg::stationary(&p.transmat, k);
    }
    let nk = &st.nk;
    let sx = &st.sx;
    // Degeneracy guard: a state with fewer than d+1 effective points is
    // re-seeded at the worst-explained rows, with the global covariance.
    let weak: Vec<usize> = (0..k).filter(|&s| nk[s] < (d + 1) as f64).collect();
    if !weak.is_empty() {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| m[a].total_cmp(&m[b]));
        let mut g = project(o.cov, &ctx.cov, d);
        for i in 0..d {
            g[i * d + i] += o.reg_covar * ctx.scale[i];
        }
        for (q, &s) in weak.iter().enumerate() {
            let t = order[q.min(n - 1)];
            p.means[s * d..(s + 1) * d].copy_from_slice(&data.x[t * d..(t + 1) * d]);
            p.covars[s * d * d..(s + 1) * d * d].copy_from_slice(&g);
        }
    }
    for s in 0..k {
        if !weak.contains(&s) {
            for i in 0..d {
                p.means[s * d + i] = sx[s * d + i] / nk[s];
            }
        }
    }
    // Sums were taken about the old means c: S = ss - N (mu - c)(mu - c)^T.
    let mut scatter = st.ss.clone();
    for s in 0..k {
        if weak.contains(&s) {
            continue;
        }
        for i in 0..d {
            let di = p.means[s * d + i] - st.centre[s * d + i];
            for j in 0..d {
                let dj = p.means[s * d + j] - st.centre[s * d + j];
                scatter[s * d * d + i * d + j] -= nk[s] * di * dj;
            }
        }
    }
    let reg = |c: &mut [f64]| {
        for i in 0..d {
            c[i * d + i] += o.reg_covar * ctx.scale[i];
            c[i * d + i] = c[i * d + i].max(o.min_covar * ctx.scale[i]);
        }
    };
    if o.cov == CovType::Tied {
        let tot: f64 = nk.iter().sum();
        let mut pooled = vec![0.0; d * d];
        for s in 0..k {
            for q in 0..d * d {
                pooled[q] += scatter[s * d * d + q];
            }
        }
        pooled.iter_mut().for_each(|v| *v /= tot);
        reg(&mut pooled);
        for s in 0..k {
            p.covars[s * d * d..(s + 1) * d * d].copy_from_slice(&pooled);
        }
    } else {
        for s in 0..k {
            if weak.contains(&s) {
                continue;
            }
            let full: Vec<f64> = scatter[s * d * d..(s + 1) * d * d]
                .iter()
                .map(|v| v / nk[s])
                .collect();
            let mut c = project(o.cov, &full, d);
            reg(&mut c);
            p.covars[s * d * d..(s + 1) * d * d].copy_from_slice(&c);
        }
    }
    !weak.is_empty()
}
