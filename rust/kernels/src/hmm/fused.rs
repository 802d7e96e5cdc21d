//! The EM E-step fused into two passes per sequence: emissions inside the
//! forward pass (block by block), and posteriors plus M-step sums inside the
//! backward pass (no T x K posterior array is written). For K <= 6 the state
//! count (and d = 1, 2) are const parameters: rows live in local arrays, so
//! the recursions' dependency chains stay in registers; larger K use `run`.
//! EM's last E-step skips the backward pass (only log L is needed).
//!
//! Covariance sums are taken about the current means c (one pass):
//! S = sum g (x - c)(x - c)^T, and the M-step subtracts N (mu - c)(mu - c)^T.
//! Since mu moves little per iteration this keeps the accuracy of a centred
//! two-pass sum (docs/compute.md §1, numerics) without a second pass.

#![allow(clippy::needless_range_loop)] // index loops read like the maths here

use super::Data;
use super::estep::{Gauss, Presample, Work};
use super::fastexp::exp_sweep;
use super::simd;

/// Rows per block of the forward sweep (a multiple of 8, the exp's width).
const BLOCK: usize = 16;

/// Sufficient statistics of one E-step.
pub struct Suff {
    pub ll: f64,
    /// False when the backward pass was skipped (only `ll` is set).
    pub has_stats: bool,
    pub xi: Vec<f64>,
    pub start: Vec<f64>,
    pub nk: Vec<f64>,
    pub sx: Vec<f64>,
    /// k x d x d sums about `centre` (lower triangle, mirrored at the end).
    pub ss: Vec<f64>,
    pub centre: Vec<f64>,
}

impl Suff {
    pub fn new(k: usize, d: usize, centre: &[f64]) -> Self {
        Self {
            ll: 0.0,
            has_stats: true,
            xi: vec![0.0; k * k],
            start: vec![0.0; k],
            nk: vec![0.0; k],
            sx: vec![0.0; k * d],
            ss: vec![0.0; k * d * d],
            centre: centre.to_vec(),
        }
    }

    /// Add one row's posterior weights g (length k) for observation x (length d).
    #[inline(always)]
    pub fn add(&mut self, k: usize, d: usize, g: &[f64], x: &[f64]) {
        if d == 1 {
            let xv = x[0];
            for s in 0..k {
                let gs = g[s];
                self.nk[s] += gs;
                self.sx[s] += gs * xv;
                let z = xv - self.centre[s];
                self.ss[s] += gs * z * z;
            }
            return;
        }
        if d == 2 {
            let (x0, x1) = (x[0], x[1]);
            for s in 0..k {
                let gs = g[s];
                self.nk[s] += gs;
                self.sx[2 * s] += gs * x0;
                self.sx[2 * s + 1] += gs * x1;
                let z0 = x0 - self.centre[2 * s];
                let z1 = x1 - self.centre[2 * s + 1];
                let ss = &mut self.ss[4 * s..4 * s + 4];
                ss[0] += gs * z0 * z0;
                ss[2] += gs * z1 * z0;
                ss[3] += gs * z1 * z1;
            }
            return;
        }
        for s in 0..k {
            let gs = g[s];
            self.nk[s] += gs;
            let c = &self.centre[s * d..(s + 1) * d];
            let ss = &mut self.ss[s * d * d..(s + 1) * d * d];
            for i in 0..d {
                self.sx[s * d + i] += gs * x[i];
                let gi = gs * (x[i] - c[i]);
                for j in 0..=i {
                    ss[i * d + j] += gi * (x[j] - c[j]);
                }
            }
        }
    }

    /// Mirror the lower triangles of `ss`.
    pub fn symmetrise(&mut self, k: usize, d: usize) {
        for s in 0..k {
            for i in 0..d {
                for j in 0..i {
                    self.ss[s * d * d + j * d + i] = self.ss[s * d * d + i * d + j];
                }
            }
        }
    }
}

/// What a fused pass computes after its forward sweep.
#[derive(Clone, Copy)]
pub enum Want<'a> {
    /// The log-likelihood only (no backward pass).
    Score,
    /// The log-likelihood and the M-step sums.
    Stats,
    /// The sums unless the predicate, given the log-likelihood, says stop
    /// (EM's last E-step needs only the log-likelihood).
    StatsUnless(&'a dyn Fn(f64) -> bool),
}

