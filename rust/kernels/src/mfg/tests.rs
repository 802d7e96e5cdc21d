use super::*;

fn problem_a() -> (Grid, Problem, Vec<f64>) {
    let grid = Grid {
        a: -1.5,
        b: 3.0,
        n: 91,
        t_end: 1.0,
        nt: 100,
    };
    let p = Problem {
        kappa: 0.2,
        eps: 0.005,
        phi: 0.1,
        g2: 2.0,
        coupling: Coupling::Controls { alpha: 0.5 },
    };
    let m0 = (0..grid.n)
        .map(|i| (-(grid.x(i) - 1.0).powi(2) / (2.0 * 0.04)).exp())
        .collect();
    (grid, p, m0)
}

fn picard() -> Options {
    Options {
        method: Method::Picard { damping: 0.5 },
        tol: 1e-10,
        max_iter: 500,
    }
}

fn run(grid: &Grid, p: &Problem, m0: &[f64], init: f64, opts: &Options) -> Solution {
    let init = vec![init; field_len(grid, &p.coupling)];
    solve(grid, p, m0, &init, opts, &mut |_, _| true).expect("solve")
}

#[test]
fn mass_is_conserved_and_density_stays_nonnegative() {
    let (grid, p, m0) = problem_a();
    let s = run(&grid, &p, &m0, 0.0, &picard());
    assert!(s.converged);
    let dx = grid.dx();
    for row in s.m.chunks_exact(grid.n) {
        let mass: f64 = row.iter().sum::<f64>() * dx;
        assert!((mass - 1.0).abs() < 1e-12, "mass {mass}");
        assert!(row.iter().all(|v| *v >= 0.0));
    }
    assert!(s.mass_error < 1e-12);
    assert!(s.min_density >= -1e-14);
}

#[test]
fn hjb_and_fp_are_exactly_dual() {
    // <u^n, m^n> = <u^{n+1}, m^{n+1}> + dt <r^n, m^{n+1}>, r = -κν² + F, summed over n.
    let (grid, p, m0) = problem_a();
    let opts = Options {
        max_iter: 3,
        ..picard()
    };
    let s = run(&grid, &p, &m0, -0.5, &opts);
    let (n, nt, dx, dt) = (grid.n, grid.nt, grid.dx(), grid.dt());
    let Coupling::Controls { alpha } = p.coupling else {
        unreachable!()
    };
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>() * dx;
    let lhs = dot(&s.u[..n], &s.m[..n]);
    let mut rhs = dot(&s.u[nt * n..], &s.m[nt * n..]);
    for k in 0..nt {
        let r: Vec<f64> = (0..n)
            .map(|i| {
                let (x, v) = (grid.x(i), s.nu[k * n + i]);
                -p.kappa * v * v - p.phi * x * x + alpha * s.field[k] * x
            })
            .collect();
        rhs += dt * dot(&r, &s.m[(k + 1) * n..(k + 2) * n]);
    }
    assert!(
        (lhs - rhs).abs() < 1e-11 * lhs.abs().max(1.0),
        "{lhs} vs {rhs}"
    );
}

#[test]
fn matches_the_closed_form_terminal_mean_roughly() {
    let (grid, p, m0) = problem_a();
    let s = run(&grid, &p, &m0, 0.0, &picard());
    // E(T) = 0.043484 and E'(0) = -1.835295 (docs/compute.md §5); first order on a coarse grid.
    assert!(
        (s.mean[grid.nt] - 0.043484).abs() < 0.03,
        "{}",
        s.mean[grid.nt]
    );
    assert!((s.realised[0] + 1.835295).abs() < 0.15, "{}", s.realised[0]);
    assert!(s.iterations < 100);
}

#[test]
fn initial_guess_and_method_do_not_change_the_limit() {
    let (mut grid, p, _) = problem_a();
    grid.n = 31;
    grid.nt = 30;
    let m0: Vec<f64> = (0..grid.n)
        .map(|i| (-(grid.x(i) - 1.0).powi(2) / (2.0 * 0.04)).exp())
        .collect();
    let a = run(&grid, &p, &m0, 0.0, &picard());
    let b = run(&grid, &p, &m0, -1.0, &picard());
    let max_diff = |x: &[f64], y: &[f64]| {
        x.iter()
            .zip(y)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
    };
    assert!(max_diff(&a.field, &b.field) < 1e-8);
    let fp = Options {
        method: Method::FictitiousPlay,
        tol: 1e-4,
        max_iter: 100_000,
    };
    let c = run(&grid, &p, &m0, 0.0, &fp);
    assert!(c.converged);
    assert!(max_diff(&a.field, &c.field) < 1e-3);
}

