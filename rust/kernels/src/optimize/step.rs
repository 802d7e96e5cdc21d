//! One generation of DE/rand/1/bin, SHADE or L-SHADE, split into trial
//! construction and selection so each half can be checked against a numpy
//! reference with injected randomness (a tape of uniforms).

use crate::error::{Result, invalid};
use rand_chacha::ChaCha8Rng;

/// Where the uniforms come from: the run's stream, or an injected tape.
pub trait Source {
    fn uniform(&mut self) -> f64;

    /// An index in 0..n (n >= 1).
    fn index(&mut self, n: usize) -> usize {
        ((self.uniform() * n as f64) as usize).min(n - 1)
    }

    /// A standard normal from two uniforms (Box–Muller, cosine branch).
    #[inline]
    fn normal(&mut self) -> f64 {
        let u1 = self.uniform();
        let u2 = self.uniform();
        crate::rng::box_muller(u1, u2).0
    }

    /// `out.len()` uniforms, in order.
    #[inline]
    fn fill_uniform(&mut self, out: &mut [f64]) {
        for o in out {
            *o = self.uniform();
        }
    }
}

impl Source for ChaCha8Rng {
    #[inline]
    fn uniform(&mut self) -> f64 {
        crate::rng::uniform(self)
    }
}

/// Injected uniforms, read in order; running out is reported, not wrapped.
pub struct Tape<'a> {
    data: &'a [f64],
    pub pos: usize,
    pub overrun: bool,
}

impl<'a> Tape<'a> {
    pub fn new(data: &'a [f64]) -> Self {
        Self {
            data,
            pos: 0,
            overrun: false,
        }
    }

    pub fn check(&self) -> Result<()> {
        if self.overrun {
            Err(invalid(format!(
                "the random tape ran out after {} values",
                self.data.len()
            )))
        } else {
            Ok(())
        }
    }
}

impl Source for Tape<'_> {
    fn uniform(&mut self) -> f64 {
        match self.data.get(self.pos) {
            Some(&u) => {
                self.pos += 1;
                u
            }
            None => {
                self.overrun = true;
                0.5
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    De,
    Shade,
    Lshade,
}

impl Method {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "de" => Ok(Self::De),
            "shade" => Ok(Self::Shade),
            "lshade" => Ok(Self::Lshade),
            _ => Err(invalid(format!(
                "unknown method {name:?}; choose lshade, shade or de"
            ))),
        }
    }
}

/// Out-of-bounds handling: midpoint between parent and bound (SHADE), or a
/// uniform resample inside the box (SciPy's rule, for parity runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repair {
    Midpoint,
    Resample,
}

/// The algorithm's constants for one run.
#[derive(Debug, Clone)]
pub struct Params {
    pub method: Method,
    /// Initial population size.
    pub n_init: usize,
    /// Final population size under LPSR.
    pub n_min: usize,
    /// Memory size H.
    pub h: usize,
    /// Archive size as a multiple of N.
    pub arc_rate: f64,
    /// L-SHADE's fixed p; SHADE draws p in [2/N, 0.2].
    pub p: f64,
    /// DE's F and CR.
    pub f: f64,
    pub cr: f64,
    pub repair: Repair,
    pub max_evals: usize,
}

/// The terminal CR marker (⊥) in the memory.
pub const TERMINAL: f64 = -1.0;

/// The evolving population, archive and memories.
#[derive(Debug, Clone)]
pub struct State {
    pub d: usize,
    pub pop: Vec<f64>,
    pub fit: Vec<f64>,
    pub archive: Vec<f64>,
    pub mem_cr: Vec<f64>,
    pub mem_f: Vec<f64>,
    pub mem_pos: usize,
    pub nfev: usize,
}

impl State {
    pub fn n(&self) -> usize {
        self.fit.len()
    }

    fn row(&self, i: usize) -> &[f64] {
        &self.pop[i * self.d..(i + 1) * self.d]
    }

    /// Row `i` of the virtual concatenation population ‖ archive.
    fn row_pa(&self, i: usize) -> &[f64] {
        let n = self.n();
        if i < n {
            self.row(i)
        } else {
            &self.archive[(i - n) * self.d..(i - n + 1) * self.d]
        }
    }

    pub fn archive_len(&self) -> usize {
        self.archive.len() / self.d
    }
}

/// Trial vectors plus the CR and F each one was built with.
#[derive(Debug, Clone, Default)]
pub struct Trials {
    pub x: Vec<f64>,
    pub cr: Vec<f64>,
    pub f: Vec<f64>,
}

