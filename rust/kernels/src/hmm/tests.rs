#![allow(clippy::needless_range_loop)] // index loops read like the maths here
use super::estep::Presample;
use super::*;

fn two_state() -> Params {
    Params {
        k: 2,
        d: 1,
        startprob: vec![0.5, 0.5],
        transmat: vec![0.99, 0.01, 0.02, 0.98],
        means: vec![0.05, -0.1],
        covars: vec![0.5, 4.0],
    }
}

fn fitted(x: &[f64], k: usize, seed: u64) -> FitResult {
    let data = Data::new(x, 1, None).unwrap();
    let mut o = FitOptions::new(k, CovType::Diag);
    o.seed = seed;
    o.n_init = 4;
    fit(&data, &o, None).unwrap()
}

#[test]
fn recovers_simulated_regimes() {
    let p = two_state();
    let (x, states) = sample(&p, 20_000, 3).unwrap();
    let r = fitted(&x, 2, 1);
    let q = &r.params;
    assert!(
        (q.covars[0] - 0.5).abs() < 0.05 && (q.covars[1] - 4.0).abs() < 0.4,
        "{q:?}"
    );
    assert!((q.transmat[0] - 0.99).abs() < 0.005 && (q.transmat[3] - 0.98).abs() < 0.01);
    let data = Data::new(&x, 1, None).unwrap();
    let (path, _) = decode(&data, q).unwrap();
    let hits = path.iter().zip(&states).filter(|(a, b)| a == b).count();
    assert!(hits as f64 / x.len() as f64 > 0.95);
    assert!(r.converged && r.monotone);
    for row in q.transmat.chunks(2) {
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
}

#[test]
fn history_never_decreases() {
    let (x, _) = sample(&two_state(), 3000, 9).unwrap();
    let r = fitted(&x, 3, 2);
    for w in r.history.windows(2) {
        assert!(w[1] - w[0] >= -1e-8 * w[0].abs(), "{w:?}");
    }
    assert_eq!(r.history.len(), r.n_iter + 1);
    assert_eq!(*r.history.last().unwrap(), r.log_likelihood);
    let data = Data::new(&x, 1, None).unwrap();
    let s = score(&data, &r.params).unwrap();
    assert!((s - r.log_likelihood).abs() <= 1e-9 * s.abs());
}

#[test]
fn bitwise_equal_across_thread_counts() {
    let (x, _) = sample(&two_state(), 4000, 5).unwrap();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| fitted(&x, 3, 11))
    };
    let (a, b) = (run(1), run(2));
    assert_eq!(a.params, b.params);
    assert_eq!(a.history, b.history);
    assert_eq!(
        a.restart_log_likelihoods
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>(),
        b.restart_log_likelihoods
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>()
    );
}

#[test]
fn log_space_pass_matches_scaled() {
    let p = two_state();
    let (x, _) = sample(&p, 500, 1).unwrap();
    let data = Data::new(&x, 1, None).unwrap();
    let (gamma, filtered, ll) = posteriors(&data, &p).unwrap();
    let gauss = Gauss::new(&p.covars, 2, 1).unwrap();
    let mut logb = vec![0.0; 1000];
    gauss.log_density(&x, &p.means, &mut logb);
    let (mut g2, mut f2) = (vec![0.0; 1000], vec![0.0; 1000]);
    let lp =
        estep::log_forward_backward(&p.startprob, &p.transmat, 2, &logb, &mut g2, &mut f2, None);
    assert!((lp.ll - ll).abs() < 1e-9 * ll.abs());
    for q in 0..1000 {
        assert!((gamma[q] - g2[q]).abs() < 1e-10 && (filtered[q] - f2[q]).abs() < 1e-10);
    }
    for row in gamma.chunks(2) {
        assert!((row[0] + row[1] - 1.0).abs() < 1e-12);
    }
}