impl Want<'_> {
    fn backward(self, ll: f64) -> bool {
        match self {
            Want::Score => false,
            Want::Stats => true,
            Want::StatsUnless(stop) => !stop(ll),
        }
    }
}

/// One fused E-step over all sequences: every forward pass first, then the
/// backward passes when `want` asks for them (posteriors written to `gamma`
/// when given; `ws.alpha` rows are unnormalised). None when the scaled
/// recursion hits c_t = 0 somewhere (the caller then uses the log-space path).
/// Runs the AVX2 build of the same code when the CPU has it (bitwise equal).
#[allow(clippy::too_many_arguments)]
pub fn e_step(
    data: &Data,
    start: &[f64],
    a: &[f64],
    means: &[f64],
    gauss: &Gauss,
    ws: &mut Work,
    pre: Option<&Presample>,
    want: Want,
    gamma: Option<&mut [f64]>,
) -> Option<Suff> {
    // Checks the CPU itself and falls back to the portable build.
    simd::e_step_avx2(data, start, a, means, gauss, ws, pre, want, gamma)
}

/// `e_step` compiled for the baseline target (inlined into the AVX2 build,
/// where `AVX2` also routes the backward sweep to explicit AVX2 vectors).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn e_step_portable<const AVX2: bool>(
    data: &Data,
    start: &[f64],
    a: &[f64],
    means: &[f64],
    gauss: &Gauss,
    ws: &mut Work,
    pre: Option<&Presample>,
    want: Want,
    gamma: Option<&mut [f64]>,
) -> Option<Suff> {
    let k = start.len();
    // (K, P): P lanes per row, a vector width >= K.
    macro_rules! fixed {
        ($k:literal, $p:literal) => {
            match data.d {
                1 => {
                    run_fixed::<$k, $p, 1, AVX2>(data, start, a, means, gauss, ws, pre, want, gamma)
                }
                2 => {
                    run_fixed::<$k, $p, 2, AVX2>(data, start, a, means, gauss, ws, pre, want, gamma)
                }
                _ => {
                    run_fixed::<$k, $p, 0, AVX2>(data, start, a, means, gauss, ws, pre, want, gamma)
                }
            }
        };
    }
    match k {
        1 => fixed!(1, 1),
        2 => fixed!(2, 4),
        3 => fixed!(3, 4),
        4 => fixed!(4, 4),
        5 => fixed!(5, 8),
        6 => fixed!(6, 8),
        _ => run::<0>(k, data, start, a, means, gauss, ws, pre, want, gamma),
    }
}

/// Per-row sums for a fixed K kept in local arrays (registers) during the
/// backward sweep, one P-lane array per quantity (state s in lane s; lanes
/// K..P stay 0). D = 1 or 2 is unrolled, D = 0 means "any d" via `Suff::add`.
pub(super) struct Acc<const P: usize> {
    pub nk: [f64; P],
    pub sx: [[f64; P]; 2],
    /// (0, 0), (1, 0) and (1, 1) terms about the centre.
    pub ss: [[f64; P]; 3],
    pub c: [[f64; P]; 2],
}

impl<const P: usize> Acc<P> {
    fn new(centre: &[f64], k: usize, d: usize) -> Self {
        let mut c = [[0.0; P]; 2];
        if d <= 2 {
            for s in 0..k {
                for i in 0..d {
                    c[i][s] = centre[s * d + i];
                }
            }
        }
        Self {
            nk: [0.0; P],
            sx: [[0.0; P]; 2],
            ss: [[0.0; P]; 3],
            c,
        }
    }

    /// Same operations, in the same order, as `Suff::add` for d = 1 and 2,
    /// lane by lane.
    #[inline(always)]
    fn add<const D: usize>(&mut self, g: &[f64; P], x: &[f64]) {
        if D == 1 {
            let xv = x[0];
            for s in 0..P {
                let gs = g[s];
                self.nk[s] += gs;
                self.sx[0][s] += gs * xv;
                let z = xv - self.c[0][s];
                self.ss[0][s] += gs * z * z;
            }
        } else {
            let (x0, x1) = (x[0], x[1]);
            for s in 0..P {
                let gs = g[s];
                self.nk[s] += gs;
                self.sx[0][s] += gs * x0;
                self.sx[1][s] += gs * x1;
                let z0 = x0 - self.c[0][s];
                let z1 = x1 - self.c[1][s];
                self.ss[0][s] += gs * z0 * z0;
                self.ss[1][s] += gs * z1 * z0;
                self.ss[2][s] += gs * z1 * z1;
            }
        }
    }

