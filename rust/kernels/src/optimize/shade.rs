//! SHADE / L-SHADE trials of one generation in three passes, for midpoint
//! repair (the default): every draw first, in exactly the per-trial order of
//! `step::trial` (CR is drawn there too); then F's tangent over all trials
//! at once (independent, so they overlap instead of waiting on one another);
//! then the mutation, crossover and repair. The trials are bitwise
//! those of the one-pass path (tested against it in `step.rs`).

use super::step::{Generation, Params, Source, State, Trials, distinct, tanpi};
use super::step::{Method, draw_cr, pbest_count, pick};

/// What pass 1 keeps of a trial's draws.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Picks {
    slot: usize,
    /// The accepted uniform of the F draw.
    uf: f64,
    pbest: usize,
    r1: usize,
    r2: usize,
    jrand: usize,
}

/// Uniforms this close to an F threshold are decided by computing F itself.
const BAND: f64 = 1e-9;

/// F = m + 0.1 tan(π(U - 1/2)) > 0 exactly when U > 1/2 + atan(-10 m)/π, as
/// tan is increasing; the thresholds let pass 1 redraw like `draw_f` without
/// the tangent, except within BAND of a threshold.
fn accepts(u: f64, m: f64, threshold: f64) -> bool {
    if (u - threshold).abs() > BAND {
        u > threshold
    } else {
        m + 0.1 * tanpi(u - 0.5) > 0.0
    }
}