/// NaN sorts as +inf.
pub fn key(v: f64) -> f64 {
    if v.is_nan() { f64::INFINITY } else { v }
}

/// Indices sorted by fitness, ties by index (a stable argsort).
pub fn argsort(fit: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..fit.len()).collect();
    idx.sort_by(|&a, &b| key(fit[a]).total_cmp(&key(fit[b])));
    idx
}

/// An integer whose order is `key(v).total_cmp` order.
#[inline]
fn rank_key(v: f64) -> i64 {
    let b = key(v).to_bits() as i64;
    b ^ ((((b >> 63) as u64) >> 1) as i64)
}

/// Buffers reused across generations, so a run allocates nothing per generation.
#[derive(Debug, Clone, Default)]
pub struct Scratch {
    ranked: Vec<(i64, usize)>,
    order: Vec<usize>,
    keep: Vec<bool>,
    v: Vec<f64>,
    s_cr: Vec<f64>,
    s_f: Vec<f64>,
    s_df: Vec<f64>,
}

/// The `m` best indices into `out`, equal to `argsort(fit)[..m]` (sorted) or the
/// same set in any order. (key, index) pairs are distinct, so the partial
/// selection gives exactly the stable argsort's prefix.
fn best(fit: &[f64], m: usize, sorted: bool, ranked: &mut Vec<(i64, usize)>, out: &mut Vec<usize>) {
    ranked.clear();
    ranked.extend(fit.iter().enumerate().map(|(i, &v)| (rank_key(v), i)));
    out.clear();
    if m == 0 {
        return;
    }
    if m < ranked.len() {
        ranked.select_nth_unstable(m - 1);
        ranked.truncate(m);
    }
    if sorted {
        ranked.sort_unstable();
    }
    out.extend(ranked.iter().map(|&(_, i)| i));
}

/// L-SHADE's pbest pool size for population `n`.
fn pbest_count(p: f64, n: usize) -> usize {
    ((p * n as f64).round() as usize).clamp(2, n)
}

#[inline]
fn distinct<S: Source + ?Sized>(src: &mut S, n: usize, avoid: &[usize]) -> usize {
    loop {
        let r = src.index(n);
        if !avoid.contains(&r) {
            return r;
        }
    }
}

/// Cauchy(m, 0.1) redrawn while <= 0, truncated to 1.
fn draw_f<S: Source + ?Sized>(src: &mut S, m: f64) -> f64 {
    loop {
        let f = m + 0.1 * (std::f64::consts::PI * (src.uniform() - 0.5)).tan();
        if f > 0.0 {
            return f.min(1.0);
        }
    }
}

/// Build all N trial vectors of one generation (all randomness drawn here, serially).
pub fn make_trials<S: Source + ?Sized>(
    p: &Params,
    s: &State,
    lower: &[f64],
    upper: &[f64],
    src: &mut S,
) -> Trials {
    let mut t = Trials::default();
    make_trials_into(p, s, lower, upper, src, &mut t, &mut Scratch::default());
    t
}

/// `make_trials` into reused buffers.
pub fn make_trials_into<S: Source + ?Sized>(
    p: &Params,
    s: &State,
    lower: &[f64],
    upper: &[f64],
    src: &mut S,
    t: &mut Trials,
    w: &mut Scratch,
) {
    let (n, d) = (s.n(), s.d);
    t.x.resize(n * d, 0.0);
    t.cr.resize(n, 0.0);
    t.f.resize(n, 0.0);
    // Only the pbest pool of the fitness order is ever read.
    let lshade_best = pbest_count(p.p, n);
    match p.method {
        Method::De => w.order.clear(),
        Method::Shade => best(&s.fit, n, true, &mut w.ranked, &mut w.order),
        Method::Lshade => best(&s.fit, lshade_best, true, &mut w.ranked, &mut w.order),
    }
    w.v.resize(d, 0.0);
    let rows = t.x.chunks_exact_mut(d).zip(t.cr.iter_mut().zip(&mut t.f));
    for (i, (u, (cr, f))) in rows.enumerate() {
        (*cr, *f) = trial(
            p,
            s,
            &w.order,
            lshade_best,
            i,
            lower,
            upper,
            src,
            &mut w.v,
            u,
        );
    }
}

