//! Sparse mean-reverting portfolios (d'Aspremont 2011; docs/compute.md §3c).
//!
//! Minimise the Box–Tiao predictability `nu(w) = w' M w / w' G w` subject to
//! `card(w) <= k`, with `M = B G B'` from a VAR(1) and `G` the lag-0 covariance.
//! Matrices are row-major `n x n`; weights are normalised to `w' G w = 1`.

// `!(x > 0.0)` is used on purpose: it also rejects NaN.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use rayon::prelude::*;

use super::linalg::gen_eigh;
use crate::error::{Result, invalid};

/// One selected portfolio: support (ascending), predictability and weights (length n).
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub support: Vec<usize>,
    pub nu: f64,
    pub weights: Vec<f64>,
}

fn check(m: &[f64], g: &[f64], n: usize, k: usize) -> Result<()> {
    if n == 0 || m.len() != n * n || g.len() != n * n {
        return Err(invalid("M and G must both be n x n"));
    }
    if m.iter().chain(g).any(|v| !v.is_finite()) {
        return Err(invalid("M and G must be finite"));
    }
    if k == 0 || k > n {
        return Err(invalid(format!("k must be between 1 and n = {n}, got {k}")));
    }
    Ok(())
}

/// Predictability of a full-length weight vector.
pub fn nu(m: &[f64], g: &[f64], n: usize, w: &[f64]) -> f64 {
    let quad = |a: &[f64]| {
        let mut s = 0.0;
        for i in 0..n {
            if w[i] == 0.0 {
                continue;
            }
            let row: f64 = (0..n).map(|j| a[i * n + j] * w[j]).sum();
            s += w[i] * row;
        }
        s
    };
    quad(m) / quad(g)
}

fn sub(a: &[f64], n: usize, s: &[usize]) -> Vec<f64> {
    let k = s.len();
    let mut out = vec![0.0; k * k];
    for (r, &i) in s.iter().enumerate() {
        for (c, &j) in s.iter().enumerate() {
            out[r * k + c] = a[i * n + j];
        }
    }
    out
}

/// Smallest generalised eigenpair on a support; weights scattered to length n
/// with a sign convention (largest |w_i| positive).
pub fn on_support(m: &[f64], g: &[f64], n: usize, support: &[usize]) -> Result<Selection> {
    let k = support.len();
    let (vals, vecs) = gen_eigh(&sub(m, n, support), &sub(g, n, support), k)?;
    let mut w = vec![0.0; n];
    let mut big = 0.0f64;
    for (r, &i) in support.iter().enumerate() {
        w[i] = vecs[r * k];
        if w[i].abs() > big.abs() {
            big = w[i];
        }
    }
    if big < 0.0 {
        w.iter_mut().for_each(|v| *v = -*v);
    }
    let mut support = support.to_vec();
    support.sort_unstable();
    Ok(Selection {
        support,
        nu: vals[0],
        weights: w,
    })
}

fn better(a: &Selection, b: &Selection) -> bool {
    match a.nu.total_cmp(&b.nu) {
        std::cmp::Ordering::Less => true,
        std::cmp::Ordering::Greater => false,
        std::cmp::Ordering::Equal => a.support < b.support,
    }
}

fn best_of(items: Vec<Result<Selection>>) -> Result<Option<Selection>> {
    let mut best: Option<Selection> = None;
    for it in items {
        let s = it?;
        if best.as_ref().is_none_or(|b| better(&s, b)) {
            best = Some(s);
        }
    }
    Ok(best)
}

/// Full Box–Tiao decomposition (k = n): ascending eigenvalues and G-normalised
/// eigenvectors as columns (row-major n x n).
pub fn box_tiao(m: &[f64], g: &[f64], n: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    check(m, g, n, n)?;
    gen_eigh(m, g, n)
}

/// Greedy forward selection; returns the path for k = 1..=k_max.
pub fn greedy(m: &[f64], g: &[f64], n: usize, k_max: usize) -> Result<Vec<Selection>> {
    check(m, g, n, k_max)?;
    let first = (0..n)
        .min_by(|&i, &j| (m[i * n + i] / g[i * n + i]).total_cmp(&(m[j * n + j] / g[j * n + j])))
        .unwrap_or(0);
    let mut path = vec![on_support(m, g, n, &[first])?];
    while path.len() < k_max {
        let cur = &path[path.len() - 1].support;
        let cands: Vec<Result<Selection>> = (0..n)
            .into_par_iter()
            .filter(|i| !cur.contains(i))
            .map(|i| {
                let mut s = cur.clone();
                s.push(i);
                on_support(m, g, n, &s)
            })
            .collect();
        match best_of(cands)? {
            Some(b) => path.push(b),
            None => break,
        }
    }
    Ok(path)
}