/// Fill `t` (x, cr, f) for all N trials; `picks` and `thresholds` are scratch.
#[allow(clippy::too_many_arguments)]
pub(super) fn trials<S: Source + ?Sized>(
    p: &Params,
    s: &State,
    g: &Generation<'_>,
    lower: &[f64],
    upper: &[f64],
    src: &mut S,
    t: &mut Trials,
    picks: &mut Vec<Picks>,
    thresholds: &mut Vec<f64>,
) {
    let (n, d) = (s.n(), s.d);
    thresholds.clear();
    thresholds.extend(
        s.mem_f
            .iter()
            .map(|m| 0.5 + (-10.0 * m).atan() / std::f64::consts::PI),
    );
    // Pass 1: the draws, in `step::trial`'s order; the coins go into the rows.
    let pool = n + s.archive_len();
    picks.clear();
    let rows = t.x.chunks_exact_mut(d).zip(t.cr.iter_mut());
    for (i, (coins, cr)) in rows.enumerate() {
        let slot = src.index(s.mem_cr.len());
        *cr = draw_cr(src, s.mem_cr[slot]);
        let uf = loop {
            let u = src.uniform();
            if accepts(u, s.mem_f[slot], thresholds[slot]) {
                break u;
            }
        };
        let n_best = if p.method == Method::Shade {
            let lo = 2.0 / n as f64;
            pbest_count(lo + src.uniform() * (0.2 - lo), n)
        } else {
            g.lshade_best
        };
        let pbest = g.order[src.index(n_best)];
        let r1 = distinct(src, n, &[i]);
        let r2 = distinct(src, pool, &[i, r1]);
        let jrand = src.index(d);
        src.coin_uniforms(coins);
        picks.push(Picks {
            slot,
            uf,
            pbest,
            r1,
            r2,
            jrand,
        });
    }
    // Pass 2: F of every trial.
    for (f, pk) in t.f.iter_mut().zip(picks.iter()) {
        *f = (s.mem_f[pk.slot] + 0.1 * tanpi(pk.uf - 0.5)).min(1.0);
    }
    // Pass 3: current-to-pbest/1 mutant, binomial crossover, midpoint repair.
    let (lower, upper) = (&lower[..d], &upper[..d]);
    let rows =
        t.x.chunks_exact_mut(d)
            .zip(picks.iter().zip(t.cr.iter().zip(&t.f)));
    for (i, (u, (pk, (&cr, &f)))) in rows.enumerate() {
        let xi = s.row(i);
        let (xb, x1, x2) = (s.row(pk.pbest), s.row(pk.r1), s.row_pa(pk.r2));
        let (xi, xb, x1, x2, u) = (&xi[..d], &xb[..d], &x1[..d], &x2[..d], &mut u[..d]);
        for j in 0..d {
            let x = xi[j];
            let v = x + f * (xb[j] - x) + f * (x1[j] - x2[j]);
            let c = pick((u[j] < cr) | (j == pk.jrand), v, x);
            let (lo, hi) = (lower[j], upper[j]);
            u[j] = pick(c < lo, 0.5 * (lo + x), pick(c > hi, 0.5 * (hi + x), c));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::step::{self, Method, Repair, Scratch, State, Tape};
    use super::super::{Config, Preset};
    use crate::rng::{SplitMix, purpose, stream};

    /// A mid-run state: a population, some archive, mixed memories (one terminal).
    fn state(d: usize, n: usize, seed: u64) -> State {
        let mut rng = stream(seed, purpose::MISC, 0);
        let mut u = || crate::rng::uniform(&mut rng);
        let pop: Vec<f64> = (0..n * d).map(|_| -5.0 + 10.0 * u()).collect();
        let fit: Vec<f64> = (0..n).map(|_| u()).collect();
        let archive: Vec<f64> = (0..(n / 2) * d).map(|_| -5.0 + 10.0 * u()).collect();
        State {
            d,
            pop,
            fit,
            archive,
            mem_cr: vec![0.5, step::TERMINAL, 0.1, 0.9, 0.0, 0.7],
            mem_f: vec![0.5, 0.02, 0.9, 1.0, 0.3, 0.001],
            mem_pos: 0,
            nfev: 0,
        }
    }

    /// The one-pass path (`step::trial` per individual) for the same generation.
    fn one_pass<S: step::Source + ?Sized>(
        p: &step::Params,
        s: &State,
        src: &mut S,
    ) -> step::Trials {
        let (n, d) = (s.n(), s.d);
        let order = step::argsort(&s.fit);
        let g = step::Generation {
            order: &order,
            lshade_best: step::pbest_count(p.p, n),
            f: p.f,
        };
        let mut t = step::Trials::default();
        t.x.resize(n * d, 0.0);
        let mut v = vec![0.0; d];
        let lo = vec![-5.0; d];
        let hi = vec![5.0; d];
        for i in 0..n {
            let u = &mut t.x[i * d..(i + 1) * d];
            let (cr, f) = step::make_trial(p, s, &g, i, &lo, &hi, src, &mut v, u);
            t.cr.push(cr);
            t.f.push(f);
        }
        t
    }

    fn three_pass<S: step::Source + ?Sized>(
        p: &step::Params,
        s: &State,
        src: &mut S,
    ) -> step::Trials {
        let d = s.d;
        let mut t = step::Trials::default();
        step::make_trials_into(
            p,
            s,
            &vec![-5.0; d],
            &vec![5.0; d],
            src,
            &mut t,
            &mut Scratch::default(),
        );
        t
    }

    #[test]
    fn three_passes_equal_one_pass_bitwise() {
        for (method, d, n) in [
            (Method::Lshade, 10, 40),
            (Method::Shade, 3, 25),
            (Method::Lshade, 33, 9),
        ] {
            let mut cfg = Config::new(method, 10_000, 0);
            cfg.preset = Preset::Lshade2014;
            let p = cfg.params(d);
            assert_eq!(p.repair, Repair::Midpoint);
            for seed in 0..5 {
                let s = state(d, n, seed);
                let mut a = SplitMix::stream(seed, purpose::DE_GENERATION, 1);
                let mut b = a.clone();
                let (ta, tb) = (one_pass(&p, &s, &mut a), three_pass(&p, &s, &mut b));
                assert_eq!(ta.x, tb.x);
                assert_eq!(ta.cr, tb.cr);
                assert_eq!(ta.f, tb.f);
                // Both consumed the same draws.
                assert_eq!(step::Source::uniform(&mut a), step::Source::uniform(&mut b));
            }
        }
    }

    #[test]
    fn tape_near_the_f_threshold_redraws_like_draw_f() {
        // Slot 0 (m = 0.5): U just below, at and just above 1/2 + atan(-5)/π.
        let thr = 0.5 + (-5.0_f64).atan() / std::f64::consts::PI;
        let p = Config::new(Method::Lshade, 1000, 0).params(2);
        let s = state(2, 4, 9);
        let near = [1e-6, 1e-8, 2e-9, 1e-12, 0.0];
        for u in near.iter().flat_map(|e| [thr - e, thr + e]).chain([0.0]) {
            // slot, u1, u2, then F draws (u, then an accepted 0.7), then the rest.
            let mut tape = vec![0.0, 0.3, 0.6, u, 0.7];
            tape.extend([0.1, 0.5, 0.9, 0.2, 0.4, 0.8].iter().cycle().take(40));
            let mut a = Tape::new(&tape);
            let mut b = Tape::new(&tape);
            let (ta, tb) = (one_pass(&p, &s, &mut a), three_pass(&p, &s, &mut b));
            assert_eq!((ta.x, ta.f, a.pos), (tb.x, tb.f, b.pos), "{u}");
        }
    }
}
