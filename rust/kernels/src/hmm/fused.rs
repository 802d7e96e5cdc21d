//! The EM E-step fused into two passes per sequence: emissions inside the
//! forward pass, and posteriors plus M-step sums inside the backward pass
//! (no T x K posterior array is written). The state count is a const
//! parameter for K <= 6 so the inner loops unroll; K = 0 means "any K".
//!
//! Covariance sums are taken about the current means c (one pass):
//! S = sum g (x - c)(x - c)^T, and the M-step subtracts N (mu - c)(mu - c)^T.
//! Since mu moves little per iteration this keeps the accuracy of a centred
//! two-pass sum (COMPUTE-SPEC 1 numerics) without a second pass.

#![allow(clippy::needless_range_loop)] // index loops read like the maths here

use super::Data;
use super::estep::{Gauss, Presample, Work};

/// Sufficient statistics of one E-step.
pub struct Suff {
    pub ll: f64,
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

/// e^x for x <= 0 (x = NaN is not expected), to about 2 ulp; below e^-708
/// it returns 0 (where std would give a subnormal), so a row whose every
/// reachable state underflows still sends the pass to the log-space path.
/// Written branch-free so the sweep over a sequence vectorises.
#[inline(always)]
pub fn exp_nonpos(x: f64) -> f64 {
    const INV_LN2: f64 = std::f64::consts::LOG2_E;
    const LN2_HI: f64 = 0.693_147_180_369_123_8;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    const SHIFT: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52
    let xc = x.max(-708.0);
    let t = xc * INV_LN2 + SHIFT;
    let n = t - SHIFT;
    let r = xc - n * LN2_HI - n * LN2_LO;
    // Taylor series of e^r on |r| <= ln2/2 to degree 12 (error < 2e-16).
    let mut p = 1.0 / 479_001_600.0;
    p = p * r + 1.0 / 39_916_800.0;
    p = p * r + 1.0 / 3_628_800.0;
    p = p * r + 1.0 / 362_880.0;
    p = p * r + 1.0 / 40_320.0;
    p = p * r + 1.0 / 5_040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    let ni = (t.to_bits() as i64).wrapping_sub(SHIFT.to_bits() as i64);
    let v = p * f64::from_bits(((ni + 1023) << 52) as u64);
    if x < -708.0 { 0.0 } else { v }
}

/// One fused E-step over all sequences (forward only when `stats` is false;
/// posteriors written to `gamma` when given; `ws.alpha` rows are unnormalised);
/// None when the scaled recursion hits c_t = 0 somewhere (the caller then
/// uses the log-space path).
#[allow(clippy::too_many_arguments)]
pub fn e_step(
    data: &Data,
    start: &[f64],
    a: &[f64],
    means: &[f64],
    gauss: &Gauss,
    ws: &mut Work,
    pre: Option<&Presample>,
    stats: bool,
    gamma: Option<&mut [f64]>,
) -> Option<Suff> {
    let k = start.len();
    match k {
        1 => run::<1>(k, data, start, a, means, gauss, ws, pre, stats, gamma),
        2 => run::<2>(k, data, start, a, means, gauss, ws, pre, stats, gamma),
        3 => run::<3>(k, data, start, a, means, gauss, ws, pre, stats, gamma),
        4 => run::<4>(k, data, start, a, means, gauss, ws, pre, stats, gamma),
        5 => run::<5>(k, data, start, a, means, gauss, ws, pre, stats, gamma),
        6 => run::<6>(k, data, start, a, means, gauss, ws, pre, stats, gamma),
        _ => run::<0>(k, data, start, a, means, gauss, ws, pre, stats, gamma),
    }
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
    stats: bool,
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
        for v in bseq.iter_mut() {
            *v = exp_nonpos(*v);
        }
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
        if !stats {
            continue;
        }
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

#[cfg(test)]
mod tests {
    use super::exp_nonpos;

    #[test]
    fn fast_exp_matches_std() {
        let mut worst = 0.0f64;
        for i in 0..200_000 {
            let x = -(i as f64) * 0.003_7;
            let got = exp_nonpos(x);
            if x < -708.0 {
                assert_eq!(got, 0.0);
                continue;
            }
            worst = worst.max(((got - x.exp()) / x.exp()).abs());
        }
        assert!(worst < 5e-16, "{worst}");
        assert_eq!(exp_nonpos(0.0), 1.0);
        assert_eq!(exp_nonpos(-1e6), 0.0);
    }
}
