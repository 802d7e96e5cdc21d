//! Anderson acceleration (type II, damped) of the fixed point z = T(z).

use std::collections::VecDeque;

/// Mixes the last `depth` iterates: with `f_k = T(z_k) - z_k`, finds `γ` minimising
/// `‖f_k - ΔF γ‖₂` and sets `z_{k+1} = z_k + β f_k - (ΔZ + β ΔF) γ`, where ΔZ and ΔF hold
/// successive differences of z and f. With no history (or a singular least-squares
/// system, which also clears it) this is the damped Picard step `z + β f`.
#[derive(Debug, Clone)]
pub struct Anderson {
    depth: usize,
    beta: f64,
    dz: VecDeque<Vec<f64>>,
    df: VecDeque<Vec<f64>>,
    last: Option<(Vec<f64>, Vec<f64>)>,
}

impl Anderson {
    pub fn new(depth: usize, beta: f64) -> Self {
        Self {
            depth,
            beta,
            dz: VecDeque::new(),
            df: VecDeque::new(),
            last: None,
        }
    }

    /// Replaces `z` (= z_k) by z_{k+1}, given the residual `f` = T(z_k) - z_k.
    pub fn step(&mut self, z: &mut [f64], f: &[f64]) {
        if let Some((pz, pf)) = self.last.take() {
            let dz = z.iter().zip(&pz).map(|(a, b)| a - b).collect();
            let df = f.iter().zip(&pf).map(|(a, b)| a - b).collect();
            self.dz.push_back(dz);
            self.df.push_back(df);
            if self.dz.len() > self.depth {
                self.dz.pop_front();
                self.df.pop_front();
            }
        }
        self.last = Some((z.to_vec(), f.to_vec()));
        let gamma = if self.df.is_empty() {
            None
        } else {
            self.least_squares(f)
        };
        let Some(gamma) = gamma else {
            self.dz.clear();
            self.df.clear();
            for (zi, fi) in z.iter_mut().zip(f) {
                *zi += self.beta * fi;
            }
            return;
        };
        for (i, zi) in z.iter_mut().enumerate() {
            let mut mix = 0.0;
            for (j, g) in gamma.iter().enumerate() {
                mix += g * (self.dz[j][i] + self.beta * self.df[j][i]);
            }
            *zi += self.beta * f[i] - mix;
        }
    }

    /// `argmin ‖f - ΔF γ‖` by the normal equations with a tiny ridge; None if singular.
    fn least_squares(&self, f: &[f64]) -> Option<Vec<f64>> {
        let m = self.df.len();
        let w = m + 1; // the augmented m x (m + 1) system, row-major
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let mut a = vec![0.0; m * w];
        for (i, di) in self.df.iter().enumerate() {
            for (j, dj) in self.df.iter().enumerate().take(i + 1) {
                let v = dot(di, dj);
                a[i * w + j] = v;
                a[j * w + i] = v;
            }
            a[i * w + m] = dot(di, f);
        }
        let scale = (0..m).map(|i| a[i * w + i]).fold(0.0, f64::max);
        if !(scale > 0.0 && scale.is_finite()) {
            return None;
        }
        for i in 0..m {
            a[i * w + i] += 1e-12 * scale;
        }
        // Gaussian elimination with partial pivoting.
        for col in 0..m {
            let piv =
                (col..m).max_by(|&r, &s| a[r * w + col].abs().total_cmp(&a[s * w + col].abs()))?;
            if a[piv * w + col].abs() <= 1e-14 * scale {
                return None;
            }
            for c in 0..w {
                a.swap(col * w + c, piv * w + c);
            }
            for r in col + 1..m {
                let factor = a[r * w + col] / a[col * w + col];
                for c in col..w {
                    a[r * w + c] -= factor * a[col * w + c];
                }
            }
        }
        let mut gamma = vec![0.0; m];
        for i in (0..m).rev() {
            let tail: f64 = (i + 1..m).map(|j| a[i * w + j] * gamma[j]).sum();
            gamma[i] = (a[i * w + m] - tail) / a[i * w + i];
        }
        gamma.iter().all(|g| g.is_finite()).then_some(gamma)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_a_linear_fixed_point_in_few_steps() {
        // T(z) = A z + c with a non-normal contraction: Anderson converges in about
        // dim + 1 steps, plain damped iteration takes far longer.
        let n = 4;
        let t = |z: &[f64]| -> Vec<f64> {
            (0..n)
                .map(|i| {
                    let next = if i + 1 < n { 0.8 * z[i + 1] } else { 0.0 };
                    0.5 * z[i] + next + 1.0 + i as f64
                })
                .collect()
        };
        let mut z = vec![0.0; n];
        let mut acc = Anderson::new(5, 0.5);
        let mut steps = 0;
        loop {
            let f: Vec<f64> = t(&z).iter().zip(&z).map(|(a, b)| a - b).collect();
            let r = f.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            if r < 1e-12 || steps > 100 {
                break;
            }
            acc.step(&mut z, &f);
            steps += 1;
        }
        assert!(steps <= 12, "{steps} steps");
        let tz = t(&z);
        for (a, b) in tz.iter().zip(&z) {
            assert!((a - b).abs() < 1e-10);
        }
    }
}
