//! One generation of DE/rand/1/bin, SHADE or L-SHADE, split into trial
//! construction and selection so each half can be checked against a numpy
//! reference with injected randomness (a tape of uniforms).

use crate::error::{Result, invalid};
use crate::rng::SplitMix;

/// Where the uniforms come from: the run's stream, or an injected tape.
///
/// Every draw is one uniform U in [0, 1). The run's stream (`SplitMix`)
/// spends one 64-bit word per draw, except that a standard normal comes
/// from rand_distr's ziggurat and a word carries four 16-bit crossover coins:
/// CR is compared at a resolution of 2^-16, far below the 0.1 spread it is
/// drawn with. A tape gives one value per uniform, normals by Box–Muller.
pub trait Source {
    fn uniform(&mut self) -> f64;

    /// An index in 0..n (n >= 1): floor(U·n).
    #[inline]
    fn index(&mut self, n: usize) -> usize {
        ((self.uniform() * n as f64) as usize).min(n - 1)
    }

    /// A standard normal from two uniforms (Box–Muller, cosine branch):
    /// sqrt(-2 ln(1 - U1)) cos(2π U2).
    #[inline]
    fn normal(&mut self) -> f64 {
        let u1 = self.uniform();
        let u2 = self.uniform();
        (-2.0 * (1.0 - u1).ln()).sqrt() * super::functions::cos2pi(u2)
    }

    /// The crossover uniforms of one row, one per coordinate in order.
    #[inline]
    fn coin_uniforms(&mut self, out: &mut [f64]) {
        for o in out {
            *o = self.uniform();
        }
    }

    /// Binomial crossover coins from `coin_uniforms`' values: `take[j]` is all
    /// ones where U_j < cr, else zero.
    #[inline]
    fn coins(&mut self, cr: f64, take: &mut [u64]) {
        for t in take {
            *t = u64::from(self.uniform() < cr).wrapping_neg();
        }
    }
}

/// 2^-16: a 16-bit coin k is the uniform k·2^-16.
const COIN_UNIT: f64 = 1.0 / 65_536.0;

/// The 16-bit coins of up to four coordinates from one word, low bits first.
#[inline(always)]
fn quarters(w: u64) -> [u16; 4] {
    [
        w as u16,
        (w >> 16) as u16,
        (w >> 32) as u16,
        (w >> 48) as u16,
    ]
}

/// `put(chunk, coins)` for each chunk of four coordinates (the last may be
/// shorter), one word each: a row's coins do not depend on how it is split
/// into blocks of a multiple of four.
#[inline(always)]
fn coin_words<T>(rng: &mut SplitMix, out: &mut [T], mut put: impl FnMut(&mut [T], [u16; 4])) {
    let mut chunks = out.chunks_exact_mut(4);
    for c in &mut chunks {
        put(c, quarters(rng.next_word()));
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        put(rest, quarters(rng.next_word()));
    }
}

impl Source for SplitMix {
    /// 53 bits: (w >> 11)·2^-53, rand's f64.
    #[inline]
    fn uniform(&mut self) -> f64 {
        crate::rng::uniform(self)
    }

    /// floor(w·n / 2^64), exact in integers.
    #[inline]
    fn index(&mut self, n: usize) -> usize {
        ((u128::from(self.next_word()) * n as u128) >> 64) as usize
    }

    /// rand_distr's ziggurat: one word per try, no logarithm or cosine on the
    /// fast path (about 99% of draws).
    #[inline]
    fn normal(&mut self) -> f64 {
        use rand::RngExt;
        self.sample(rand_distr::StandardNormal)
    }

    #[inline]
    fn coin_uniforms(&mut self, out: &mut [f64]) {
        coin_words(self, out, |c, k| {
            for (o, k) in c.iter_mut().zip(k) {
                *o = f64::from(k) * COIN_UNIT;
            }
        });
    }

