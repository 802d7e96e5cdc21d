//! Emission densities, the scaled forward-backward pass (with a log-space
//! fallback), and Viterbi (docs/compute.md §1, E-step and numerics).
#![allow(clippy::needless_range_loop)] // index loops read like the maths here

use std::cell::RefCell;

use super::linalg::{cholesky_jitter, solve_lower};
use crate::{KernelError, Result};

const LN_2PI: f64 = 1.837_877_066_409_345_3;

/// Gaussian log-densities of every state, via Cholesky factors.
pub struct Gauss {
    k: usize,
    d: usize,
    chol: Vec<f64>,
    norm: Vec<f64>,
    inv_var: Vec<f64>,
    inv_diag: Vec<f64>,
}

impl Gauss {
    pub fn new(covars: &[f64], k: usize, d: usize) -> Result<Self> {
        let mut chol = Vec::with_capacity(k * d * d);
        let mut norm = Vec::with_capacity(k);
        let mut inv_var = Vec::with_capacity(k);
        let mut inv_diag = Vec::with_capacity(k * d);
        for s in 0..k {
            let cov = &covars[s * d * d..(s + 1) * d * d];
            let l = cholesky_jitter(cov, d).ok_or_else(|| {
                KernelError::Numerical(format!("covariance of state {s} is not positive definite"))
            })?;
            let logdet_half: f64 = (0..d).map(|i| l[i * d + i].ln()).sum();
            norm.push(-0.5 * d as f64 * LN_2PI - logdet_half);
            inv_var.push(1.0 / (l[0] * l[0]));
            inv_diag.extend((0..d).map(|i| 1.0 / l[i * d + i]));
            chol.extend_from_slice(&l);
        }
        Ok(Self {
            k,
            d,
            chol,
            norm,
            inv_var,
            inv_diag,
        })
    }

    /// Fill `logb` (n x k) with log N(x_t; mu_k, Sigma_k).
    pub fn log_density(&self, x: &[f64], means: &[f64], logb: &mut [f64]) {
        let (k, d) = (self.k, self.d);
        if d == 1 {
            for (row, &xt) in logb.chunks_exact_mut(k).zip(x) {
                for s in 0..k {
                    let z = xt - means[s];
                    row[s] = self.norm[s] - 0.5 * z * z * self.inv_var[s];
                }
            }
            return;
        }
        let mut z = vec![0.0; d];
        for (row, xt) in logb.chunks_exact_mut(k).zip(x.chunks_exact(d)) {
            for s in 0..k {
                for i in 0..d {
                    z[i] = xt[i] - means[s * d + i];
                }
                solve_lower(&self.chol[s * d * d..(s + 1) * d * d], d, &mut z);
                let q: f64 = z.iter().map(|v| v * v).sum();
                row[s] = self.norm[s] - 0.5 * q;
            }
        }
    }

    /// Log-densities of one observation under every state.
    #[inline(always)]
    pub fn row(&self, x: &[f64], means: &[f64], out: &mut [f64]) {
        let (k, d) = (self.k, self.d);
        if d == 1 {
            for s in 0..k {
                let z = x[0] - means[s];
                out[s] = self.norm[s] - 0.5 * z * z * self.inv_var[s];
            }
            return;
        }
        if d == 2 {
            // z = L^-1 (x - mu) with the inverse diagonal precomputed.
            for s in 0..k {
                let l = &self.chol[s * 4..s * 4 + 4];
                let z0 = (x[0] - means[2 * s]) * self.inv_diag[2 * s];
                let z1 = (x[1] - means[2 * s + 1] - l[2] * z0) * self.inv_diag[2 * s + 1];
                out[s] = self.norm[s] - 0.5 * (z0 * z0 + z1 * z1);
            }
            return;
        }
        let mut z = [0.0; 8];
        let mut zv;
        let z: &mut [f64] = if d <= 8 {
            &mut z[..d]
        } else {
            zv = vec![0.0; d];
            &mut zv
        };
        for s in 0..k {
            for i in 0..d {
                z[i] = x[i] - means[s * d + i];
            }
            solve_lower(&self.chol[s * d * d..(s + 1) * d * d], d, z);
            let q: f64 = z.iter().map(|v| v * v).sum();
            out[s] = self.norm[s] - 0.5 * q;
        }
    }