#[test]
fn hard_zeros_fall_back_to_log_space() {
    // State 1 is unreachable and state 0's density underflows at the outlier.
    let p = Params {
        k: 2,
        d: 1,
        startprob: vec![1.0, 0.0],
        transmat: vec![1.0, 0.0, 0.5, 0.5],
        means: vec![0.0, 50.0],
        covars: vec![1e-4, 1.0],
    };
    let x = [0.0, 0.01, 50.0, 0.0];
    let data = Data::new(&x, 1, None).unwrap();
    let mut ws = Work::new(4, 2);
    let gauss = Gauss::new(&p.covars, 2, 1).unwrap();
    ws.emissions(&x, &p.means, &gauss, 2);
    let ok = estep::forward(
        &p.startprob,
        &p.transmat,
        2,
        &ws.b,
        &mut ws.alpha,
        &mut ws.c,
    );
    assert!(!ok, "the scaled pass should hit c_t = 0 here");
    let (g, f, ll) = posteriors(&data, &p).unwrap();
    assert!(ll.is_finite() && ll < -1e6, "{ll}");
    assert!(
        g.chunks(2)
            .all(|r| r[1] == 0.0 && (r[0] - 1.0).abs() < 1e-8)
    );
    assert!(f.chunks(2).all(|r| (r[0] - 1.0).abs() < 1e-12));
}

#[test]
fn stationary_presample_reaches_stationary_law() {
    let a = [0.99, 0.01, 0.03, 0.97];
    let pre = Presample::new(&a, 2);
    let pi = linalg::stationary(&a, 2);
    assert!((pre.start()[0] - pi[0]).abs() < 1e-13);
    let (x, _) = sample(&two_state(), 3000, 4).unwrap();
    let data = Data::new(&x, 1, None).unwrap();
    let mut o = FitOptions::new(2, CovType::Diag);
    o.start = StartMode::Stationary;
    o.n_init = 2;
    let r = fit(&data, &o, None).unwrap();
    assert!(r.monotone);
    let pi = linalg::stationary(&r.params.transmat, 2);
    assert!((pi[0] - r.params.startprob[0]).abs() < 1e-12);
}

#[test]
fn full_covariance_two_features_and_lengths() {
    let p = Params {
        k: 2,
        d: 2,
        startprob: vec![0.6, 0.4],
        transmat: vec![0.98, 0.02, 0.03, 0.97],
        means: vec![0.0, 0.0, 0.5, -0.5],
        covars: vec![1.0, 0.6, 0.6, 1.0, 6.0, -1.0, -1.0, 4.0],
    };
    let (x, states) = sample(&p, 6000, 8).unwrap();
    let lengths = [2500i64, 3500];
    let data = Data::new(&x, 2, Some(&lengths)).unwrap();
    for cov in [
        CovType::Full,
        CovType::Diag,
        CovType::Spherical,
        CovType::Tied,
    ] {
        let mut o = FitOptions::new(2, cov);
        o.n_init = 3;
        let r = fit(&data, &o, None).unwrap();
        assert!(r.monotone, "{cov:?}");
        let (path, _) = decode(&data, &r.params).unwrap();
        let acc = path.iter().zip(&states).filter(|(a, b)| a == b).count() as f64 / 6000.0;
        if cov == CovType::Full {
            assert!(acc > 0.9, "{acc}");
            assert!((r.params.covars[1] - 0.6).abs() < 0.1);
        }
        if cov == CovType::Tied {
            assert_eq!(r.params.covars[..4], r.params.covars[4..]);
        }
    }
}

#[test]
fn bad_input_is_rejected() {
    let o = FitOptions::new(2, CovType::Diag);
    let flat = vec![1.0; 100];
    let data = Data::new(&flat, 1, None).unwrap();
    assert!(
        matches!(fit(&data, &o, None), Err(KernelError::InvalidInput(m)) if m.contains("constant"))
    );
    assert!(Data::new(&[1.0, f64::NAN], 1, None).is_err());
    assert!(Data::new(&[1.0, 2.0], 1, Some(&[1, 2])).is_err());
    let few = [1.0, 2.0, 3.0];
    let data = Data::new(&few, 1, None).unwrap();
    assert!(
        matches!(fit(&data, &o, None), Err(KernelError::InvalidInput(m)) if m.contains("too few"))
    );
    let mut o0 = o.clone();
    o0.k = 0;
    assert!(fit(&data, &o0, None).is_err());
    assert!(CovType::parse("banana").is_err());
}

