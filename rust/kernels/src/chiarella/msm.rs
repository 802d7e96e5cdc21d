//! Method of simulated moments with common random numbers.

use super::facts::{moment_vector, n_moments};
use super::{LANES, Model, path_shocks, run_paths};
use crate::error::{Result, invalid};
use crate::optimize::{self, Config, Method, Outcome, Progress};
use rayon::prelude::*;

/// The names a calibration may free, in the order of `Model` fields.
pub const PARAM_NAMES: [&str; 9] = [
    "beta", "mu", "phi", "chi", "sigma_f", "sigma_c", "alpha0", "alpha_n", "alpha_p",
];

pub fn set_param(m: &mut Model, name: &str, v: f64) -> Result<()> {
    let slot = match name {
        "beta" => &mut m.beta,
        "mu" => &mut m.mu,
        "phi" => &mut m.phi,
        "chi" => &mut m.chi,
        "sigma_f" => &mut m.sigma_f,
        "sigma_c" => &mut m.sigma_c,
        "alpha0" => &mut m.alpha0,
        "alpha_n" => &mut m.alpha_n,
        "alpha_p" => &mut m.alpha_p,
        _ => {
            return Err(invalid(format!(
                "unknown parameter {name:?}; choose from {}",
                PARAM_NAMES.join(", ")
            )));
        }
    };
    *slot = v;
    Ok(())
}

/// J(θ) = (m̄_S(θ) - m̂)' W (m̄_S(θ) - m̂) under fixed shocks.
pub struct Objective {
    pub base: Model,
    pub free: Vec<String>,
    /// The data moments m̂: 9, or 10 with the kurtosis.
    pub target: Vec<f64>,
    pub kurtosis: bool,
    /// Row-major q × q weight matrix.
    pub weight: Vec<f64>,
    pub t: usize,
    /// One shock vector per simulated path (the common random numbers).
    shocks: Vec<Vec<f64>>,
}

/// The value J takes when a path blows up or a moment is not finite.
pub const PENALTY: f64 = 1e6;

