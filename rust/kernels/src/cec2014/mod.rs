//! The CEC 2014 single-objective suite F1..F30 (Liang, Qu & Suganthan 2013).
//!
//! The problem data (shift vectors o, rotation matrices M, shuffle permutations S)
//! is passed in by the caller; this module owns the math. Semantics follow the
//! competition's reference code: each basic function scales the shifted point by
//! its own rate before rotating; hybrid functions rotate the whole shifted point,
//! then permute it and hand each block (scaled by its function's rate, neither
//! shifted nor rotated again) to one basic function; composition functions mix
//! their components with the distance weights w_i = exp(-|x-o_i|^2 / (2 D d_i^2)) / |x-o_i|.

pub mod basic;

use crate::error::{Result, invalid};
pub use basic::Basic;
use rayon::prelude::*;

/// Dimensions the suite defines (and ships data for).
pub const DIMS: [usize; 5] = [10, 20, 30, 50, 100];

/// The weight used at a component's own optimum (as the reference code).
const INF: f64 = 1.0e99;

/// One component of a composition function.
#[derive(Debug, Clone, Copy)]
enum Part {
    /// A basic function, shifted and (if true) rotated.
    Basic(Basic, bool),
    /// Hybrid function 1..6 (F17..F22).
    Hybrid(usize),
}

/// (component, scale numerator, scale denominator, delta, bias)
type Comp = (Part, f64, f64, f64, f64);

use Basic as B;

/// Blocks of the hybrid functions F17..F22: (function, share of D).
const HYBRIDS: [&[(Basic, f64)]; 6] = [
    &[(B::Schwefel, 0.3), (B::Rastrigin, 0.3), (B::Elliptic, 0.4)],
    &[(B::BentCigar, 0.3), (B::HgBat, 0.3), (B::Rastrigin, 0.4)],
    &[
        (B::Griewank, 0.2),
        (B::Weierstrass, 0.2),
        (B::Rosenbrock, 0.3),
        (B::ScafferF6, 0.3),
    ],
    &[
        (B::HgBat, 0.2),
        (B::Discus, 0.2),
        (B::GriewankRosenbrock, 0.3),
        (B::Rastrigin, 0.3),
    ],
    &[
        (B::ScafferF6, 0.1),
        (B::HgBat, 0.2),
        (B::Rosenbrock, 0.2),
        (B::Schwefel, 0.2),
        (B::Elliptic, 0.3),
    ],
    &[
        (B::Katsuura, 0.1),
        (B::HappyCat, 0.2),
        (B::GriewankRosenbrock, 0.2),
        (B::Schwefel, 0.2),
        (B::Ackley, 0.3),
    ],
];

const fn rot(b: Basic) -> Part {
    Part::Basic(b, true)
}

/// Composition functions F23..F30.
const COMPOSITIONS: [&[Comp]; 8] = [
    &[
        (rot(B::Rosenbrock), 1e4, 1e4, 10.0, 0.0),
        (rot(B::Elliptic), 1e4, 1e10, 20.0, 100.0),
        (rot(B::BentCigar), 1e4, 1e30, 30.0, 200.0),
        (rot(B::Discus), 1e4, 1e10, 40.0, 300.0),
        (Part::Basic(B::Elliptic, false), 1e4, 1e10, 50.0, 400.0),
    ],
    &[
        (Part::Basic(B::Schwefel, false), 1.0, 1.0, 20.0, 0.0),
        (rot(B::Rastrigin), 1.0, 1.0, 20.0, 100.0),
        (rot(B::HgBat), 1.0, 1.0, 20.0, 200.0),
    ],
    &[
        (rot(B::Schwefel), 1e3, 4e3, 10.0, 0.0),
        (rot(B::Rastrigin), 1e3, 1e3, 30.0, 100.0),
        (rot(B::Elliptic), 1e3, 1e10, 50.0, 200.0),
    ],
    &[
        (rot(B::Schwefel), 1e3, 4e3, 10.0, 0.0),
        (rot(B::HappyCat), 1e3, 1e3, 10.0, 100.0),
        (rot(B::Elliptic), 1e3, 1e10, 10.0, 200.0),
        (rot(B::Weierstrass), 1e3, 400.0, 10.0, 300.0),
        (rot(B::Griewank), 1e3, 100.0, 10.0, 400.0),
    ],
    &[
        (rot(B::HgBat), 1e4, 1e3, 10.0, 0.0),
        (rot(B::Rastrigin), 1e4, 1e3, 10.0, 100.0),
        (rot(B::Schwefel), 1e4, 4e3, 10.0, 200.0),
        (rot(B::Weierstrass), 1e4, 400.0, 20.0, 300.0),
        (rot(B::Elliptic), 1e4, 1e10, 20.0, 400.0),
    ],
    &[
        (rot(B::GriewankRosenbrock), 1e4, 4e3, 10.0, 0.0),
        (rot(B::HappyCat), 1e4, 1e3, 20.0, 100.0),
        (rot(B::Schwefel), 1e4, 4e3, 30.0, 200.0),
        (rot(B::ScafferF6), 1e4, 2e7, 40.0, 300.0),
        (rot(B::Elliptic), 1e4, 1e10, 50.0, 400.0),
    ],
    &[
        (Part::Hybrid(0), 1.0, 1.0, 10.0, 0.0),
        (Part::Hybrid(1), 1.0, 1.0, 30.0, 100.0),
        (Part::Hybrid(2), 1.0, 1.0, 50.0, 200.0),
    ],
    &[
        (Part::Hybrid(3), 1.0, 1.0, 10.0, 0.0),
        (Part::Hybrid(4), 1.0, 1.0, 30.0, 100.0),
        (Part::Hybrid(5), 1.0, 1.0, 50.0, 200.0),
    ],
];