#[test]
fn ordering_is_stable_under_permutation() {
    let mut p = two_state();
    let (x, _) = sample(&p, 5000, 6).unwrap();
    let data = Data::new(&x, 1, None).unwrap();
    let mut o = FitOptions::new(2, CovType::Diag);
    let a = fit(&data, &o, Some(&p)).unwrap();
    p = Params {
        startprob: vec![0.5, 0.5],
        transmat: vec![0.98, 0.02, 0.01, 0.99],
        means: vec![-0.1, 0.05],
        covars: vec![4.0, 0.5],
        ..p
    };
    let b = fit(&data, &o, Some(&p)).unwrap();
    for (u, v) in a.params.covars.iter().zip(&b.params.covars) {
        assert!((u - v).abs() < 1e-6 * u.abs());
    }
    assert!(a.params.covars[0] < a.params.covars[1]);
    o.order = OrderBy::Mean;
    let c = fit(&data, &o, Some(&p)).unwrap();
    assert!(c.params.means[0] < c.params.means[1]);
}

#[test]
fn collapsing_state_is_reseeded() {
    // Five states on data with two clusters of distinct points and one far
    // outlier: some state collapses and the guard must keep EM finite.
    let (mut x, _) = sample(&two_state(), 400, 12).unwrap();
    x[7] = 40.0;
    let data = Data::new(&x, 1, None).unwrap();
    let mut o = FitOptions::new(5, CovType::Diag);
    o.n_init = 3;
    let r = fit(&data, &o, None).unwrap();
    assert!(r.log_likelihood.is_finite());
    assert!(r.params.covars.iter().all(|v| *v > 0.0));
}

#[test]
fn fused_pass_matches_gamma_pass() {
    let p = Params {
        k: 3,
        d: 2,
        startprob: vec![0.2, 0.3, 0.5],
        transmat: vec![0.9, 0.05, 0.05, 0.1, 0.8, 0.1, 0.02, 0.08, 0.9],
        means: vec![0.0, 0.1, 0.5, -0.5, -1.0, 0.3],
        covars: vec![1.0, 0.3, 0.3, 2.0, 3.0, -0.5, -0.5, 1.0, 0.5, 0.0, 0.0, 0.5],
    };
    let (x, _) = sample(&p, 3000, 21).unwrap();
    let lengths = [1000i64, 2000];
    let data = Data::new(&x, 2, Some(&lengths)).unwrap();
    let gauss = Gauss::new(&p.covars, 3, 2).unwrap();
    let mut ws = Work::new(3000, 3);
    let pre = Presample::new(&p.transmat, 3);
    for pre in [None, Some(&pre)] {
        let start = pre.map_or(&p.startprob[..], |s| s.start());
        let f = fused::e_step(
            &data,
            start,
            &p.transmat,
            &p.means,
            &gauss,
            &mut ws,
            pre,
            fused::Want::Stats,
            None,
        )
        .unwrap();
        let mut gamma = vec![0.0; 9000];
        let e = e_step(&data, &p, &mut ws, &mut gamma, pre).unwrap();
        assert!((f.ll - e.ll).abs() < 1e-10 * e.ll.abs());
        for (u, v) in f.xi.iter().zip(&e.xi) {
            assert!((u - v).abs() < 1e-9 * v.abs().max(1.0));
        }
        for (u, v) in f.start.iter().zip(&e.start) {
            assert!((u - v).abs() < 1e-12);
        }
        let nk: Vec<f64> = (0..3)
            .map(|s| gamma.iter().skip(s).step_by(3).sum())
            .collect();
        for (u, v) in f.nk.iter().zip(&nk) {
            assert!((u - v).abs() < 1e-9 * v);
        }
    }
}