/// `on_support` for a caller-given support: checks it is 1..=n distinct indices below n.
pub fn polish(m: &[f64], g: &[f64], n: usize, support: &[usize]) -> Result<Selection> {
    check(m, g, n, support.len())?;
    if let Some(&i) = support.iter().find(|&&i| i >= n) {
        return Err(invalid(format!("support index {i} is not below n = {n}")));
    }
    let mut sorted = support.to_vec();
    sorted.sort_unstable();
    if sorted.windows(2).any(|p| p[0] == p[1]) {
        return Err(invalid("support indices must be distinct"));
    }
    on_support(m, g, n, &sorted)
}

/// Largest relative decrease of nu that still counts as no improvement in `swaps`.
pub const SWAP_RTOL: f64 = 1e-12;

/// Local search by 1-in-1-out swaps from a starting support (best improvement).
/// Each round evaluates every swap of one member for one non-member and takes the
/// lowest nu (ties by support); it stops when that is not below the current nu by
/// more than `SWAP_RTOL` relative, or after `max_swaps` swaps. Returns the polished
/// selection and the number of swaps made.
pub fn swaps(
    m: &[f64],
    g: &[f64],
    n: usize,
    support: &[usize],
    max_swaps: usize,
) -> Result<(Selection, usize)> {
    let mut cur = polish(m, g, n, support)?;
    let mut made = 0;
    while made < max_swaps {
        let outside: Vec<usize> = (0..n)
            .filter(|i| cur.support.binary_search(i).is_err())
            .collect();
        let k = cur.support.len();
        let cands: Vec<Result<Selection>> = (0..k * outside.len())
            .into_par_iter()
            .map(|c| {
                let mut s = cur.support.clone();
                s[c / outside.len()] = outside[c % outside.len()];
                on_support(m, g, n, &s)
            })
            .collect();
        match best_of(cands)? {
            Some(b) if cur.nu - b.nu > SWAP_RTOL * cur.nu.abs() => {
                cur = b;
                made += 1;
            }
            _ => break,
        }
    }
    Ok((cur, made))
}

fn binom(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// Largest number of supports the brute force will try.
pub const MAX_SUBSETS: f64 = 1e6;

/// Exhaustive search over every support of size k; returns the optimum and the
/// number of supports tried. Deterministic whatever the thread count.
pub fn exhaustive(m: &[f64], g: &[f64], n: usize, k: usize) -> Result<(Selection, usize)> {
    check(m, g, n, k)?;
    let total = binom(n, k);
    if total > MAX_SUBSETS {
        return Err(invalid(format!(
            "exhaustive search over C({n}, {k}) = {total:.3e} supports is too large \
             (limit {MAX_SUBSETS:.0e}); use method=\"greedy\" or \"truncated_power\""
        )));
    }
    let results: Vec<Result<Option<Selection>>> = (0..=n - k)
        .into_par_iter()
        .map(|i0| {
            let mut best: Option<Selection> = None;
            let mut idx: Vec<usize> = (0..k).map(|j| i0 + j).collect();
            loop {
                let s = on_support(m, g, n, &idx)?;
                if best.as_ref().is_none_or(|b| better(&s, b)) {
                    best = Some(s);
                }
                // next combination of positions 1..k over (i0, n)
                let mut p = k;
                loop {
                    if p <= 1 {
                        return Ok(best);
                    }
                    p -= 1;
                    if idx[p] < n - k + p {
                        idx[p] += 1;
                        for q in p + 1..k {
                            idx[q] = idx[q - 1] + 1;
                        }
                        break;
                    }
                }
            }
        })
        .collect();
    let mut best: Option<Selection> = None;
    for r in results {
        if let Some(s) = r? {
            if best.as_ref().is_none_or(|b| better(&s, b)) {
                best = Some(s);
            }
        }
    }
    let best = best.ok_or_else(|| invalid("no support to search"))?;
    Ok((best, total.round() as usize))
}

fn top_k(w: &[f64], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..w.len()).collect();
    idx.sort_by(|&i, &j| w[j].abs().total_cmp(&w[i].abs()).then(i.cmp(&j)));
    let mut s: Vec<usize> = idx[..k].to_vec();
    s.sort_unstable();
    s
}

