//! The basic functions of CEC 2014 (Liang, Qu & Suganthan 2013), each applied
//! to an already shifted, scaled and rotated vector `z`.

use std::f64::consts::{E, PI};

/// A basic function and the factor that maps [-100, 100] onto its natural range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basic {
    Elliptic,
    BentCigar,
    Discus,
    Rosenbrock,
    Ackley,
    Weierstrass,
    Griewank,
    Rastrigin,
    Schwefel,
    Katsuura,
    HappyCat,
    HgBat,
    GriewankRosenbrock,
    ScafferF6,
}

const SCHWEFEL_SHIFT: f64 = 4.209_687_462_275_036e2;
const SCHWEFEL_CONST: f64 = 4.189_828_872_724_338e2;

impl Basic {
    /// The scale applied to the shifted point before rotation ("sh_rate").
    pub fn rate(self) -> f64 {
        match self {
            Self::Rosenbrock => 2.048 / 100.0,
            Self::Weierstrass => 0.5 / 100.0,
            Self::Griewank => 600.0 / 100.0,
            Self::Rastrigin => 5.12 / 100.0,
            Self::Schwefel => 1000.0 / 100.0,
            Self::Katsuura | Self::HappyCat | Self::HgBat | Self::GriewankRosenbrock => 5.0 / 100.0,
            _ => 1.0,
        }
    }

    /// The value at `z` (may be modified in place).
    pub fn eval(self, z: &mut [f64]) -> f64 {
        match self {
            Self::Elliptic => elliptic(z),
            Self::BentCigar => z[0] * z[0] + 1e6 * z[1..].iter().map(|v| v * v).sum::<f64>(),
            Self::Discus => 1e6 * z[0] * z[0] + z[1..].iter().map(|v| v * v).sum::<f64>(),
            Self::Rosenbrock => rosenbrock(z),
            Self::Ackley => ackley(z),
            Self::Weierstrass => weierstrass(z),
            Self::Griewank => griewank(z),
            Self::Rastrigin => z
                .iter()
                .map(|v| v * v - 10.0 * (2.0 * PI * v).cos() + 10.0)
                .sum(),
            Self::Schwefel => schwefel(z),
            Self::Katsuura => katsuura(z),
            Self::HappyCat => happy_cat(z),
            Self::HgBat => hgbat(z),
            Self::GriewankRosenbrock => griewank_rosenbrock(z),
            Self::ScafferF6 => scaffer_f6(z),
        }
    }
}

fn elliptic(z: &[f64]) -> f64 {
    let n = z.len();
    if n == 1 {
        return z[0] * z[0];
    }
    let step = 6.0 / (n - 1) as f64;
    z.iter()
        .enumerate()
        .map(|(i, v)| 10f64.powf(step * i as f64) * v * v)
        .sum()
}

fn rosenbrock(z: &mut [f64]) -> f64 {
    for v in z.iter_mut() {
        *v += 1.0;
    }
    z.windows(2)
        .map(|w| {
            let a = w[0] * w[0] - w[1];
            let b = w[0] - 1.0;
            100.0 * a * a + b * b
        })
        .sum()
}

fn ackley(z: &[f64]) -> f64 {
    let n = z.len() as f64;
    let s1 = z.iter().map(|v| v * v).sum::<f64>();
    let s2 = z.iter().map(|v| (2.0 * PI * v).cos()).sum::<f64>();
    E - 20.0 * (-0.2 * (s1 / n).sqrt()).exp() - (s2 / n).exp() + 20.0
}

const WEIERSTRASS_K: i32 = 20;

fn weierstrass(z: &[f64]) -> f64 {
    let term = |v: f64| -> f64 {
        (0..=WEIERSTRASS_K)
            .map(|k| 0.5f64.powi(k) * (2.0 * PI * 3f64.powi(k) * v).cos())
            .sum()
    };
    let base = term(0.5);
    z.iter().map(|&v| term(v + 0.5)).sum::<f64>() - z.len() as f64 * base
}