    /// Per-state constants of the d = 1 and d = 2 paths of `row`, as
    /// [mean0, mean1, norm, inv_var or 1/L00, 1/L11, L10].
    pub fn small_consts(&self, means: &[f64], s: usize) -> [f64; 6] {
        match self.d {
            1 => [means[s], 0.0, self.norm[s], self.inv_var[s], 0.0, 0.0],
            _ => [
                means[2 * s],
                means[2 * s + 1],
                self.norm[s],
                self.inv_diag[2 * s],
                self.inv_diag[2 * s + 1],
                self.chol[s * 4 + 2],
            ],
        }
    }

    pub fn chol(&self, s: usize) -> &[f64] {
        &self.chol[s * self.d * self.d..(s + 1) * self.d * self.d]
    }
}

thread_local! {
    /// One spare set of buffers per thread: repeated fits and scores on a
    /// thread reuse it instead of faulting in fresh pages on every call
    /// (at T = 100k that costs as much as an E-step).
    static SPARE: RefCell<Option<Work>> = const { RefCell::new(None) };
}

/// Largest spare kept per thread, in bytes.
const SPARE_MAX: usize = 64 << 20;

/// Buffers for one pass over the data (n rows, k states).
pub struct Work {
    pub logb: Vec<f64>,
    pub b: Vec<f64>,
    pub m: Vec<f64>,
    pub alpha: Vec<f64>,
    pub beta: Vec<f64>,
    pub c: Vec<f64>,
}

impl Work {
    /// The fused pass needs only b, m, alpha and c; logb and beta are
    /// allocated on first use by the separate-pass path (fresh pages cost
    /// as much as a forward pass at T = 5000).
    pub fn new(n: usize, k: usize) -> Self {
        Self {
            logb: Vec::new(),
            b: vec![0.0; n * k],
            m: vec![0.0; n],
            alpha: vec![0.0; n * k],
            beta: Vec::new(),
            c: vec![0.0; n],
        }
    }

    /// Buffers for n rows and k states, reusing this thread's spare when
    /// there is one. Their contents are stale: every pass writes each row
    /// before it reads it.
    pub fn take(n: usize, k: usize) -> Self {
        match SPARE.with(|s| s.borrow_mut().take()) {
            Some(mut w) => {
                w.b.resize(n * k, 0.0);
                w.alpha.resize(n * k, 0.0);
                w.m.resize(n, 0.0);
                w.c.resize(n, 0.0);
                w.logb.clear();
                w.beta.clear();
                w
            }
            None => Self::new(n, k),
        }
    }

    /// Keep these buffers as this thread's spare (unless they are large).
    pub fn recycle(self) {
        let bytes = 8 * [
            &self.logb,
            &self.b,
            &self.m,
            &self.alpha,
            &self.beta,
            &self.c,
        ]
        .iter()
        .map(|v| v.capacity())
        .sum::<usize>();
        if bytes <= SPARE_MAX {
            SPARE.with(|s| *s.borrow_mut() = Some(self));
        }
    }

    /// Log-densities, their row maxima, and the max-shifted densities b~.
    pub fn emissions(&mut self, x: &[f64], means: &[f64], gauss: &Gauss, k: usize) {
        let size = self.b.len();
        self.logb.resize(size, 0.0);
        self.beta.resize(size, 0.0);
        gauss.log_density(x, means, &mut self.logb);
        for ((lrow, brow), mt) in self
            .logb
            .chunks_exact(k)
            .zip(self.b.chunks_exact_mut(k))
            .zip(self.m.iter_mut())
        {
            let mx = lrow.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            *mt = mx;
            for (bv, &lv) in brow.iter_mut().zip(lrow) {
                *bv = (lv - mx).exp();
            }
        }
    }
}