fn model(k: usize, d: usize) -> Params {
    let mut covars = vec![0.0; k * d * d];
    for s in 0..k {
        for i in 0..d {
            for j in 0..d {
                covars[s * d * d + i * d + j] = if i == j { 0.5 * (s + 1) as f64 } else { 0.1 };
            }
        }
    }
    Params {
        k,
        d,
        startprob: vec![1.0 / k as f64; k],
        transmat: (0..k * k)
            .map(|q| match (k, q / k == q % k) {
                (1, _) => 1.0,
                (_, true) => 0.9,
                _ => 0.1 / (k - 1) as f64,
            })
            .collect(),
        means: (0..k * d)
            .map(|q| 0.7 * (q / d) as f64 - 0.2 * (q % d) as f64)
            .collect(),
        covars,
    }
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn avx2_and_portable_builds_agree_bitwise() {
    // Without AVX2 both calls run the portable build and agree trivially.
    for k in 1..=7 {
        for d in 1..=3 {
            let p = model(k, d);
            let (x, _) = sample(&p, 1000, 40 + k as u64).unwrap();
            let lengths = [300i64, 700];
            let data = Data::new(&x, d, Some(&lengths)).unwrap();
            let gauss = Gauss::new(&p.covars, k, d).unwrap();
            let pre = Presample::new(&p.transmat, k);
            for pre in [None, Some(&pre)] {
                let start = pre.map_or(&p.startprob[..], |s| s.start());
                let mut out = Vec::new();
                for simd in [false, true] {
                    let mut ws = Work::new(1000, k);
                    let mut gamma = vec![0.0; 1000 * k];
                    let args = (&data, start, &p.transmat[..], &p.means[..], &gauss);
                    let st = if simd {
                        simd::e_step_avx2(
                            args.0,
                            args.1,
                            args.2,
                            args.3,
                            args.4,
                            &mut ws,
                            pre,
                            fused::Want::Stats,
                            Some(&mut gamma),
                        )
                    } else {
                        fused::e_step_portable::<false>(
                            args.0,
                            args.1,
                            args.2,
                            args.3,
                            args.4,
                            &mut ws,
                            pre,
                            fused::Want::Stats,
                            Some(&mut gamma),
                        )
                    }
                    .unwrap();
                    let mut all = vec![st.ll];
                    for v in [&st.xi, &st.start, &st.nk, &st.sx, &st.ss, &gamma, &ws.alpha] {
                        all.extend_from_slice(v);
                    }
                    out.push(bits(&all));
                }
                assert_eq!(out[0], out[1], "k={k} d={d}");
            }
        }
    }
}

#[test]
fn last_e_step_skips_the_backward_pass() {
    let p = model(3, 2);
    let (x, _) = sample(&p, 2000, 8).unwrap();
    let data = Data::new(&x, 2, None).unwrap();
    let gauss = Gauss::new(&p.covars, 3, 2).unwrap();
    let mut ws = Work::new(2000, 3);
    let mut run = |want| {
        fused::e_step(
            &data,
            &p.startprob,
            &p.transmat,
            &p.means,
            &gauss,
            &mut ws,
            None,
            want,
            None,
        )
        .unwrap()
    };
    let full = run(fused::Want::Stats);
    let stop = |_: f64| true;
    let go = |_: f64| false;
    let short = run(fused::Want::StatsUnless(&stop));
    let long = run(fused::Want::StatsUnless(&go));
    assert!(full.has_stats && long.has_stats && !short.has_stats);
    assert_eq!(full.ll.to_bits(), short.ll.to_bits());
    assert_eq!(bits(&full.nk), bits(&long.nk));
    assert_eq!(bits(&full.xi), bits(&long.xi));
    assert!(short.nk.iter().all(|v| *v == 0.0));
}