impl Objective {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        base: Model,
        free: Vec<String>,
        target: &[f64],
        weight: &[f64],
        t: usize,
        n_paths: usize,
        seed: u64,
        kurtosis: bool,
    ) -> Result<Self> {
        base.validate()?;
        let q = n_moments(kurtosis);
        if target.len() != q || weight.len() != q * q {
            return Err(invalid(format!(
                "need {q} target moments and a {q}x{q} weight, got {} and {}",
                target.len(),
                weight.len()
            )));
        }
        if target.iter().chain(weight).any(|v| !v.is_finite()) {
            return Err(invalid("target moments and weight must be finite"));
        }
        if n_paths == 0 {
            return Err(invalid("n_paths must be at least 1"));
        }
        let mut probe = base;
        for name in &free {
            set_param(&mut probe, name, 0.0)?;
        }
        moment_vector(&vec![0.0; t], kurtosis)?;
        let shocks = (0..n_paths)
            .into_par_iter()
            .map(|s| path_shocks(&base, seed, s as u64, t))
            .collect();
        Ok(Self {
            base,
            free,
            target: target.to_vec(),
            kurtosis,
            weight: weight.to_vec(),
            t,
            shocks,
        })
    }

    pub fn model(&self, theta: &[f64]) -> Result<Model> {
        let mut m = self.base;
        for (name, &v) in self.free.iter().zip(theta) {
            set_param(&mut m, name, v)?;
        }
        m.validate()?;
        Ok(m)
    }

    /// Average moments over the paths; None when a path blows up or a moment is NaN.
    pub fn sim_moments(&self, theta: &[f64]) -> Result<Option<Vec<f64>>> {
        let m = self.model(theta)?;
        let per: Vec<Option<Vec<f64>>> = self
            .shocks
            .par_chunks(LANES)
            .flat_map_iter(|g| {
                let refs: Vec<&[f64]> = g.iter().map(Vec::as_slice).collect();
                let paths = run_paths(&m, &refs, self.t, false, false);
                (0..paths.len())
                    .map(|i| {
                        if paths.blown_up[i] {
                            return None;
                        }
                        moment_vector(paths.path(i), self.kurtosis)
                            .ok()
                            .filter(|v| v.iter().all(|x| x.is_finite()))
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let q = self.target.len();
        let mut acc = vec![0.0; q];
        for v in per {
            let Some(v) = v else { return Ok(None) };
            for (a, b) in acc.iter_mut().zip(v) {
                *a += b;
            }
        }
        let s = self.shocks.len() as f64;
        Ok(Some(acc.into_iter().map(|a| a / s).collect()))
    }

    pub fn j(&self, theta: &[f64]) -> Result<f64> {
        Ok(self.j_of(self.sim_moments(theta)?.as_deref()))
    }

    /// J from already simulated moments (None: a path blew up).
    pub fn j_of(&self, moments: Option<&[f64]>) -> f64 {
        let Some(m) = moments else {
            return PENALTY;
        };
        let g: Vec<f64> = m.iter().zip(&self.target).map(|(a, b)| a - b).collect();
        let q = g.len();
        let mut j = 0.0;
        for (r, gi) in g.iter().enumerate() {
            for (c, gj) in g.iter().enumerate() {
                j += gi * self.weight[r * q + c] * gj;
            }
        }
        if j.is_finite() { j } else { PENALTY }
    }

    /// L-SHADE over the free parameters within [lower, upper].
    pub fn calibrate(
        &self,
        lower: &[f64],
        upper: &[f64],
        budget: usize,
        seed: u64,
        pop_size: Option<usize>,
        on_generation: &mut dyn FnMut(&Progress) -> bool,
    ) -> Result<Outcome> {
        if lower.len() != self.free.len() {
            return Err(invalid("one bound pair per free parameter is needed"));
        }
        let mut cfg = Config::new(Method::Lshade, budget, seed);
        cfg.pop_size = pop_size;
        let mut eval = |xs: &[f64], d: usize, out: &mut [f64]| -> Result<()> {
            let vals: Vec<Result<f64>> = xs.par_chunks(d).map(|th| self.j(th)).collect();
            for (o, v) in out.iter_mut().zip(vals) {
                *o = v?;
            }
            Ok(())
        };
        optimize::minimize(&cfg, lower, upper, None, &mut eval, on_generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn j_is_deterministic_and_zero_at_own_moments() {
        let base = Model::default();
        let mut id = vec![0.0; 81];
        for i in 0..9 {
            id[i * 9 + i] = 1.0;
        }
        let free = vec!["sigma_c".to_string()];
        let obj = Objective::new(base, free, &[0.0; 9], &id, 400, 3, 5, false).unwrap();
        let m = obj.sim_moments(&[2.147]).unwrap().unwrap();
        let obj2 = Objective::new(base, vec!["sigma_c".into()], &m, &id, 400, 3, 5, false).unwrap();
        assert_eq!(obj2.j(&[2.147]).unwrap(), 0.0);
        assert_eq!(obj2.j(&[1.5]).unwrap(), obj2.j(&[1.5]).unwrap());
        assert!(obj2.j(&[1.5]).unwrap() > 0.0);
    }

    #[test]
    fn kurtosis_moment_extends_the_vector() {
        let base = Model::default();
        let mut id = vec![0.0; 100];
        for i in 0..10 {
            id[i * 10 + i] = 1.0;
        }
        let free = || vec!["sigma_c".to_string()];
        let nine = Objective::new(base, free(), &[0.0; 9], &id[..81], 400, 3, 5, false).unwrap();
        let ten = Objective::new(base, free(), &[0.0; 10], &id, 400, 3, 5, true).unwrap();
        let (a, b) = (
            nine.sim_moments(&[2.0]).unwrap().unwrap(),
            ten.sim_moments(&[2.0]).unwrap().unwrap(),
        );
        assert_eq!(b.len(), 10);
        assert_eq!(&b[..9], &a[..]);
        assert!(b[9] > 3.0, "{}", b[9]);
        assert!(Objective::new(base, free(), &[0.0; 9], &id[..81], 400, 3, 5, true).is_err());
    }
}