/// Scaled forward pass over one sequence; false when some c_t is 0 or not finite.
pub fn forward(
    start: &[f64],
    a: &[f64],
    k: usize,
    b: &[f64],
    alpha: &mut [f64],
    c: &mut [f64],
) -> bool {
    let n = c.len();
    let mut s = 0.0;
    for j in 0..k {
        alpha[j] = start[j] * b[j];
        s += alpha[j];
    }
    if !s.is_finite() || s <= 0.0 {
        return false;
    }
    c[0] = s;
    let inv = 1.0 / s;
    alpha[..k].iter_mut().for_each(|v| *v *= inv);
    for t in 1..n {
        let (prev, cur) = alpha[(t - 1) * k..(t + 1) * k].split_at_mut(k);
        cur.iter_mut().for_each(|v| *v = 0.0);
        for i in 0..k {
            let ai = prev[i];
            let arow = &a[i * k..(i + 1) * k];
            for j in 0..k {
                cur[j] += ai * arow[j];
            }
        }
        let brow = &b[t * k..(t + 1) * k];
        let mut s = 0.0;
        for j in 0..k {
            cur[j] *= brow[j];
            s += cur[j];
        }
        if !s.is_finite() || s <= 0.0 {
            return false;
        }
        c[t] = s;
        let inv = 1.0 / s;
        cur.iter_mut().for_each(|v| *v *= inv);
    }
    true
}

/// Scaled backward pass; accumulates sum_t alpha_t(i) w_{t+1}(j) into `xi`
/// (multiply by A_ij afterwards) when given.
pub fn backward(
    a: &[f64],
    k: usize,
    b: &[f64],
    c: &[f64],
    alpha: &[f64],
    beta: &mut [f64],
    mut xi: Option<&mut [f64]>,
) {
    let n = c.len();
    beta[(n - 1) * k..n * k].iter_mut().for_each(|v| *v = 1.0);
    let mut w = vec![0.0; k];
    for t in (0..n - 1).rev() {
        let inv = 1.0 / c[t + 1];
        for j in 0..k {
            w[j] = b[(t + 1) * k + j] * beta[(t + 1) * k + j] * inv;
        }
        for i in 0..k {
            let arow = &a[i * k..(i + 1) * k];
            let mut s = 0.0;
            for j in 0..k {
                s += arow[j] * w[j];
            }
            beta[t * k + i] = s;
        }
        if let Some(acc) = xi.as_deref_mut() {
            for i in 0..k {
                let ai = alpha[t * k + i];
                let row = &mut acc[i * k..(i + 1) * k];
                for j in 0..k {
                    row[j] += ai * w[j];
                }
            }
        }
    }
}

fn log_sum_exp(v: &[f64]) -> f64 {
    let mx = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if mx == f64::NEG_INFINITY {
        return mx;
    }
    mx + v.iter().map(|x| (x - mx).exp()).sum::<f64>().ln()
}

/// Log-space forward-backward for one sequence (fallback when the scaled
/// pass hits c_t = 0). Writes gamma and filtered probabilities, adds xi
/// (already multiplied by A) into `xi`, and returns (log L, log w_1) where
/// w_1 = b_1 * beta_1 up to a constant.
pub struct LogPass {
    pub ll: f64,
    pub log_w1: Vec<f64>,
}

pub fn log_forward_backward(
    start: &[f64],
    a: &[f64],
    k: usize,
    logb: &[f64],
    gamma: &mut [f64],
    filtered: &mut [f64],
    xi: Option<&mut [f64]>,
) -> LogPass {
    let n = logb.len() / k;
    let la: Vec<f64> = a.iter().map(|v| v.ln()).collect();
    let ls: Vec<f64> = start.iter().map(|v| v.ln()).collect();
    let mut lf = vec![0.0; n * k];
    let mut lb = vec![0.0; n * k];
    let mut tmp = vec![0.0; k];
    for j in 0..k {
        lf[j] = ls[j] + logb[j];
    }
    for t in 1..n {
        for j in 0..k {
            for i in 0..k {
                tmp[i] = lf[(t - 1) * k + i] + la[i * k + j];
            }
            lf[t * k + j] = log_sum_exp(&tmp) + logb[t * k + j];
        }
    }
    let ll = log_sum_exp(&lf[(n - 1) * k..]);
    for t in (0..n - 1).rev() {
        for i in 0..k {
            for j in 0..k {
                tmp[j] = la[i * k + j] + logb[(t + 1) * k + j] + lb[(t + 1) * k + j];
            }
            lb[t * k + i] = log_sum_exp(&tmp);
        }
    }
    for t in 0..n {
        let row = &lf[t * k..(t + 1) * k];
        let z = log_sum_exp(row);
        for j in 0..k {
            filtered[t * k + j] = (row[j] - z).exp();
            gamma[t * k + j] = (row[j] + lb[t * k + j] - ll).exp();
        }
    }
    if let Some(acc) = xi {
        for t in 0..n - 1 {
            for i in 0..k {
                for j in 0..k {
                    let v =
                        lf[t * k + i] + la[i * k + j] + logb[(t + 1) * k + j] + lb[(t + 1) * k + j]
                            - ll;
                    acc[i * k + j] += v.exp();
                }
            }
        }
    }
    let log_w1 = (0..k).map(|j| logb[j] + lb[j]).collect();
    LogPass { ll, log_w1 }
}