/// The basic function behind F1..F16 and whether it is rotated.
fn single(id: usize) -> (Basic, bool) {
    match id {
        1 => (B::Elliptic, true),
        2 => (B::BentCigar, true),
        3 => (B::Discus, true),
        4 => (B::Rosenbrock, true),
        5 => (B::Ackley, true),
        6 => (B::Weierstrass, true),
        7 => (B::Griewank, true),
        8 => (B::Rastrigin, false),
        9 => (B::Rastrigin, true),
        10 => (B::Schwefel, false),
        11 => (B::Schwefel, true),
        12 => (B::Katsuura, true),
        13 => (B::HappyCat, true),
        14 => (B::HgBat, true),
        15 => (B::GriewankRosenbrock, true),
        _ => (B::ScafferF6, true),
    }
}

fn check_id(id: usize) -> Result<()> {
    if (1..=30).contains(&id) {
        Ok(())
    } else {
        Err(invalid(format!(
            "CEC2014 function id must be 1..30, got {id}"
        )))
    }
}

/// How many shift vectors / rotation matrices / permutations function `id` takes.
pub fn components(id: usize) -> Result<usize> {
    check_id(id)?;
    Ok(if id <= 22 {
        1
    } else {
        COMPOSITIONS[id - 23].len()
    })
}

/// Whether function `id` reads rotation matrices (all but F8 and F10).
pub fn needs_rotation(id: usize) -> bool {
    !matches!(id, 8 | 10)
}

/// Whether function `id` reads shuffle permutations (the hybrids and F29, F30).
pub fn needs_shuffle(id: usize) -> bool {
    matches!(id, 17..=22 | 29 | 30)
}

/// Per-thread work buffers.
#[derive(Debug, Default, Clone)]
pub struct Scratch {
    tmp: Vec<f64>,
    z: Vec<f64>,
    y: Vec<f64>,
}

impl Scratch {
    pub fn new(d: usize) -> Self {
        Self {
            tmp: vec![0.0; d],
            z: vec![0.0; d],
            y: vec![0.0; d],
        }
    }
}

/// One CEC 2014 function with its data, ready to evaluate.
#[derive(Debug, Clone)]
pub struct Problem {
    id: usize,
    d: usize,
    /// k shift vectors, row-major (k, d).
    shift: Vec<f64>,
    /// k rotation matrices stacked, row-major (k·d, d); empty for F8 and F10.
    rotation: Vec<f64>,
    /// k permutations, 0-based, (k, d); empty unless `needs_shuffle`.
    perm: Vec<usize>,
}