fn g_normalise(g: &[f64], n: usize, w: &mut [f64]) {
    let mut q = 0.0;
    for i in 0..n {
        if w[i] != 0.0 {
            q += w[i] * (0..n).map(|j| g[i * n + j] * w[j]).sum::<f64>();
        }
    }
    if q > 0.0 {
        let s = 1.0 / q.sqrt();
        w.iter_mut().for_each(|v| *v *= s);
    }
}

fn matvec(a: &[f64], n: usize, w: &[f64], out: &mut [f64]) {
    for i in 0..n {
        out[i] = (0..n).map(|j| a[i * n + j] * w[j]).sum();
    }
}

/// Truncated generalised power (Rayleigh flow) from each start, each polished by
/// the exact eigenproblem on its final support; the best polished result wins.
/// Returns the selection and the total number of iterations.
pub fn truncated_power(
    m: &[f64],
    g: &[f64],
    n: usize,
    k: usize,
    starts: &[Vec<f64>],
    max_iter: usize,
) -> Result<(Selection, usize)> {
    check(m, g, n, k)?;
    if starts.is_empty() || starts.iter().any(|s| s.len() != n) {
        return Err(invalid(
            "truncated power needs at least one start of length n",
        ));
    }
    // Step size from a Gershgorin bound on the largest eigenvalue of G.
    let gmax = (0..n)
        .map(|i| (0..n).map(|j| g[i * n + j].abs()).sum::<f64>())
        .fold(0.0, f64::max);
    let eta = 1.0 / gmax.max(f64::MIN_POSITIVE);
    let mut best: Option<Selection> = None;
    let mut iters = 0;
    let (mut mw, mut gw) = (vec![0.0; n], vec![0.0; n]);
    for start in starts {
        let mut supp = top_k(start, k);
        let mut w = vec![0.0; n];
        for &i in &supp {
            w[i] = start[i];
        }
        if w.iter().all(|v| *v == 0.0) {
            continue;
        }
        g_normalise(g, n, &mut w);
        for _ in 0..max_iter {
            iters += 1;
            matvec(m, n, &w, &mut mw);
            matvec(g, n, &w, &mut gw);
            let num: f64 = w.iter().zip(&mw).map(|(a, b)| a * b).sum();
            let den: f64 = w.iter().zip(&gw).map(|(a, b)| a * b).sum();
            let rho = num / den;
            let step: Vec<f64> = (0..n).map(|i| w[i] - eta * (mw[i] - rho * gw[i])).collect();
            let new_supp = top_k(&step, k);
            let mut nw = vec![0.0; n];
            for &i in &new_supp {
                nw[i] = step[i];
            }
            g_normalise(g, n, &mut nw);
            let diff: f64 = nw.iter().zip(&w).map(|(a, b)| (a - b).abs()).sum();
            let same = new_supp == supp;
            w = nw;
            supp = new_supp;
            if same && diff < 1e-10 {
                break;
            }
        }
        let polished = on_support(m, g, n, &supp)?;
        if best.as_ref().is_none_or(|b| better(&polished, b)) {
            best = Some(polished);
        }
    }
    let best = best.ok_or_else(|| invalid("every start of the truncated power was zero"))?;
    Ok((best, iters))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
        let mut state = seed;
        let mut r = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64) / ((1u64 << 53) as f64) - 0.5
        };
        let a: Vec<f64> = (0..n * n).map(|_| r()).collect();
        let b: Vec<f64> = (0..n * n).map(|_| 0.3 * r()).collect();
        let mut g = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                g[i * n + j] = (0..n).map(|k| a[i * n + k] * a[j * n + k]).sum::<f64>();
            }
            g[i * n + i] += 0.5;
        }
        // M = B G B'
        let mut bg = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                bg[i * n + j] = (0..n).map(|k| b[i * n + k] * g[k * n + j]).sum();
            }
        }
        let mut m = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                m[i * n + j] = (0..n).map(|k| bg[i * n + k] * b[j * n + k]).sum();
            }
        }
        (m, g)
    }

    #[test]
    fn exhaustive_is_never_beaten() {
        let n = 9;
        let (m, g) = problem(n, 11);
        for k in 1..=4 {
            let (ex, count) = exhaustive(&m, &g, n, k).unwrap();
            assert_eq!(count, binom(n, k).round() as usize);
            let gr = greedy(&m, &g, n, k).unwrap();
            assert!(gr[k - 1].nu >= ex.nu - 1e-12);
            let (tp, _) = truncated_power(&m, &g, n, k, &[gr[k - 1].weights.clone()], 200).unwrap();
            assert!(tp.nu >= ex.nu - 1e-12);
            assert!(tp.nu <= gr[k - 1].nu + 1e-12);
            assert!((nu(&m, &g, n, &ex.weights) - ex.nu).abs() < 1e-10);
        }
    }

    #[test]
    fn full_support_is_box_tiao_minimum() {
        let n = 6;
        let (m, g) = problem(n, 5);
        let (vals, _) = box_tiao(&m, &g, n).unwrap();
        let (ex, _) = exhaustive(&m, &g, n, n).unwrap();
        assert!((vals[0] - ex.nu).abs() < 1e-12);
    }

    #[test]
    fn k_above_n_is_rejected() {
        let (m, g) = problem(3, 1);
        assert!(greedy(&m, &g, 3, 4).is_err());
    }

    #[test]
    fn swaps_reach_a_local_optimum_never_worse_than_the_start() {
        for (n, seed) in [(8, 3), (10, 17), (12, 29)] {
            let (m, g) = problem(n, seed);
            for k in 1..=4 {
                let start = greedy(&m, &g, n, k).unwrap().pop().unwrap();
                let (sw, made) = swaps(&m, &g, n, &start.support, 1000).unwrap();
                let (ex, _) = exhaustive(&m, &g, n, k).unwrap();
                assert!(sw.nu <= start.nu);
                assert!(sw.nu >= ex.nu - 1e-12);
                assert_eq!(made == 0, sw.support == start.support);
                assert!((nu(&m, &g, n, &sw.weights) - sw.nu).abs() < 1e-10);
                // no single swap improves the result
                for out in 0..k {
                    for inn in (0..n).filter(|i| !sw.support.contains(i)) {
                        let mut s = sw.support.clone();
                        s[out] = inn;
                        assert!(on_support(&m, &g, n, &s).unwrap().nu >= sw.nu * (1.0 - 1e-12));
                    }
                }
            }
        }
    }

    #[test]
    fn swaps_from_a_bad_start_improve_and_zero_cap_only_polishes() {
        let n = 9;
        let (m, g) = problem(n, 11);
        let k = 3;
        let (ex, _) = exhaustive(&m, &g, n, k).unwrap();
        // the worst support of size k as the start
        let mut worst = on_support(&m, &g, n, &[0, 1, 2]).unwrap();
        for a in 0..n {
            for b in a + 1..n {
                for c in b + 1..n {
                    let s = on_support(&m, &g, n, &[a, b, c]).unwrap();
                    if s.nu > worst.nu {
                        worst = s;
                    }
                }
            }
        }
        let (none, zero) = swaps(&m, &g, n, &worst.support, 0).unwrap();
        assert_eq!(zero, 0);
        assert_eq!(none, worst);
        let (sw, made) = swaps(&m, &g, n, &worst.support, 1000).unwrap();
        assert!(made >= 1);
        assert!(sw.nu < worst.nu);
        assert!(sw.nu >= ex.nu - 1e-12);
    }

    #[test]
    fn swaps_reject_bad_supports() {
        let (m, g) = problem(4, 1);
        assert!(swaps(&m, &g, 4, &[], 10).is_err());
        assert!(swaps(&m, &g, 4, &[0, 4], 10).is_err());
        assert!(swaps(&m, &g, 4, &[1, 1], 10).is_err());
        assert!(swaps(&m, &g, 4, &[0, 1, 2, 3, 0], 10).is_err());
        let (full, made) = swaps(&m, &g, 4, &[3, 2, 1, 0], 10).unwrap();
        assert_eq!((full.support, made), (vec![0, 1, 2, 3], 0));
    }
}