    /// Add the first k lanes into `st` (the per-sequence partial sums, in
    /// sequence order).
    fn flush<const D: usize>(&self, k: usize, st: &mut Suff) {
        for s in 0..k {
            st.nk[s] += self.nk[s];
            if D == 1 {
                st.sx[s] += self.sx[0][s];
                st.ss[s] += self.ss[0][s];
            } else {
                st.sx[2 * s] += self.sx[0][s];
                st.sx[2 * s + 1] += self.sx[1][s];
                st.ss[4 * s] += self.ss[0][s];
                st.ss[4 * s + 2] += self.ss[1][s];
                st.ss[4 * s + 3] += self.ss[2][s];
            }
        }
    }
}

/// A row of k values as P lanes, the rest 0.
#[inline(always)]
pub(super) fn lanes<const K: usize, const P: usize>(row: &[f64]) -> [f64; P] {
    let mut v = [0.0; P];
    v[..K].copy_from_slice(&row[..K]);
    v
}

/// One sequence's rows for the backward sweep (K values per row of b and alpha).
pub(super) struct SeqRows<'a> {
    pub x: &'a [f64],
    pub b: &'a [f64],
    pub alpha: &'a [f64],
    /// 1 / c_t (1 on rows that were not rescaled).
    pub c: &'a [f64],
    pub d: usize,
    /// Sum of the last alpha row when it was not rescaled, else 1.
    pub tail: f64,
}

/// What one backward sweep leaves: the xi sums before the factor a[i][j],
/// the M-step sums (d = 1, 2), and the first row's posterior and beta.
pub(super) struct Back<const K: usize, const P: usize> {
    pub xs: [[f64; P]; K],
    pub acc: Acc<P>,
    pub g: [f64; P],
    pub beta: [f64; P],
}

/// The backward sweep of one sequence, posteriors and sums included, rows
/// in P-lane arrays. Per step (for t + 1 < T), with b' = b~_{t+1} / c_{t+1}:
/// w = b' beta (for xi), and beta_t[i] = sum_j beta[j] (b'[j] a[i][j]), j in
/// order: the products b'[j] a[i][j] do not depend on beta, so the chain
/// from one beta to the next is one multiply and K - 1 adds. `simd.rs` has
/// the same operations with explicit AVX2 vectors. D = 0 adds into `st`.
#[inline(always)]
pub(super) fn backward<const K: usize, const P: usize, const D: usize>(
    rows: &SeqRows,
    ac: &[[f64; P]; K],
    mut acc: Acc<P>,
    mut gamma: Option<&mut [f64]>,
    st: &mut Suff,
) -> Back<K, P> {
    let d = rows.d;
    let len = rows.c.len();
    let mut xs = [[0.0; P]; K];
    let mut beta = lanes::<K, P>(&[1.0 / rows.tail; K]);
    let mut g = [0.0; P];
    for t in (0..len).rev() {
        let at = lanes::<K, P>(&rows.alpha[t * K..(t + 1) * K]);
        if t + 1 < len {
            let inv = rows.c[t + 1];
            let mut bn = lanes::<K, P>(&rows.b[(t + 1) * K..(t + 2) * K]);
            // inv is 1 on rows that were not rescaled (x * 1 = x exactly).
            if inv != 1.0 {
                for j in 0..P {
                    bn[j] *= inv;
                }
            }
            let mut w = [0.0; P];
            for j in 0..P {
                w[j] = bn[j] * beta[j];
            }
            let mut nb = [0.0; P];
            for i in 0..P {
                nb[i] = beta[0] * (bn[0] * ac[0][i]);
            }
            for j in 1..K {
                for i in 0..P {
                    nb[i] += beta[j] * (bn[j] * ac[j][i]);
                }
            }
            for i in 0..K {
                let ai = at[i];
                for j in 0..P {
                    xs[i][j] += ai * w[j];
                }
            }
            beta = nb;
        }
        for s in 0..P {
            g[s] = at[s] * beta[s];
        }
        let xt = &rows.x[t * d..(t + 1) * d];
        if D == 0 {
            st.add(K, d, &g[..K], xt);
        } else {
            acc.add::<D>(&g, xt);
        }
        if let Some(out) = gamma.as_deref_mut() {
            out[t * K..(t + 1) * K].copy_from_slice(&g[..K]);
        }
    }
    Back { xs, acc, g, beta }
}

