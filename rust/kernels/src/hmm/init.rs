//! Starting points for EM: k-means++ (default) and hmmlearn-style draws.
#![allow(clippy::needless_range_loop)] // index loops read like the maths here

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

/// One standard normal draw (Box-Muller).
pub fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Gamma(shape, 1) draw (Marsaglia-Tsang; boosted for shape < 1).
pub fn gamma(rng: &mut ChaCha8Rng, shape: f64) -> f64 {
    if shape < 1.0 {
        let u: f64 = 1.0 - rng.random::<f64>();
        return gamma(rng, shape + 1.0) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u: f64 = 1.0 - rng.random::<f64>();
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// Dirichlet(alpha, ..., alpha) draw of length k, floored away from exact zeros.
pub fn dirichlet(rng: &mut ChaCha8Rng, k: usize, alpha: f64) -> Vec<f64> {
    let mut g: Vec<f64> = (0..k).map(|_| gamma(rng, alpha).max(1e-300)).collect();
    let s: f64 = g.iter().sum();
    g.iter_mut().for_each(|v| *v /= s);
    g
}

fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// k-means++ seeding plus up to `lloyd` Lloyd iterations on rows of `z` (n x d).
/// Returns k centres (k x d).
pub fn kmeans(
    z: &[f64],
    n: usize,
    d: usize,
    k: usize,
    lloyd: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<f64> {
    let mut centres = Vec::with_capacity(k * d);
    let first = rng.random_range(0..n);
    centres.extend_from_slice(&z[first * d..(first + 1) * d]);
    let mut dist: Vec<f64> = (0..n)
        .map(|t| sq_dist(&z[t * d..(t + 1) * d], &centres[..d]))
        .collect();
    for c in 1..k {
        let total: f64 = dist.iter().sum();
        let pick = if total > 0.0 {
            let target = rng.random::<f64>() * total;
            let mut acc = 0.0;
            let mut idx = n - 1;
            for (t, &dt) in dist.iter().enumerate() {
                acc += dt;
                if acc >= target && dt > 0.0 {
                    idx = t;
                    break;
                }
            }
            idx
        } else {
            rng.random_range(0..n)
        };
        centres.extend_from_slice(&z[pick * d..(pick + 1) * d]);
        let new = &centres[c * d..(c + 1) * d];
        for t in 0..n {
            let dd = sq_dist(&z[t * d..(t + 1) * d], new);
            if dd < dist[t] {
                dist[t] = dd;
            }
        }
    }
    let mut label = vec![usize::MAX; n];
    let mut sums = vec![0.0; k * d];
    let mut counts = vec![0usize; k];
    for _ in 0..lloyd {
        let mut changed = false;
        sums.iter_mut().for_each(|v| *v = 0.0);
        counts.iter_mut().for_each(|v| *v = 0);
        for t in 0..n {
            let row = &z[t * d..(t + 1) * d];
            let mut best = f64::INFINITY;
            let mut arg = 0;
            for c in 0..k {
                let dd = sq_dist(row, &centres[c * d..(c + 1) * d]);
                if dd < best {
                    best = dd;
                    arg = c;
                }
            }
            if label[t] != arg {
                label[t] = arg;
                changed = true;
            }
            counts[arg] += 1;
            for i in 0..d {
                sums[arg * d + i] += row[i];
            }
        }
        for c in 0..k {
            if counts[c] > 0 {
                for i in 0..d {
                    centres[c * d + i] = sums[c * d + i] / counts[c] as f64;
                }
            }
        }
        if !changed {
            break;
        }
    }
    centres
}