impl Problem {
    /// `shift` is (k, d), `rotation` (k·d, d) and `shuffle` (k, d) with the
    /// 1-based permutations the CEC data files store; k = `components(id)`.
    pub fn new(
        id: usize,
        d: usize,
        shift: &[f64],
        rotation: Option<&[f64]>,
        shuffle: Option<&[i64]>,
    ) -> Result<Self> {
        let k = components(id)?;
        if !DIMS.contains(&d) {
            return Err(invalid(format!(
                "CEC2014 is defined for D in {DIMS:?}, got {d}"
            )));
        }
        if shift.len() != k * d {
            return Err(invalid(format!(
                "F{id} needs {k} shift vector(s) of length {d}, got {} values",
                shift.len()
            )));
        }
        if !shift.iter().all(|v| v.is_finite()) {
            return Err(invalid("the shift vector has non-finite values"));
        }
        let rotation = match (needs_rotation(id), rotation) {
            (true, None) => {
                return Err(invalid(format!("F{id} needs rotation matrices")));
            }
            (true, Some(m)) => {
                if m.len() != k * d * d {
                    return Err(invalid(format!(
                        "F{id} needs {k} rotation matrices of shape ({d}, {d}), got {} values",
                        m.len()
                    )));
                }
                if !m.iter().all(|v| v.is_finite()) {
                    return Err(invalid("the rotation matrix has non-finite values"));
                }
                m.to_vec()
            }
            (false, _) => Vec::new(),
        };
        let perm = match (needs_shuffle(id), shuffle) {
            (true, None) => {
                return Err(invalid(format!("F{id} needs shuffle permutations")));
            }
            (true, Some(s)) => {
                if s.len() != k * d {
                    return Err(invalid(format!(
                        "F{id} needs {k} permutation(s) of 1..{d}, got {} values",
                        s.len()
                    )));
                }
                let mut out = Vec::with_capacity(s.len());
                for chunk in s.chunks(d) {
                    let mut seen = vec![false; d];
                    for &v in chunk {
                        let ok = v >= 1 && (v as usize) <= d && !seen[(v - 1) as usize];
                        if !ok {
                            return Err(invalid(format!(
                                "F{id}: shuffle must hold permutations of 1..{d} (1-based, as the CEC files)"
                            )));
                        }
                        seen[(v - 1) as usize] = true;
                        out.push((v - 1) as usize);
                    }
                }
                out
            }
            (false, _) => Vec::new(),
        };
        Ok(Self {
            id,
            d,
            shift: shift.to_vec(),
            rotation,
            perm,
        })
    }

    pub fn id(&self) -> usize {
        self.id
    }

    pub fn dim(&self) -> usize {
        self.d
    }

    /// The optimal value F* = 100·id.
    pub fn f_global(&self) -> f64 {
        100.0 * self.id as f64
    }

    /// The optimum: the (first) shift vector.
    pub fn x_global(&self) -> &[f64] {
        &self.shift[..self.d]
    }

    fn shift_of(&self, i: usize) -> &[f64] {
        &self.shift[i * self.d..(i + 1) * self.d]
    }

    fn rotation_of(&self, i: usize) -> Option<&[f64]> {
        let n = self.d * self.d;
        self.rotation.get(i * n..(i + 1) * n)
    }

    fn perm_of(&self, i: usize) -> &[usize] {
        &self.perm[i * self.d..(i + 1) * self.d]
    }

    /// F(x) for one point of length D.
    pub fn eval(&self, x: &[f64], s: &mut Scratch) -> f64 {
        let id = self.id;
        let body = match id {
            1..=16 => {
                let (b, rotated) = single(id);
                let m = if rotated { self.rotation_of(0) } else { None };
                basic_at(b, x, self.shift_of(0), m, s)
            }
            17..=22 => hybrid(
                id - 17,
                x,
                self.shift_of(0),
                self.rotation_of(0),
                self.perm_of(0),
                s,
            ),
            _ => self.composition(COMPOSITIONS[id - 23], x, s),
        };
        body + self.f_global()
    }

    fn composition(&self, parts: &[Comp], x: &[f64], s: &mut Scratch) -> f64 {
        let d = self.d as f64;
        let mut fit = [0.0; 5];
        let mut w = [0.0; 5];
        let mut w_max: f64 = 0.0;
        for (i, &(part, num, den, delta, bias)) in parts.iter().enumerate() {
            let o = self.shift_of(i);
            let m = self.rotation_of(i);
            let g = match part {
                Part::Basic(b, rotated) => basic_at(b, x, o, if rotated { m } else { None }, s),
                Part::Hybrid(h) => hybrid(h, x, o, m, self.perm_of(i), s),
            };
            fit[i] = num * g / den + bias;
            let r2: f64 = x.iter().zip(o).map(|(a, b)| (a - b) * (a - b)).sum();
            w[i] = if r2 != 0.0 {
                (1.0 / r2).sqrt() * (-r2 / 2.0 / d / (delta * delta)).exp()
            } else {
                INF
            };
            w_max = w_max.max(w[i]);
        }
        let k = parts.len();
        if w_max == 0.0 {
            return fit[..k].iter().sum::<f64>() / k as f64;
        }
        let w_sum: f64 = w[..k].iter().sum();
        (0..k).map(|i| w[i] / w_sum * fit[i]).sum()
    }

    /// F at each row of `xs` (N·D values) into `out` (N), in parallel; each value
    /// depends on its row only, so the result does not depend on the thread count.
    pub fn eval_batch(&self, xs: &[f64], out: &mut [f64]) {
        let d = self.d;
        xs.par_chunks(d)
            .zip(out.par_iter_mut())
            .with_min_len(16)
            .for_each_init(|| Scratch::new(d), |s, (x, o)| *o = self.eval(x, s));
    }
}