/// The fused pass for a fixed state count: the recursions keep their rows
/// in local P-lane arrays (P >= K, a vector width; lanes K..P hold 0), so
/// the dependency chains stay in registers and each row operation is one
/// or two vector instructions. Every lane computes the same operations, in
/// the same order, as a scalar loop over the states would; the extra lanes
/// only ever add exact zeros, so results do not depend on P.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn run_fixed<const K: usize, const P: usize, const D: usize, const AVX2: bool>(
    data: &Data,
    start: &[f64],
    a: &[f64],
    means: &[f64],
    gauss: &Gauss,
    ws: &mut Work,
    pre: Option<&Presample>,
    want: Want,
    mut gamma: Option<&mut [f64]>,
) -> Option<Suff> {
    let d = data.d;
    let mut st = Suff::new(K, d, means);
    // am[i] is row i of A; ac[j] is column j (lane i = a[i][j]).
    let mut am = [[0.0; P]; K];
    let mut ac = [[0.0; P]; K];
    for i in 0..K {
        for j in 0..K {
            am[i][j] = a[i * K + j];
            ac[j][i] = a[i * K + j];
        }
    }
    let st0: [f64; P] = lanes::<K, P>(start);
    let mut em = [[0.0; 6]; K];
    if D != 0 {
        for s in 0..K {
            em[s] = gauss.small_consts(means, s);
        }
    }
    let mut tails = Vec::with_capacity(data.seqs.len());
    for &(o, len) in &data.seqs {
        let xseq = &data.x[o * d..(o + len) * d];
        let bseq = &mut ws.b[o * K..(o + len) * K];
        let aseq = &mut ws.alpha[o * K..(o + len) * K];
        let mseq = &mut ws.m[o..o + len];
        let cseq = &mut ws.c[o..o + len];
        // Blocks of BLOCK rows: emissions (max-shifted), their exp in one
        // vectorised sweep, then the forward recursion over the block, so b~
        // is still in L1 when the recursion reads it, and the out-of-order
        // core overlaps the exp of one block with the latency-bound chain of
        // the previous one.
        let (mut last, mut msum) = (1.0f64, 0.0f64);
        let mut prev = [0.0; P];
        let mut lrow = [0.0; K];
        for q in (0..len).step_by(BLOCK) {
            let r = q..(q + BLOCK).min(len);
            let bblk = &mut bseq[r.start * K..r.end * K];
            let mblk = &mut mseq[r.clone()];
            for ((brow, xt), mt) in bblk
                .chunks_exact_mut(K)
                .zip(xseq[r.start * d..r.end * d].chunks_exact(d))
                .zip(mblk.iter_mut())
            {
                // Same operations as `Gauss::row`, with the constants hoisted.
                if D == 1 {
                    for s in 0..K {
                        let c = &em[s];
                        let z = xt[0] - c[0];
                        lrow[s] = c[2] - 0.5 * z * z * c[3];
                    }
                } else if D == 2 {
                    for s in 0..K {
                        let c = &em[s];
                        let z0 = (xt[0] - c[0]) * c[3];
                        let z1 = (xt[1] - c[1] - c[5] * z0) * c[4];
                        lrow[s] = c[2] - 0.5 * (z0 * z0 + z1 * z1);
                    }
                } else {
                    gauss.row(xt, means, &mut lrow);
                }
                let mut mx = f64::NEG_INFINITY;
                for s in 0..K {
                    mx = mx.max(lrow[s]);
                }
                *mt = mx;
                for s in 0..K {
                    brow[s] = lrow[s] - mx;
                }
            }
            if mblk.iter().any(|v| !v.is_finite()) {
                return None;
            }
            exp_sweep(bblk);
            // Forward; c holds 1 / c_t for the backward pass (1 when not rescaled).
            for (t, (((brow, cur), ct), mt)) in bblk
                .chunks_exact(K)
                .zip(aseq[r.start * K..r.end * K].chunks_exact_mut(K))
                .zip(cseq[r.clone()].iter_mut())
                .zip(mblk.iter())
                .enumerate()
            {
                let bt = lanes::<K, P>(brow);
                let mut tmp = [0.0; P];
                if q + t == 0 {
                    for j in 0..P {
                        tmp[j] = st0[j] * bt[j];
                    }
                } else {
                    let mut acc = [0.0; P];
                    for j in 0..P {
                        acc[j] = prev[0] * am[0][j];
                    }
                    for i in 1..K {
                        for j in 0..P {
                            acc[j] += prev[i] * am[i][j];
                        }
                    }
                    for j in 0..P {
                        tmp[j] = acc[j] * bt[j];
                    }
                }
                let mut s = 0.0;
                for j in 0..K {
                    s += tmp[j];
                }
                if (1e-150..=1e150).contains(&s) {
                    *ct = 1.0;
                } else {
                    if !s.is_finite() || s <= 0.0 {
                        return None;
                    }
                    let inv = 1.0 / s;
                    *ct = inv;
                    for j in 0..P {
                        tmp[j] *= inv;
                    }
                    st.ll += s.ln();
                }
                cur.copy_from_slice(&tmp[..K]);
                prev = tmp;
                last = s;
                msum += mt;
            }
        }
        let tail = if cseq[len - 1] == 1.0 { last } else { 1.0 };
        st.ll += tail.ln() + msum;
        tails.push(tail);
    }
    if !want.backward(st.ll) {
        st.has_stats = false;
        return Some(st);
    }
    for (&(o, len), tail) in data.seqs.iter().zip(tails) {
        let rows = SeqRows {
            x: &data.x[o * d..(o + len) * d],
            b: &ws.b[o * K..(o + len) * K],
            alpha: &ws.alpha[o * K..(o + len) * K],
            c: &ws.c[o..o + len],
            d,
            tail,
        };
        let out = gamma.as_deref_mut().map(|g| &mut g[o * K..(o + len) * K]);
        let acc = Acc::<P>::new(means, K, d);
        let back = if AVX2 && D != 0 {
            simd::backward::<K, P, D>(&rows, &ac, acc, out)
        } else {
            Err((acc, out))
        };
        let back = match back {
            Ok(back) => back,
            Err((acc, out)) => backward::<K, P, D>(&rows, &ac, acc, out, &mut st),
        };
        if D != 0 {
            back.acc.flush::<D>(K, &mut st);
        }
        for i in 0..K {
            for j in 0..K {
                st.xi[i * K + j] += back.xs[i][j] * am[i][j];
            }
        }
        for s in 0..K {
            st.start[s] += back.g[s];
        }
        if let Some(ps) = pre {
            let mut w = [0.0; K];
            for j in 0..K {
                w[j] = rows.b[j] * back.beta[j];
            }
            ps.add_xi(a, &w, &mut st.xi);
        }
    }
    st.symmetrise(K, d);
    Some(st)
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn run<const K: usize>(
    k_dyn: usize,
    data: &Data,
    start: &[f64],
    a: &[f64],
    means: &[f64],
    gauss: &Gauss,
    ws: &mut Work,
    pre: Option<&Presample>,
    want: Want,
    mut gamma: Option<&mut [f64]>,
) -> Option<Suff> {
    let k = if K == 0 { k_dyn } else { K };
    let d = data.d;
    let mut st = Suff::new(k, d, means);
    // Scratch rows as slices of length k: with K fixed the compiler knows
    // every length and drops the bounds checks in the inner loops.
    let mut scratch = vec![0.0; k * k + 6 * k];
    let (xs, rest) = scratch.split_at_mut(k * k);
    let (lrow, rest) = rest.split_at_mut(k);
    let (tmp, rest) = rest.split_at_mut(k);
    let (beta, rest) = rest.split_at_mut(2 * k);
    let (w, g) = rest.split_at_mut(k);
    let a = &a[..k * k];
    let start = &start[..k];
    let mut tails = Vec::with_capacity(data.seqs.len());
    for &(o, len) in &data.seqs {
        let xseq = &data.x[o * d..(o + len) * d];
        let bseq = &mut ws.b[o * k..(o + len) * k];
        let aseq = &mut ws.alpha[o * k..(o + len) * k];
        let mseq = &mut ws.m[o..o + len];
        let cseq = &mut ws.c[o..o + len];
        // Emissions, max-shifted, then exponentiated in one vectorised sweep.
        for t in 0..len {
            gauss.row(&xseq[t * d..(t + 1) * d], means, lrow);
            let mut mx = f64::NEG_INFINITY;
            for s in 0..k {
                mx = mx.max(lrow[s]);
            }
            mseq[t] = mx;
            let brow = &mut bseq[t * k..(t + 1) * k];
            for s in 0..k {
                brow[s] = lrow[s] - mx;
            }
        }
        if mseq.iter().any(|v| !v.is_finite()) {
            return None;
        }
        exp_sweep(bseq);
        // Forward; c holds 1 / c_t for the backward pass.
        let (mut last, mut msum) = (1.0f64, 0.0f64);
        for t in 0..len {
            let mx = mseq[t];
            let brow = &bseq[t * k..(t + 1) * k];
            if t == 0 {
                for j in 0..k {
                    tmp[j] = start[j] * brow[j];
                }
            } else {
                let prev = &aseq[(t - 1) * k..t * k];
                for j in 0..k {
                    tmp[j] = 0.0;
                }
                for i in 0..k {
                    let ai = prev[i];
                    let arow = &a[i * k..(i + 1) * k];
                    for j in 0..k {
                        tmp[j] += ai * arow[j];
                    }
                }
                for j in 0..k {
                    tmp[j] *= brow[j];
                }
            }
            let mut s = 0.0;
            for j in 0..k {
                s += tmp[j];
            }
            // Rescale only when the mass leaves [1e-150, 1e150]: any scaling
            // sequence is exact (Rabiner) and this keeps the division off the
            // recursion's critical path. c_t = 1 on rows that are not rescaled.
            let cur = &mut aseq[t * k..(t + 1) * k];
            if (1e-150..=1e150).contains(&s) {
                cseq[t] = 1.0;
                cur.copy_from_slice(&tmp[..k]);
            } else {
                if !s.is_finite() || s <= 0.0 {
                    return None;
                }
                let inv = 1.0 / s;
                cseq[t] = inv;
                for j in 0..k {
                    cur[j] = tmp[j] * inv;
                }
                st.ll += s.ln();
            }
            msum += mx;
            last = s;
        }
        // log L = sum ln c_t + ln(sum of the last alpha) + sum m_t.
        let tail = if cseq[len - 1] == 1.0 { last } else { 1.0 };
        st.ll += tail.ln() + msum;
        tails.push(tail);
    }
    if !want.backward(st.ll) {
        st.has_stats = false;
        return Some(st);
    }
    for (&(o, len), tail) in data.seqs.iter().zip(tails) {
        let xseq = &data.x[o * d..(o + len) * d];
        let bseq = &ws.b[o * k..(o + len) * k];
        let aseq = &ws.alpha[o * k..(o + len) * k];
        let cseq = &ws.c[o..o + len];
        // Backward with posteriors and sums; beta keeps two rows.
        xs.iter_mut().for_each(|v| *v = 0.0);
        let (mut nb, mut cb) = (0usize, k);
        // beta_T = 1 / sum(alpha_T), so that gamma_t = alpha_t * beta_t.
        for j in 0..k {
            beta[cb + j] = 1.0 / tail;
        }
        for t in (0..len).rev() {
            if t + 1 < len {
                let inv = cseq[t + 1];
                let bnext = &bseq[(t + 1) * k..(t + 2) * k];
                for j in 0..k {
                    w[j] = bnext[j] * beta[cb + j] * inv;
                }
                for i in 0..k {
                    let arow = &a[i * k..(i + 1) * k];
                    let mut s = 0.0;
                    for j in 0..k {
                        s += arow[j] * w[j];
                    }
                    beta[nb + i] = s;
                }
                let at = &aseq[t * k..(t + 1) * k];
                for i in 0..k {
                    let ai = at[i];
                    for j in 0..k {
                        xs[i * k + j] += ai * w[j];
                    }
                }
                std::mem::swap(&mut nb, &mut cb);
            }
            let at = &aseq[t * k..(t + 1) * k];
            for s in 0..k {
                g[s] = at[s] * beta[cb + s];
            }
            st.add(k, d, g, &xseq[t * d..(t + 1) * d]);
            if let Some(out) = gamma.as_deref_mut() {
                out[(o + t) * k..(o + t + 1) * k].copy_from_slice(g);
            }
        }
        for q in 0..k * k {
            st.xi[q] += xs[q] * a[q];
        }
        for s in 0..k {
            st.start[s] += g[s];
        }
        if let Some(ps) = pre {
            for j in 0..k {
                w[j] = bseq[j] * beta[cb + j];
            }
            ps.add_xi(a, w, &mut st.xi);
        }
    }
    st.symmetrise(k, d);
    Some(st)
}