fn griewank(z: &[f64]) -> f64 {
    let s = z.iter().map(|v| v * v).sum::<f64>();
    let p = z
        .iter()
        .enumerate()
        .map(|(i, v)| (v / (1.0 + i as f64).sqrt()).cos())
        .product::<f64>();
    1.0 + s / 4000.0 - p
}

fn schwefel(z: &[f64]) -> f64 {
    let n = z.len() as f64;
    let mut f = 0.0;
    for &v in z {
        let y = v + SCHWEFEL_SHIFT;
        if y > 500.0 {
            let m = 500.0 - y % 500.0;
            f -= m * m.sqrt().sin();
            let t = (y - 500.0) / 100.0;
            f += t * t / n;
        } else if y < -500.0 {
            let r = y.abs() % 500.0;
            f -= (-500.0 + r) * (500.0 - r).sqrt().sin();
            let t = (y + 500.0) / 100.0;
            f += t * t / n;
        } else {
            f -= y * y.abs().sqrt().sin();
        }
    }
    f + SCHWEFEL_CONST * n
}

fn katsuura(z: &[f64]) -> f64 {
    let n = z.len() as f64;
    let expo = 10.0 / n.powf(1.2);
    let mut f = 1.0;
    for (i, &v) in z.iter().enumerate() {
        let mut s = 0.0;
        for j in 1..=32 {
            let p = 2f64.powi(j);
            let t = p * v;
            s += (t - (t + 0.5).floor()).abs() / p;
        }
        f *= (1.0 + (i + 1) as f64 * s).powf(expo);
    }
    let c = 10.0 / n / n;
    f * c - c
}

/// Sum of squares and plain sum of z - 1 (HappyCat and HGBat shift to the origin).
fn moments(z: &[f64]) -> (f64, f64) {
    z.iter().fold((0.0, 0.0), |(r2, s), &v| {
        let w = v - 1.0;
        (r2 + w * w, s + w)
    })
}

fn happy_cat(z: &[f64]) -> f64 {
    let n = z.len() as f64;
    let (r2, s) = moments(z);
    (r2 - n).abs().powf(0.25) + (0.5 * r2 + s) / n + 0.5
}

fn hgbat(z: &[f64]) -> f64 {
    let n = z.len() as f64;
    let (r2, s) = moments(z);
    (r2 * r2 - s * s).abs().powf(0.5) + (0.5 * r2 + s) / n + 0.5
}

fn griewank_rosenbrock(z: &mut [f64]) -> f64 {
    for v in z.iter_mut() {
        *v += 1.0;
    }
    let n = z.len();
    let pair = |a: f64, b: f64| {
        let t1 = a * a - b;
        let t2 = a - 1.0;
        let t = 100.0 * t1 * t1 + t2 * t2;
        t * t / 4000.0 - t.cos() + 1.0
    };
    (0..n).map(|i| pair(z[i], z[(i + 1) % n])).sum()
}

fn scaffer_f6(z: &[f64]) -> f64 {
    let n = z.len();
    let pair = |a: f64, b: f64| {
        let r2 = a * a + b * b;
        let s = r2.sqrt().sin();
        let d = 1.0 + 0.001 * r2;
        0.5 + (s * s - 0.5) / (d * d)
    };
    (0..n).map(|i| pair(z[i], z[(i + 1) % n])).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minima_are_zero_at_their_optimum() {
        let d = 10;
        for b in [
            Basic::Elliptic,
            Basic::BentCigar,
            Basic::Discus,
            Basic::Ackley,
            Basic::Weierstrass,
            Basic::Griewank,
            Basic::Rastrigin,
            Basic::Katsuura,
            Basic::HappyCat,
            Basic::HgBat,
            Basic::ScafferF6,
        ] {
            let mut z = vec![0.0; d];
            assert!(b.eval(&mut z).abs() < 1e-12, "{b:?}");
        }
        // Rosenbrock-type functions add 1 to z; the optimum is z = 0.
        for b in [Basic::Rosenbrock, Basic::GriewankRosenbrock] {
            let mut z = vec![0.0; d];
            assert!(b.eval(&mut z).abs() < 1e-12, "{b:?}");
        }
        let mut z = vec![0.0; d];
        assert!(Basic::Schwefel.eval(&mut z).abs() < 1e-3);
    }
}