#[test]
fn anderson_reaches_the_picard_limit_in_fewer_iterations() {
    let (grid, p, m0) = problem_a();
    let a = run(&grid, &p, &m0, 0.0, &picard());
    let opts = Options {
        method: Method::Anderson {
            damping: 0.5,
            depth: 5,
        },
        ..picard()
    };
    let b = run(&grid, &p, &m0, 0.0, &opts);
    assert!(b.converged);
    assert!(
        b.iterations < a.iterations,
        "{} vs {}",
        b.iterations,
        a.iterations
    );
    let diff = a
        .field
        .iter()
        .zip(&b.field)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    assert!(diff < 1e-8, "{diff}");
}

#[test]
fn mean_coupling_with_unit_weights_keeps_the_mean() {
    // κ_m = κ_T = 1: attraction to the population mean leaves the mean where it started.
    let grid = Grid {
        a: -2.0,
        b: 3.0,
        n: 101,
        t_end: 1.0,
        nt: 100,
    };
    let p = Problem {
        kappa: 0.5,
        eps: 0.045,
        phi: 0.5,
        g2: 0.5,
        coupling: Coupling::Mean {
            kappa_m: 1.0,
            kappa_t: 1.0,
        },
    };
    let m0: Vec<f64> = (0..grid.n)
        .map(|i| (-(grid.x(i) - 0.5).powi(2) / (2.0 * 0.04)).exp())
        .collect();
    let s = run(&grid, &p, &m0, 0.0, &picard());
    assert!(s.converged);
    for e in &s.mean {
        assert!((e - s.mean[0]).abs() < 5e-3, "{e} vs {}", s.mean[0]);
    }
}

#[test]
fn rejects_bad_input_and_honours_cancel() {
    let (grid, p, m0) = problem_a();
    let init = vec![0.0; grid.nt];
    let bad = Grid { b: -2.0, ..grid };
    assert!(matches!(
        solve(&bad, &p, &m0, &init, &picard(), &mut |_, _| true),
        Err(KernelError::InvalidInput(_))
    ));
    let mut neg = m0.clone();
    neg[3] = -1.0;
    assert!(solve(&grid, &p, &neg, &init, &picard(), &mut |_, _| true).is_err());
    assert!(solve(&grid, &p, &m0, &init[1..], &picard(), &mut |_, _| true).is_err());
    let zero_k = Problem { kappa: 0.0, ..p };
    assert!(solve(&grid, &zero_k, &m0, &init, &picard(), &mut |_, _| true).is_err());
    let mut calls = 0;
    let out = solve(&grid, &p, &m0, &init, &picard(), &mut |k, _| {
        calls = k;
        k < 3
    });
    assert_eq!(out.unwrap_err(), KernelError::Cancelled);
    assert_eq!(calls, 3);
}

#[test]
fn constant_control_translates_the_density() {
    // Upwind transport of a Gaussian at speed 0.5: the mean moves exactly (away from the
    // edges); the variance grows by 2εt plus first-order numerical diffusion.
    let grid = Grid {
        a: -1.0,
        b: 2.0,
        n: 301,
        t_end: 1.0,
        nt: 200,
    };
    let eps = 0.005;
    let nu = vec![0.5; grid.nt * grid.n];
    let m0: Vec<f64> = (0..grid.n)
        .map(|i| (-(grid.x(i)).powi(2) / (2.0 * 0.01)).exp())
        .collect();
    let out = fokker_planck(&grid, eps, &nu, &m0).expect("transport");
    assert!(out.mass_error < 1e-12 && out.clipped == 0);
    let (n, dx) = (grid.n, grid.dx());
    let moments = |row: &[f64]| {
        let e: f64 = row
            .iter()
            .enumerate()
            .map(|(i, m)| grid.x(i) * m)
            .sum::<f64>()
            * dx;
        let v: f64 = row
            .iter()
            .enumerate()
            .map(|(i, m)| (grid.x(i) - e).powi(2) * m)
            .sum::<f64>()
            * dx;
        (e, v)
    };
    let (e0, v0) = moments(&out.m[..n]);
    let (e1, v1) = moments(&out.m[grid.nt * n..]);
    assert!((e1 - e0 - 0.5).abs() < 1e-10, "{e0} -> {e1}");
    let numerical = 0.5 * dx + 0.25 * grid.dt();
    assert!(
        (v1 - v0 - 2.0 * eps).abs() <= numerical * 1.05,
        "{v0} -> {v1}"
    );
}

#[test]
fn factors_are_reused_for_the_transposed_solve() {
    // The FP sweep of the coupled solver and a standalone transport with the same
    // control give the same density.
    let (grid, p, m0) = problem_a();
    let s = run(&grid, &p, &m0, 0.0, &picard());
    let t = fokker_planck(&grid, p.eps, &s.nu, &m0).expect("transport");
    let diff =
        s.m.iter()
            .zip(&t.m)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
    assert!(diff < 1e-12, "{diff}");
}