/// Max-plus Viterbi over one sequence: writes the path and returns max log p(x, s).
pub fn viterbi(start: &[f64], a: &[f64], k: usize, logb: &[f64], path: &mut [i64]) -> f64 {
    let n = logb.len() / k;
    let la: Vec<f64> = a.iter().map(|v| v.ln()).collect();
    let mut delta: Vec<f64> = (0..k).map(|j| start[j].ln() + logb[j]).collect();
    let mut next = vec![0.0; k];
    let mut back = vec![0u32; n * k];
    for t in 1..n {
        for j in 0..k {
            let mut best = f64::NEG_INFINITY;
            let mut arg = 0u32;
            for i in 0..k {
                let v = delta[i] + la[i * k + j];
                if v > best {
                    best = v;
                    arg = i as u32;
                }
            }
            next[j] = best + logb[t * k + j];
            back[t * k + j] = arg;
        }
        std::mem::swap(&mut delta, &mut next);
    }
    let mut best = f64::NEG_INFINITY;
    let mut s = 0usize;
    for (j, &v) in delta.iter().enumerate() {
        if v > best {
            best = v;
            s = j;
        }
    }
    path[n - 1] = s as i64;
    for t in (1..n).rev() {
        s = back[t * k + s] as usize;
        path[t - 1] = s as i64;
    }
    best
}

/// The chain run from the uniform law for M steps, until it stops moving:
/// start_M = u A^M is the stationary law (to ~1e-15). Used by the
/// stationary-start mode: an unobserved pre-sample of M steps makes EM exact
/// for the model whose initial law is the chain's stationary law.
pub struct Presample {
    pub k: usize,
    pub path: Vec<f64>,
}

impl Presample {
    pub fn new(a: &[f64], k: usize) -> Self {
        let mut path = vec![1.0 / k as f64; k];
        let mut cur = path.clone();
        let mut next = vec![0.0; k];
        for _ in 0..200_000 {
            next.iter_mut().for_each(|v| *v = 0.0);
            for i in 0..k {
                for j in 0..k {
                    next[j] += cur[i] * a[i * k + j];
                }
            }
            let diff: f64 = next.iter().zip(&cur).map(|(x, y)| (x - y).abs()).sum();
            path.extend_from_slice(&next);
            std::mem::swap(&mut cur, &mut next);
            if diff < 1e-15 {
                break;
            }
        }
        Self { k, path }
    }

    pub fn start(&self) -> &[f64] {
        &self.path[self.path.len() - self.k..]
    }

    /// Add the pre-sample transition counts (times A) for one sequence whose
    /// first-row backward weight is w (b_1 * beta_1, any positive scale).
    pub fn add_xi(&self, a: &[f64], w: &[f64], xi: &mut [f64]) {
        let k = self.k;
        let steps = self.path.len() / k - 1;
        let z: f64 = self.start().iter().zip(w).map(|(p, v)| p * v).sum();
        if !z.is_finite() || z <= 0.0 {
            return;
        }
        let mut acc = vec![0.0; k * k];
        let mut v = w.to_vec();
        let mut nv = vec![0.0; k];
        for t in (0..steps).rev() {
            let p = &self.path[t * k..(t + 1) * k];
            for i in 0..k {
                for j in 0..k {
                    acc[i * k + j] += p[i] * v[j];
                }
            }
            for i in 0..k {
                nv[i] = (0..k).map(|j| a[i * k + j] * v[j]).sum();
            }
            std::mem::swap(&mut v, &mut nv);
        }
        for i in 0..k * k {
            xi[i] += acc[i] * a[i] / z;
        }
    }
}