    /// U < cr with U = k·2^-16 is k < cr·2^16 (exact), i.e. k < ceil(cr·2^16).
    #[inline]
    fn coins(&mut self, cr: f64, take: &mut [u64]) {
        // ceil(t) without a libm call (no SSE4.1 rounding in the baseline build).
        let t = cr * 65_536.0;
        let below = t as u64 + u64::from(((t as u64) as f64) < t);
        coin_words(self, take, |c, k| {
            for (t, k) in c.iter_mut().zip(k) {
                *t = u64::from(u64::from(k) < below).wrapping_neg();
            }
        });
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

/// Classic DE mutation (SciPy's names). `best` is the current population's
/// best member (lowest f, ties to the lower index); r1, r2, ... are distinct
/// members other than the target i.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutation {
    /// v = x_r1 + F (x_r2 - x_r3)
    Rand1,
    /// v = best + F (x_r1 - x_r2)
    Best1,
    /// v = x_i + F (best - x_i) + F (x_r1 - x_r2)
    CurrentToBest1,
    /// v = x_r1 + F (best - x_r1) + F (x_r2 - x_r3)
    RandToBest1,
    /// v = x_r1 + F (x_r2 + x_r3 - x_r4 - x_r5)
    Rand2,
    /// v = best + F (x_r1 + x_r2 - x_r3 - x_r4)
    Best2,
}

/// Classic DE crossover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crossover {
    /// Each coordinate from the mutant if U < CR, plus one forced coordinate j_rand.
    Bin,
    /// A run of L consecutive coordinates from a random start j, wrapping around;
    /// L grows while U < CR (at least 1, at most D).
    Exp,
}

/// A classic DE strategy: mutation x crossover, e.g. "rand1bin" or "best1exp".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strategy {
    pub mutation: Mutation,
    pub crossover: Crossover,
}

impl Default for Strategy {
    fn default() -> Self {
        Self {
            mutation: Mutation::Rand1,
            crossover: Crossover::Bin,
        }
    }
}

impl Strategy {
    pub const NAMES: [&'static str; 12] = [
        "rand1bin",
        "rand1exp",
        "best1bin",
        "best1exp",
        "currenttobest1bin",
        "currenttobest1exp",
        "randtobest1bin",
        "randtobest1exp",
        "rand2bin",
        "rand2exp",
        "best2bin",
        "best2exp",
    ];

    pub fn parse(name: &str) -> Result<Self> {
        let (m, crossover) = match (name.strip_suffix("bin"), name.strip_suffix("exp")) {
            (Some(m), _) => (m, Crossover::Bin),
            (_, Some(m)) => (m, Crossover::Exp),
            _ => ("", Crossover::Bin),
        };
        let mutation = match m {
            "rand1" => Mutation::Rand1,
            "best1" => Mutation::Best1,
            "currenttobest1" => Mutation::CurrentToBest1,
            "randtobest1" => Mutation::RandToBest1,
            "rand2" => Mutation::Rand2,
            "best2" => Mutation::Best2,
            _ => {
                return Err(invalid(format!(
                    "unknown strategy {name:?}; choose one of {}",
                    Self::NAMES.join(", ")
                )));
            }
        };
        Ok(Self {
            mutation,
            crossover,
        })
    }

    /// How many distinct members other than the target the mutation draws.
    pub fn draws(self) -> usize {
        match self.mutation {
            Mutation::Best1 | Mutation::CurrentToBest1 => 2,
            Mutation::Rand1 | Mutation::RandToBest1 => 3,
            Mutation::Best2 => 4,
            Mutation::Rand2 => 5,
        }
    }