/// The trial vector of individual `i` into `u`; returns its (CR, F).
/// `order` is the fitness argsort, at least its pbest prefix (unused by DE);
/// `v` is scratch of length D.
#[allow(clippy::too_many_arguments)]
pub fn make_trial<S: Source + ?Sized>(
    p: &Params,
    s: &State,
    order: &[usize],
    i: usize,
    lower: &[f64],
    upper: &[f64],
    src: &mut S,
    v: &mut [f64],
    u: &mut [f64],
) -> (f64, f64) {
    let best = pbest_count(p.p, s.n());
    trial(p, s, order, best, i, lower, upper, src, v, u)
}

/// `make_trial` with L-SHADE's pbest pool size computed once per generation.
#[allow(clippy::too_many_arguments)]
#[inline]
fn trial<S: Source + ?Sized>(
    p: &Params,
    s: &State,
    order: &[usize],
    lshade_best: usize,
    i: usize,
    lower: &[f64],
    upper: &[f64],
    src: &mut S,
    v: &mut [f64],
    u: &mut [f64],
) -> (f64, f64) {
    let (n, d) = (s.n(), s.d);
    let xi = s.row(i);
    let (v, u, lower, upper) = (&mut v[..d], &mut u[..d], &lower[..d], &upper[..d]);
    let (cr, f) = match p.method {
        Method::De => {
            let r1 = distinct(src, n, &[i]);
            let r2 = distinct(src, n, &[i, r1]);
            let r3 = distinct(src, n, &[i, r1, r2]);
            let (a, b, c) = (s.row(r1), s.row(r2), s.row(r3));
            for (vj, ((a, b), c)) in v.iter_mut().zip(a.iter().zip(b).zip(c)) {
                *vj = a + p.f * (b - c);
            }
            (p.cr, p.f)
        }
        Method::Shade | Method::Lshade => {
            let k = src.index(s.mem_cr.len());
            let cr = if s.mem_cr[k] == TERMINAL {
                0.0
            } else {
                (s.mem_cr[k] + 0.1 * src.normal()).clamp(0.0, 1.0)
            };
            let f = draw_f(src, s.mem_f[k]);
            let n_best = if p.method == Method::Shade {
                let lo = 2.0 / n as f64;
                pbest_count(lo + src.uniform() * (0.2 - lo), n)
            } else {
                lshade_best
            };
            let pbest = s.row(order[src.index(n_best)]);
            let r1 = distinct(src, n, &[i]);
            let r2 = distinct(src, n + s.archive_len(), &[i, r1]);
            let (a, b) = (s.row(r1), s.row_pa(r2));
            let rows = xi.iter().zip(pbest).zip(a.iter().zip(b));
            for (vj, ((x, pb), (a, b))) in v.iter_mut().zip(rows) {
                *vj = x + f * (pb - x) + f * (a - b);
            }
            (cr, f)
        }
    };
    let jrand = src.index(d);
    // The D crossover uniforms go through `u` itself.
    src.fill_uniform(u);
    // A bit mask instead of a branch: the coin flips are unpredictable.
    for (j, (uj, (vj, x))) in u.iter_mut().zip(v.iter().zip(xi)).enumerate() {
        let take = ((*uj < cr) | (j == jrand)) as u64;
        let mask = take.wrapping_neg();
        *uj = f64::from_bits((vj.to_bits() & mask) | (x.to_bits() & !mask));
    }
    for (j, uj) in u.iter_mut().enumerate() {
        let (l, h) = (lower[j], upper[j]);
        if *uj < l || *uj > h {
            *uj = match p.repair {
                Repair::Midpoint if *uj < l => 0.5 * (l + xi[j]),
                Repair::Midpoint => 0.5 * (h + xi[j]),
                Repair::Resample => l + src.uniform() * (h - l),
            };
        }
    }
    (cr, f)
}

fn archive_cap(p: &Params, n: usize) -> usize {
    ((p.arc_rate * n as f64).round() as usize).max(1)
}

/// Selection for the first `trial_fit.len()` trials, archive update, memory
/// update, then (L-SHADE) linear population size reduction.
pub fn select<S: Source + ?Sized>(
    p: &Params,
    s: &mut State,
    t: &Trials,
    trial_fit: &[f64],
    src: &mut S,
) {
    select_with(p, s, t, trial_fit, src, &mut Scratch::default());
}