/// z = M·(rate·(x − o)) (or without M), written to `s.z`.
fn shift_rotate(x: &[f64], o: &[f64], m: Option<&[f64]>, rate: f64, s: &mut Scratch) {
    let d = x.len();
    match m {
        Some(m) => {
            for ((t, a), b) in s.tmp.iter_mut().zip(x).zip(o) {
                *t = (a - b) * rate;
            }
            for (i, zi) in s.z.iter_mut().enumerate().take(d) {
                let row = &m[i * d..(i + 1) * d];
                *zi = row.iter().zip(&s.tmp).fold(0.0, |acc, (r, t)| acc + t * r);
            }
        }
        None => {
            for ((z, a), b) in s.z.iter_mut().zip(x).zip(o) {
                *z = (a - b) * rate;
            }
        }
    }
}

fn basic_at(b: Basic, x: &[f64], o: &[f64], m: Option<&[f64]>, s: &mut Scratch) -> f64 {
    shift_rotate(x, o, m, b.rate(), s);
    let d = x.len();
    b.eval(&mut s.z[..d])
}

/// Hybrid function `h` (0-based: F17 is 0): rotate, permute, then one basic
/// function per block of the permuted vector.
fn hybrid(
    h: usize,
    x: &[f64],
    o: &[f64],
    m: Option<&[f64]>,
    perm: &[usize],
    s: &mut Scratch,
) -> f64 {
    let d = x.len();
    shift_rotate(x, o, m, 1.0, s);
    for (y, &p) in s.y.iter_mut().zip(perm) {
        *y = s.z[p];
    }
    let blocks = HYBRIDS[h];
    let mut start = 0;
    let mut total = 0.0;
    for (j, &(b, share)) in blocks.iter().enumerate() {
        let len = if j + 1 == blocks.len() {
            d - start
        } else {
            (share * d as f64).ceil() as usize
        };
        let rate = b.rate();
        let block = &mut s.tmp[..len];
        for (t, y) in block.iter_mut().zip(&s.y[start..start + len]) {
            *t = y * rate;
        }
        total += b.eval(block);
        start += len;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(d: usize, k: usize) -> Vec<f64> {
        let mut m = vec![0.0; k * d * d];
        for c in 0..k {
            for i in 0..d {
                m[c * d * d + i * d + i] = 1.0;
            }
        }
        m
    }

    fn problem(id: usize, d: usize) -> Problem {
        let k = components(id).unwrap();
        let shift: Vec<f64> = (0..k * d).map(|i| ((i * 37) % 160) as f64 - 80.0).collect();
        let perm: Vec<i64> = (0..k).flat_map(|_| (1..=d as i64).rev()).collect();
        Problem::new(id, d, &shift, Some(&identity(d, k)), Some(&perm)).unwrap()
    }

    #[test]
    fn value_at_optimum_is_f_global() {
        for id in 1..=30 {
            let p = problem(id, 10);
            let mut s = Scratch::new(10);
            let f = p.eval(p.x_global(), &mut s);
            // Schwefel-based functions are 0 only to ~1e-4 at the optimum.
            assert!((f - p.f_global()).abs() < 1e-3, "F{id}: {f}");
        }
    }

    #[test]
    fn batch_matches_single_points() {
        let p = problem(27, 10);
        let xs: Vec<f64> = (0..50 * 10)
            .map(|i| ((i * 7919) % 200) as f64 - 100.0)
            .collect();
        let mut out = vec![0.0; 50];
        p.eval_batch(&xs, &mut out);
        let mut s = Scratch::new(10);
        for (x, v) in xs.chunks(10).zip(&out) {
            assert_eq!(p.eval(x, &mut s).to_bits(), v.to_bits());
        }
    }

    #[test]
    fn rejects_bad_data() {
        let d = 10;
        let shift = vec![0.0; d];
        assert!(Problem::new(31, d, &shift, None, None).is_err());
        assert!(Problem::new(1, 7, &shift[..7], Some(&identity(7, 1)), None).is_err());
        assert!(Problem::new(1, d, &shift, None, None).is_err());
        assert!(Problem::new(1, d, &shift[..9], Some(&identity(d, 1)), None).is_err());
        assert!(Problem::new(8, d, &shift, None, None).is_ok());
        let bad_perm: Vec<i64> = vec![1; d];
        assert!(Problem::new(17, d, &shift, Some(&identity(d, 1)), Some(&bad_perm)).is_err());
        assert!(Problem::new(17, d, &shift, Some(&identity(d, 1)), None).is_err());
        let nan = vec![f64::NAN; d];
        assert!(Problem::new(8, d, &nan, None, None).is_err());
    }
}