    fn uses_best(self) -> bool {
        !matches!(self.mutation, Mutation::Rand1 | Mutation::Rand2)
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
    /// DE only: the strategy, and F ~ U[lo, hi] drawn once per generation
    /// (replacing `f`) when `dither` is set.
    pub strategy: Strategy,
    pub dither: Option<(f64, f64)>,
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

    pub(super) fn row(&self, i: usize) -> &[f64] {
        &self.pop[i * self.d..(i + 1) * self.d]
    }

    /// Row `i` of the virtual concatenation population ‖ archive.
    pub(super) fn row_pa(&self, i: usize) -> &[f64] {
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
    picks: Vec<super::shade::Picks>,
    thresholds: Vec<f64>,
}

/// The `m` best indices into `out`, equal to `argsort(fit)[..m]` (sorted) or the
/// same set in any order. (key, index) pairs are distinct, so the partial
/// selection gives exactly the stable argsort's prefix.
fn best(fit: &[f64], m: usize, sorted: bool, ranked: &mut Vec<(i64, usize)>, out: &mut Vec<usize>) {
    out.clear();
    let n = fit.len();
    if !sorted && m < n && n - m <= 2 {
        // Dropping one or two (LPSR's usual step): scan for the worst pairs.
        let worst = |skip: usize| {
            (0..n)
                .filter(|&i| i != skip)
                .max_by_key(|&i| (rank_key(fit[i]), i))
                .unwrap_or(n)
        };
        let w1 = worst(n);
        let w2 = if n - m == 2 { worst(w1) } else { n };
        out.extend((0..n).filter(|&i| i != w1 && i != w2));
        return;
    }
    ranked.clear();
    ranked.extend(fit.iter().enumerate().map(|(i, &v)| (rank_key(v), i)));
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
pub(super) fn pbest_count(p: f64, n: usize) -> usize {
    ((p * n as f64).round() as usize).clamp(2, n)
}

#[inline]
pub(super) fn distinct<S: Source + ?Sized>(src: &mut S, n: usize, avoid: &[usize]) -> usize {
    loop {
        let r = src.index(n);
        if !avoid.contains(&r) {
            return r;
        }
    }
}

/// tan(πv) for |v| <= 1/2, from the exactly reduced sin and cos.
#[inline]
pub(super) fn tanpi(v: f64) -> f64 {
    let (s, c) = super::functions::sincos2pi(0.5 * v);
    s / c
}

/// N(m, 0.1) clamped to [0, 1]; 0 without a draw for the terminal marker.
#[inline]
pub(super) fn draw_cr<S: Source + ?Sized>(src: &mut S, m: f64) -> f64 {
    if m == TERMINAL {
        0.0
    } else {
        (m + 0.1 * src.normal()).clamp(0.0, 1.0)
    }
}

/// Cauchy(m, 0.1) redrawn while <= 0, truncated to 1.
fn draw_f<S: Source + ?Sized>(src: &mut S, m: f64) -> f64 {
    loop {
        let f = m + 0.1 * tanpi(src.uniform() - 0.5);
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

/// The generation's F for classic DE: one draw from U[lo, hi] under dither
/// (the generation's first uniform), else the fixed F. Draws nothing otherwise.
pub fn generation_f<S: Source + ?Sized>(p: &Params, src: &mut S) -> f64 {
    match (p.method, p.dither) {
        (Method::De, Some((lo, hi))) => lo + src.uniform() * (hi - lo),
        _ => p.f,
    }
}

/// What every trial of a generation shares.
pub struct Generation<'a> {
    /// The fitness order, at least its pbest prefix (SHADE, L-SHADE), or just
    /// the best member (DE strategies that use it); empty otherwise.
    pub order: &'a [usize],
    /// L-SHADE's pbest pool size.
    pub lshade_best: usize,
    /// Classic DE's F for this generation.
    pub f: f64,
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
        Method::De if p.strategy.uses_best() => best(&s.fit, 1, true, &mut w.ranked, &mut w.order),
        Method::De => w.order.clear(),
        Method::Shade => best(&s.fit, n, true, &mut w.ranked, &mut w.order),
        Method::Lshade => best(&s.fit, lshade_best, true, &mut w.ranked, &mut w.order),
    }
    let f = generation_f(p, src);
    let g = Generation {
        order: &w.order,
        lshade_best,
        f,
    };
    if p.method != Method::De && p.repair == Repair::Midpoint {
        let (picks, thresholds) = (&mut w.picks, &mut w.thresholds);
        super::shade::trials(p, s, &g, lower, upper, src, t, picks, thresholds);
        return;
    }
    w.v.resize(d, 0.0);
    let rows = t.x.chunks_exact_mut(d).zip(t.cr.iter_mut().zip(&mut t.f));
    for (i, (u, (cr, f))) in rows.enumerate() {
        (*cr, *f) = trial(p, s, &g, i, lower, upper, src, &mut w.v, u);
    }
}

/// The trial vector of individual `i` into `u`; returns its (CR, F).
/// `v` is scratch of length D.
#[allow(clippy::too_many_arguments)]
pub fn make_trial<S: Source + ?Sized>(
    p: &Params,
    s: &State,
    g: &Generation<'_>,
    i: usize,
    lower: &[f64],
    upper: &[f64],
    src: &mut S,
    v: &mut [f64],
    u: &mut [f64],
) -> (f64, f64) {
    trial(p, s, g, i, lower, upper, src, v, u)
}

/// v = x_a + f (x_b - x_c) + f (x_e - x_h), the shape shared by the
/// current/rand-to-best and SHADE mutations.
#[inline]
fn to_best(v: &mut [f64], a: &[f64], b: &[f64], f: f64, e: &[f64], h: &[f64]) {
    let rows = a.iter().zip(b).zip(e.iter().zip(h));
    for (vj, ((a, b), (e, h))) in v.iter_mut().zip(rows) {
        *vj = a + f * (b - a) + f * (e - h);
    }
}

/// Classic DE mutation into `v`.
fn de_mutant<S: Source + ?Sized>(
    p: &Params,
    s: &State,
    g: &Generation<'_>,
    i: usize,
    src: &mut S,
    v: &mut [f64],
) {
    let n = s.n();
    let f = g.f;
    // avoid = [i, r1, r2, ...], grown one draw at a time.
    let mut avoid = [i; 6];
    for k in 0..p.strategy.draws() {
        avoid[k + 1] = distinct(src, n, &avoid[..=k]);
    }
    let x = |k: usize| s.row(avoid[k + 1]);
    match p.strategy.mutation {
        Mutation::Rand1 => {
            for (vj, ((a, b), c)) in v.iter_mut().zip(x(0).iter().zip(x(1)).zip(x(2))) {
                *vj = a + f * (b - c);
            }
        }
        Mutation::Best1 => {
            let bst = s.row(g.order[0]);
            for (vj, ((a, b), c)) in v.iter_mut().zip(bst.iter().zip(x(0)).zip(x(1))) {
                *vj = a + f * (b - c);
            }
        }
        Mutation::CurrentToBest1 => to_best(v, s.row(i), s.row(g.order[0]), f, x(0), x(1)),
        Mutation::RandToBest1 => to_best(v, x(0), s.row(g.order[0]), f, x(1), x(2)),
        Mutation::Rand2 | Mutation::Best2 => {
            let (base, o) = match p.strategy.mutation {
                Mutation::Rand2 => (x(0), 1),
                _ => (s.row(g.order[0]), 0),
            };
            let (b, c, e, h) = (x(o), x(o + 1), x(o + 2), x(o + 3));
            for (j, vj) in v.iter_mut().enumerate() {
                *vj = base[j] + f * (b[j] + c[j] - e[j] - h[j]);
            }
        }
    }
}

/// The trial of individual `i` for one generation.
#[allow(clippy::too_many_arguments)]
#[inline]
fn trial<S: Source + ?Sized>(
    p: &Params,
    s: &State,
    g: &Generation<'_>,
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
            de_mutant(p, s, g, i, src, v);
            (p.cr, g.f)
        }
        Method::Shade | Method::Lshade => {
            let k = src.index(s.mem_cr.len());
            let cr = draw_cr(src, s.mem_cr[k]);
            let f = draw_f(src, s.mem_f[k]);
            let n_best = if p.method == Method::Shade {
                let lo = 2.0 / n as f64;
                pbest_count(lo + src.uniform() * (0.2 - lo), n)
            } else {
                g.lshade_best
            };
            let pbest = s.row(g.order[src.index(n_best)]);
            let r1 = distinct(src, n, &[i]);
            let r2 = distinct(src, n + s.archive_len(), &[i, r1]);
            to_best(v, xi, pbest, f, s.row(r1), s.row_pa(r2));
            (cr, f)
        }
    };
    if p.method == Method::De && p.strategy.crossover == Crossover::Exp {
        u.copy_from_slice(xi);
        let mut j = src.index(d);
        u[j] = v[j];
        for _ in 1..d {
            if src.uniform() >= cr {
                break;
            }
            j = (j + 1) % d;
            u[j] = v[j];
        }
    } else {
        let jrand = src.index(d);
        // Coins in blocks of 16 coordinates, drawn in coordinate order. A bit
        // mask instead of a branch: the coin flips are unpredictable.
        let mut take = [0_u64; 16];
        let blocks = u.chunks_mut(16).zip(v.chunks(16).zip(xi.chunks(16)));
        for (b, (ub, (vb, xb))) in blocks.enumerate() {
            let take = &mut take[..ub.len()];
            src.coins(cr, take);
            let rows = ub.iter_mut().zip(vb.iter().zip(xb).zip(take.iter()));
            for (j, (uj, ((vj, x), t))) in rows.enumerate() {
                *uj = pick((*t != 0) | (16 * b + j == jrand), *vj, *x);
            }
        }
    }
    match p.repair {
        Repair::Midpoint => {
            for (uj, ((l, h), x)) in u.iter_mut().zip(lower.iter().zip(upper).zip(xi)) {
                let c = *uj;
                *uj = pick(c < *l, 0.5 * (l + x), pick(c > *h, 0.5 * (h + x), c));
            }
        }
        Repair::Resample => {
            for (j, uj) in u.iter_mut().enumerate() {
                let (l, h) = (lower[j], upper[j]);
                if *uj < l || *uj > h {
                    *uj = l + src.uniform() * (h - l);
                }
            }
        }
    }
    (cr, f)
}

/// `if take { a } else { b }` by bit masks: crossover coins and bound checks
/// are unpredictable, so a branch would mispredict often; this also vectorises.
#[inline(always)]
pub(super) fn pick(take: bool, a: f64, b: f64) -> f64 {
    let m = u64::from(take).wrapping_neg();
    f64::from_bits((a.to_bits() & m) | (b.to_bits() & !m))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::purpose;

    #[test]
    fn sixteen_bit_coins_agree_with_their_uniforms() {
        for n in [1, 2, 3, 9, 10, 16, 17, 33] {
            for cr in [0.0, 1e-6, 0.3, 0.5, 0.999_99, 1.0] {
                let mut a = SplitMix::stream(3, purpose::MISC, n as u64);
                let (mut b, mut c) = (a.clone(), a.clone());
                let (mut u, mut take) = (vec![0.0; n], vec![0; n]);
                for (ub, tb) in u.chunks_mut(16).zip(take.chunks_mut(16)) {
                    a.coin_uniforms(ub);
                    b.coins(cr, tb);
                }
                for (j, (&t, &v)) in take.iter().zip(&u).enumerate() {
                    assert_eq!(t != 0, v < cr, "n={n} cr={cr} j={j}");
                    assert_eq!(v * 65_536.0, (v * 65_536.0).trunc());
                }
                // Four coins per word, a block's last word partly unused.
                let words: usize = u.chunks(16).map(|b| b.len().div_ceil(4)).sum();
                for _ in 0..words {
                    c.next_word();
                }
                let next = c.next_word();
                assert_eq!((a.next_word(), b.next_word()), (next, next));
            }
        }
        // The coin rate is CR: 200,000 coins at CR = 0.3 (4 standard errors).
        let mut rng = SplitMix::stream(5, purpose::MISC, 0);
        let mut take = [0_u64; 16];
        let mut hits = 0;
        for _ in 0..12_500 {
            rng.coins(0.3, &mut take);
            hits += take.iter().filter(|&&t| t != 0).count();
        }
        assert!((hits as f64 / 200_000.0 - 0.3).abs() < 4.0 * (0.21_f64 / 200_000.0).sqrt());
    }

    #[test]
    fn splitmix_draws_are_uniform_and_normal() {
        // Index: every value of 0..7 near 1/7 of 70,000 draws; uniform mean 1/2;
        // ziggurat normals with mean 0 and variance 1 (4 standard errors each).
        let mut rng = SplitMix::stream(11, purpose::MISC, 0);
        let mut counts = [0_usize; 7];
        for _ in 0..70_000 {
            counts[rng.index(7)] += 1;
        }
        assert!(
            counts
                .iter()
                .all(|&c| (c as f64 - 10_000.0).abs() < 4.0 * 92.6)
        );
        let n = 100_000;
        let mean_u = (0..n).map(|_| rng.uniform()).sum::<f64>() / n as f64;
        assert!((mean_u - 0.5).abs() < 4.0 * (1.0 / 12.0 / n as f64).sqrt());
        let z: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let mean = z.iter().sum::<f64>() / n as f64;
        let var = z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 4.0 / (n as f64).sqrt());
        assert!((var - 1.0).abs() < 4.0 * (2.0 / n as f64).sqrt());
    }

    #[test]
    fn best_is_the_stable_argsort_prefix() {
        // Ties, NaN (sorts last) and -0.0 against 0.0.
        let fit = [3.0, f64::NAN, 1.0, 3.0, -0.0, 0.0, 7.0, 1.0, f64::NAN, -2.5];
        let order = argsort(&fit);
        let (mut ranked, mut out) = (Vec::new(), Vec::new());
        for m in 0..=fit.len() {
            best(&fit, m, true, &mut ranked, &mut out);
            assert_eq!(out, order[..m], "sorted, m={m}");
            best(&fit, m, false, &mut ranked, &mut out);
            out.sort_unstable();
            let mut want = order[..m].to_vec();
            want.sort_unstable();
            assert_eq!(out, want, "unsorted, m={m}");
        }
    }
}