/// `select` with reused buffers.
pub fn select_with<S: Source + ?Sized>(
    p: &Params,
    s: &mut State,
    t: &Trials,
    trial_fit: &[f64],
    src: &mut S,
    w: &mut Scratch,
) {
    let d = s.d;
    let cap = archive_cap(p, s.n());
    let (s_cr, s_f, s_df) = (&mut w.s_cr, &mut w.s_f, &mut w.s_df);
    s_cr.clear();
    s_f.clear();
    s_df.clear();
    for (i, &tf) in trial_fit.iter().enumerate() {
        let (fi, tfk) = (key(s.fit[i]), key(tf));
        if tfk > fi {
            continue;
        }
        if tfk < fi && p.method != Method::De {
            if s.archive_len() < cap {
                s.archive.extend_from_slice(&s.pop[i * d..(i + 1) * d]);
            } else {
                let k = src.index(s.archive_len());
                let (pop, arc) = (&s.pop, &mut s.archive);
                arc[k * d..(k + 1) * d].copy_from_slice(&pop[i * d..(i + 1) * d]);
            }
            s_cr.push(t.cr[i]);
            s_f.push(t.f[i]);
            s_df.push((fi - tfk).abs());
        }
        s.pop[i * d..(i + 1) * d].copy_from_slice(&t.x[i * d..(i + 1) * d]);
        s.fit[i] = tf;
    }
    s.nfev += trial_fit.len();
    if p.method != Method::De && !s_f.is_empty() {
        update_memory(p.method, s, s_cr, s_f, s_df);
    }
    if p.method == Method::Lshade {
        reduce_with(p, s, src, w);
    }
}

/// Weighted means of the successful CR and F into memory slot `mem_pos`.
pub fn update_memory(method: Method, s: &mut State, s_cr: &[f64], s_f: &[f64], s_df: &[f64]) {
    let total: f64 = s_df.iter().sum();
    let w: Vec<f64> = if total > 0.0 {
        s_df.iter().map(|v| v / total).collect()
    } else {
        vec![1.0 / s_df.len() as f64; s_df.len()]
    };
    let lehmer = |v: &[f64]| {
        let num: f64 = w.iter().zip(v).map(|(w, x)| w * x * x).sum();
        let den: f64 = w.iter().zip(v).map(|(w, x)| w * x).sum();
        num / den
    };
    let k = s.mem_pos;
    s.mem_f[k] = lehmer(s_f);
    let max_cr = s_cr.iter().copied().fold(0.0, f64::max);
    s.mem_cr[k] = match method {
        Method::Lshade if s.mem_cr[k] == TERMINAL || max_cr == 0.0 => TERMINAL,
        Method::Lshade => lehmer(s_cr),
        _ => w.iter().zip(s_cr).map(|(w, x)| w * x).sum(),
    };
    s.mem_pos = (k + 1) % s.mem_f.len();
}

/// The LPSR population size after `nfev` of `max_evals` evaluations.
pub fn lpsr_size(n_init: usize, n_min: usize, nfev: usize, max_evals: usize) -> usize {
    let frac = nfev.min(max_evals) as f64 / max_evals.max(1) as f64;
    let n = (n_init as f64 + (n_min as f64 - n_init as f64) * frac).round() as usize;
    n.max(n_min)
}

/// Drop the worst individuals down to the LPSR size, then trim the archive at random.
pub fn reduce<S: Source + ?Sized>(p: &Params, s: &mut State, src: &mut S) {
    reduce_with(p, s, src, &mut Scratch::default());
}

/// `reduce` with reused buffers; survivors keep their relative order.
pub fn reduce_with<S: Source + ?Sized>(p: &Params, s: &mut State, src: &mut S, w: &mut Scratch) {
    let d = s.d;
    let n = s.n();
    let target = lpsr_size(p.n_init, p.n_min, s.nfev, p.max_evals);
    if target < n {
        best(&s.fit, target, false, &mut w.ranked, &mut w.order);
        w.keep.clear();
        w.keep.resize(n, false);
        for &i in &w.order {
            w.keep[i] = true;
        }
        let mut k = 0;
        for i in 0..n {
            if w.keep[i] {
                if k != i {
                    s.pop.copy_within(i * d..(i + 1) * d, k * d);
                    s.fit[k] = s.fit[i];
                }
                k += 1;
            }
        }
        s.pop.truncate(target * d);
        s.fit.truncate(target);
    }
    let cap = archive_cap(p, s.n());
    while s.archive_len() > cap {
        let k = src.index(s.archive_len());
        let last = s.archive_len() - 1;
        if k != last {
            let (head, tail) = s.archive.split_at_mut(last * d);
            head[k * d..(k + 1) * d].copy_from_slice(&tail[..d]);
        }
        s.archive.truncate(last * d);
    }
}
