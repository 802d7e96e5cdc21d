//! backtesting.py's geometric Sharpe and the deflated Sharpe ratio (Bailey & López de
//! Prado 2014), as the numpy definitions compute them (docs/compute.md §6).
//!
//! Every sum is numpy's pairwise summation (`pairwise`), so sums and moments are the bits
//! numpy gives for the same values. log1p and exp come from libm, which can differ from
//! numpy's SIMD versions in the last ulp, and the normal CDF and quantile are computed
//! here (numpy has none): the results agree with numpy to ~1e-15 relative, not bitwise.
//! Both the single run and every sweep point call these functions, so a sweep row equals
//! the single run bit for bit.

// `!(x > 0.0)` is used on purpose: it also rejects NaN.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use crate::error::{Result, invalid};

/// Euler-Mascheroni constant.
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;
/// sqrt(pi).
const SQRT_PI: f64 = 1.772_453_850_905_516;

/// numpy's pairwise sum (`DOUBLE_pairwise_sum`, block 128, 8 accumulators) of `f(i)` for
/// i in lo..lo + n, K sums at once (each one the bits numpy gives for its column alone),
/// with the reduction's identity 0.0 added first as `np.add.reduce` does.
fn pairwise<const K: usize>(n: usize, f: &impl Fn(usize) -> [f64; K]) -> [f64; K] {
    let s = pairwise_from(0, n, f);
    s.map(|v| 0.0 + v)
}

fn pairwise_from<const K: usize>(lo: usize, n: usize, f: &impl Fn(usize) -> [f64; K]) -> [f64; K] {
    if n < 8 {
        let mut res = [-0.0; K];
        for i in lo..lo + n {
            let v = f(i);
            for k in 0..K {
                res[k] += v[k];
            }
        }
        res
    } else if n <= 128 {
        let mut r = [[0.0; K]; 8];
        for (j, rj) in r.iter_mut().enumerate() {
            *rj = f(lo + j);
        }
        let whole = n - n % 8;
        let mut i = 8;
        while i < whole {
            for (j, rj) in r.iter_mut().enumerate() {
                let v = f(lo + i + j);
                for k in 0..K {
                    rj[k] += v[k];
                }
            }
            i += 8;
        }
        let mut res = [0.0; K];
        for (k, out) in res.iter_mut().enumerate() {
            *out = ((r[0][k] + r[1][k]) + (r[2][k] + r[3][k]))
                + ((r[4][k] + r[5][k]) + (r[6][k] + r[7][k]));
        }
        while i < n {
            let v = f(lo + i);
            for k in 0..K {
                res[k] += v[k];
            }
            i += 1;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        let a = pairwise_from(lo, n2, f);
        let b = pairwise_from(lo + n2, n - n2, f);
        let mut out = a;
        for k in 0..K {
            out[k] += b[k];
        }
        out
    }
}

/// `x.var(ddof=1)` of numpy (NaN below 2 values).
fn var_ddof1(x: &[f64]) -> f64 {
    let n = x.len();
    let mean = pairwise(n, &|i| [x[i]])[0] / n as f64;
    let ss = pairwise(n, &|i| {
        let d = x[i] - mean;
        [d * d]
    })[0];
    ss / n.saturating_sub(1) as f64
}

/// backtesting.py 0.6.6's "Sharpe Ratio" of an equity curve: (annualised geometric return
/// - rf) / annualised volatility.
///
/// `last_of_day` (one flag per bar) keeps the last bar of each calendar day (the
/// caller's resampling); then non-finite equity values are dropped, r = e[1:] / e[:-1] - 1,
/// non-finite returns dropped. g = exp(mean log1p(r)) - 1, or 0 when some 1 + r <= 0;
/// return (1 + g)^A - 1, volatility sqrt((var(r, ddof=1) + (1 + g)^2)^A - (1 + g)^(2A)).
/// NaN with fewer than 2 returns or a volatility that is not > 0; overflow gives inf as
/// in numpy (a Sharpe of +-0.0 or NaN). `scratch` holds the returns (reused between calls).
pub fn geometric_sharpe(
    equity: &[f64],
    last_of_day: Option<&[bool]>,
    periods_per_year: f64,
    rf: f64,
    scratch: &mut Vec<f64>,
) -> Result<f64> {
    if let Some(m) = last_of_day {
        if m.len() != equity.len() {
            return Err(invalid(format!(
                "the calendar-day mask has {} flags for {} bars",
                m.len(),
                equity.len()
            )));
        }
    }
    scratch.clear();
    let mut prev = f64::NAN;
    let mut growing = true;
    for (t, &e) in equity.iter().enumerate() {
        if last_of_day.is_some_and(|m| !m[t]) || !e.is_finite() {
            continue;
        }
        if !prev.is_nan() {
            let r = e / prev - 1.0;
            if r.is_finite() {
                growing &= !(1.0 + r <= 0.0);
                scratch.push(r);
            }
        }
        prev = e;
    }
    let r = &scratch[..];
    let n = r.len();
    if n < 2 {
        return Ok(f64::NAN);
    }
    let [sum_log, sum_r] = if growing {
        pairwise(n, &|i| [r[i].ln_1p(), r[i]])
    } else {
        [0.0, pairwise(n, &|i| [r[i]])[0]]
    };
    let g = if growing {
        (sum_log / n as f64).exp() - 1.0
    } else {
        0.0
    };
    let mean = sum_r / n as f64;
    let ss = pairwise(n, &|i| {
        let d = r[i] - mean;
        [d * d]
    })[0];
    let var = ss / (n - 1) as f64;
    let a = periods_per_year;
    let ann_ret = (1.0 + g).powf(a) - 1.0;
    let vol2 = (var + (1.0 + g).powf(2.0)).powf(a) - (1.0 + g).powf(2.0 * a);
    let vol = if vol2 > 0.0 { vol2.sqrt() } else { f64::NAN };
    Ok(if vol > 0.0 {
        (ann_ret - rf) / vol
    } else {
        f64::NAN
    })
}

/// Mean, sample sd and central moments of one series of returns less rf, as numpy
/// computes them: the inputs of the deflated Sharpe that do not depend on the other trials.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moments {
    pub count: usize,
    /// Every return is finite.
    pub finite: bool,
    pub mean: f64,
    /// Standard deviation, ddof = 1.
    pub sd: f64,
    /// Population central moments of order 2, 3 and 4.
    pub m2: f64,
    pub m3: f64,
    pub m4: f64,
}

impl Moments {
    /// Of x = returns - rf.
    pub fn of(returns: &[f64], rf: f64) -> Self {
        let n = returns.len();
        let nf = n as f64;
        let [sum, bad] = pairwise(n, &|i| {
            let v = returns[i];
            [v - rf, if v.is_finite() { 0.0 } else { 1.0 }]
        });
        let mean = sum / nf;
        let [s2, s3, s4] = pairwise(n, &|i| {
            let c = (returns[i] - rf) - mean;
            let c2 = c * c;
            [c2, c2 * c, c2 * c2]
        });
        Self {
            count: n,
            finite: bad == 0.0,
            mean,
            sd: (s2 / n.saturating_sub(1) as f64).sqrt(),
            m2: s2 / nf,
            m3: s3 / nf,
            m4: s4 / nf,
        }
    }

    /// The deflated Sharpe against the benchmark `sr0` (per period).
    pub fn deflated(&self, sr0: f64) -> f64 {
        if !(self.sd > 0.0) {
            return f64::NAN;
        }
        let sr = self.mean / self.sd;
        let skew = self.m3 / self.m2.powf(1.5);
        let kurt = self.m4 / (self.m2 * self.m2);
        probabilistic_sharpe(sr, skew, kurt, self.count, sr0)
    }
}

/// Phi((sr - sr0) sqrt(T - 1) / sqrt(1 - skew sr + (kurt - 1) / 4 sr^2)), NaN when the
/// denominator is not > 0; `kurt` is not excess, sr and sr0 per period.
pub fn probabilistic_sharpe(sr: f64, skew: f64, kurt: f64, count: usize, sr0: f64) -> f64 {
    let denom = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr;
    if !(denom > 0.0) {
        return f64::NAN;
    }
    let t = count as f64 - 1.0;
    norm_cdf((sr - sr0) * t.sqrt() / denom.sqrt())
}

/// Expected maximum of `n_trials` Sharpe estimates with true Sharpe 0 and variance
/// `sharpe_var` (eq. 2, Euler-Mascheroni approximation); 0 for one trial.
pub fn expected_max_sharpe(n_trials: usize, sharpe_var: f64) -> Result<f64> {
    if n_trials < 1 {
        return Err(invalid(format!(
            "n_trials must be an int >= 1, got {n_trials}"
        )));
    }
    if !(sharpe_var >= 0.0 && sharpe_var.is_finite()) {
        return Err(invalid(format!(
            "sharpe_var must be finite and >= 0, got {sharpe_var}"
        )));
    }
    if n_trials == 1 {
        return Ok(0.0);
    }
    let n = n_trials as f64;
    let z = (1.0 - EULER_GAMMA) * norm_ppf(1.0 - 1.0 / n)
        + EULER_GAMMA * norm_ppf(1.0 - 1.0 / (n * std::f64::consts::E));
    Ok(sharpe_var.sqrt() * z)
}

/// Deflated Sharpe of one series of returns (at least 3, finite) given the trials.
pub fn deflated_sharpe(returns: &[f64], n_trials: usize, sharpe_var: f64, rf: f64) -> Result<f64> {
    let m = Moments::of(returns, rf);
    if m.count < 3 || !m.finite {
        return Err(invalid(
            "returns must be a 1-D series of at least 3 finite values",
        ));
    }
    Ok(m.deflated(expected_max_sharpe(n_trials, sharpe_var)?))
}

/// The deflated Sharpe of each trial of a grid, the grid being the set of trials.
///
/// `sharpe` holds the annualised arithmetic Sharpe of each trial, `moments` those of its
/// returns. N = trials with a finite Sharpe, V = var(ddof=1) of their per-period Sharpes
/// (sharpe / sqrt(periods_per_year); 0 below 2 trials). Returns (values, N): NaN for the
/// trials left out.
pub fn deflate_grid(
    sharpe: &[f64],
    moments: &[Moments],
    periods_per_year: f64,
) -> Result<(Vec<f64>, usize)> {
    if sharpe.len() != moments.len() {
        return Err(invalid("one Sharpe ratio and one return series per trial"));
    }
    let root = periods_per_year.sqrt();
    let good: Vec<f64> = sharpe
        .iter()
        .map(|s| s / root)
        .filter(|s| s.is_finite())
        .collect();
    let n = good.len();
    if n == 0 {
        return Ok((vec![f64::NAN; sharpe.len()], 0));
    }
    let var = if n >= 2 { var_ddof1(&good) } else { 0.0 };
    let ok = |s: &f64| (s / root).is_finite();
    if sharpe
        .iter()
        .zip(moments)
        .any(|(s, m)| ok(s) && (m.count < 3 || !m.finite))
    {
        return Err(invalid(
            "returns must be a 1-D series of at least 3 finite values",
        ));
    }
    let sr0 = expected_max_sharpe(n, var)?;
    let out = sharpe
        .iter()
        .zip(moments)
        .map(|(s, m)| if ok(s) { m.deflated(sr0) } else { f64::NAN })
        .collect();
    Ok((out, n))
}

/// erfc(x): Taylor series of erf below 1.5, Laplace's continued fraction above; exp(-x^2)
/// with x^2 split exactly (fma). ~1e-15 relative.
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 1.5 {
        // erf(x) = 2x/sqrt(pi) e^{-x^2} sum_n (2x^2)^n / (2n+1)!!, all terms positive
        let t = 2.0 * x * x;
        let (mut term, mut sum) = (1.0f64, 1.0f64);
        let mut k = 1.0;
        while term > 1e-17 * sum {
            k += 2.0;
            term *= t / k;
            sum += term;
        }
        return 1.0 - 2.0 * x / SQRT_PI * exp_neg_sq(x) * sum;
    }
    if x > 27.3 {
        return 0.0;
    }
    // K = x + (1/2) / (x + (2/2) / (x + (3/2) / ...)), erfc = e^{-x^2} / (sqrt(pi) K); Lentz
    let tiny = 1e-300;
    let (mut f, mut c, mut d) = (x, x, 0.0f64);
    for n in 1..500 {
        let a = f64::from(n) / 2.0;
        d = x + a * d;
        d = if d == 0.0 { 1.0 / tiny } else { 1.0 / d };
        c = x + a / c;
        if c == 0.0 {
            c = tiny;
        }
        let step = c * d;
        f *= step;
        if (step - 1.0).abs() < 1e-16 {
            break;
        }
    }
    exp_neg_sq(x) / (SQRT_PI * f)
}

/// exp(-x^2) with x^2 = hi + lo split exactly, so the rounding of x^2 costs nothing.
fn exp_neg_sq(x: f64) -> f64 {
    let hi = x * x;
    let lo = x.mul_add(x, -hi);
    (-hi).exp() * (-lo).exp()
}

/// Standard normal CDF, 0.5 erfc(-z / sqrt 2).
pub fn norm_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// Standard normal quantile: Newton steps on log of the upper tail from the
/// Abramowitz-Stegun 26.2.23 start (error < 4.5e-4). Exact tail 1 - p for p >= 0.5.
pub fn norm_ppf(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    if p == 0.5 {
        return 0.0;
    }
    if p < 0.5 {
        -upper_quantile(p)
    } else {
        upper_quantile(1.0 - p)
    }
}

/// x > 0 with P(Z > x) = q, 0 < q < 0.5.
fn upper_quantile(q: f64) -> f64 {
    let t = (-2.0 * q.ln()).sqrt();
    let mut x = t
        - (2.515_517 + 0.802_853 * t + 0.010_328 * t * t)
            / (1.0 + 1.432_788 * t + 0.189_269 * t * t + 0.001_308 * t * t * t);
    let ln_q = q.ln();
    for _ in 0..50 {
        let tail = 0.5 * erfc(x / std::f64::consts::SQRT_2);
        let pdf = exp_neg_sq(x / std::f64::consts::SQRT_2) / (SQRT_PI * std::f64::consts::SQRT_2);
        // Newton on h(x) = ln tail(x) - ln q, h' = -pdf / tail
        let dx = (tail.ln() - ln_q) * tail / pdf;
        x += dx;
        if dx.abs() <= 1e-16 * x.abs() {
            break;
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs()
    }

    #[test]
    fn pairwise_is_numpys_summation_order() {
        // 1e16 + 1 + 1 ... : a left-to-right sum loses every 1, numpy's 8 accumulators
        // keep them in the seven lanes that do not hold 1e16 (hand count: 7 lanes x 1).
        let mut x = [1.0; 16];
        x[0] = 1e16;
        let s = pairwise(16, &|i| [x[i]])[0];
        // lanes: r0 = 1e16 + 1 (rounds to 1e16), r1..r7 = 2 each -> 1e16 + 14
        assert_eq!(s, 1e16 + 14.0);
        // above 128 values the halves are summed separately
        let y: Vec<f64> = (0..1000).map(f64::from).collect();
        assert_eq!(pairwise(1000, &|i| [y[i]])[0], 499_500.0);
        assert_eq!(pairwise(0, &|i| [y[i]])[0].to_bits(), 0.0f64.to_bits());
        assert_eq!(var_ddof1(&[1.0, 2.0, 3.0, 4.0]), 5.0 / 3.0);
    }

    #[test]
    fn geometric_sharpe_on_hand_values() {
        let mut buf = Vec::new();
        // r = 0.1, -0.1, 0.1; A = 1: g = 1.089^(1/3) - 1, vol = sd(r) = sqrt(1/75)
        let e = [100.0, 110.0, 99.0, 108.9];
        let want = (1.089f64.cbrt() - 1.0) * 75f64.sqrt();
        let got = geometric_sharpe(&e, None, 1.0, 0.0, &mut buf).unwrap();
        assert!(close(got, want, 1e-13), "{got} {want}");
        // NaN and inf equity values are dropped first, then the returns
        let e2 = [100.0, f64::NAN, 110.0, f64::INFINITY, 99.0, 108.9];
        assert!(close(
            geometric_sharpe(&e2, None, 1.0, 0.0, &mut buf).unwrap(),
            want,
            1e-13
        ));
        // a bar that is not the last of its day is skipped
        let e3 = [100.0, 105.0, 110.0, 99.0, 108.9];
        let mask = [true, false, true, true, true];
        let got3 = geometric_sharpe(&e3, Some(&mask), 1.0, 0.0, &mut buf).unwrap();
        assert!(close(got3, want, 1e-13));
        assert!(geometric_sharpe(&e3, Some(&mask[1..]), 1.0, 0.0, &mut buf).is_err());
        // 1 + r <= 0 somewhere: g = 0, the Sharpe is -rf / sd(r) for A = 1
        let e4 = [100.0, -50.0, 100.0, 120.0];
        let r = [-1.5, -3.0, 0.2];
        let m = (r[0] + r[1] + r[2]) / 3.0;
        let sd = (r.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / 2.0).sqrt();
        let got4 = geometric_sharpe(&e4, None, 1.0, 0.01, &mut buf).unwrap();
        assert!(close(got4, -0.01 / sd, 1e-13), "{got4}");
        // fewer than two returns
        assert!(
            geometric_sharpe(&[1.0, 2.0], None, 252.0, 0.0, &mut buf)
                .unwrap()
                .is_nan()
        );
        assert!(
            geometric_sharpe(&[1.0, f64::NAN, 2.0], None, 252.0, 0.0, &mut buf)
                .unwrap()
                .is_nan()
        );
        // constant equity: zero volatility
        assert!(
            geometric_sharpe(&[5.0; 6], None, 252.0, 0.0, &mut buf)
                .unwrap()
                .is_nan()
        );
    }

    #[test]
    fn geometric_sharpe_overflows_as_numpy_does() {
        // prod(1 + r) = 0.1 over 6 returns: (1 + g)^252 - 1 ~ -1, the volatility overflows
        // to inf, the Sharpe is -1 / inf = -0.0
        let e = [100.0, 1000.0, 10.0, 1000.0, 10.0, 1000.0, 10.0];
        let got = geometric_sharpe(&e, None, 252.0, 0.0, &mut Vec::new()).unwrap();
        assert_eq!(got, 0.0);
        assert!(got.is_sign_negative());
    }

    #[test]
    fn normal_cdf_and_quantile_on_table_values() {
        assert!(close(norm_cdf(1.96), 0.975_002_104_851_780_1, 1e-15));
        assert!(close(norm_cdf(-1.0), 0.158_655_253_931_457_05, 1e-14));
        assert!(close(norm_cdf(-5.0), 2.866_515_718_791_939e-7, 1e-13));
        assert!(close(norm_cdf(-10.0), 7.619_853_024_160_527e-24, 1e-13));
        assert_eq!(norm_cdf(0.0), 0.5);
        assert!(close(erfc(0.5), 0.479_500_122_186_953_5, 1e-15));
        assert!(close(erfc(3.0), 2.209_049_699_858_544e-5, 1e-14));
        assert!(close(norm_ppf(0.975), 1.959_963_984_540_054, 1e-14));
        assert!(close(norm_ppf(1e-10), -6.361_340_902_404_056, 1e-14));
        assert!(close(norm_ppf(0.9), 1.281_551_565_544_600_5, 1e-14));
        assert_eq!(norm_ppf(0.5), 0.0);
        assert!(norm_ppf(1.5).is_nan());
    }

    #[test]
    fn deflated_sharpe_reproduces_the_papers_example() {
        // annual SR 2.5 over 5 years of daily data (T = 1250, A = 250), N = 100 trials with
        // annualised variance 1/2, skew -3, kurtosis 10 -> SR0 0.1132, DSR 0.9004
        let sr0 = expected_max_sharpe(100, 0.5 / 250.0).unwrap();
        assert!((sr0 - 0.1132).abs() < 5e-5, "{sr0}");
        let dsr = probabilistic_sharpe(2.5 / 250f64.sqrt(), -3.0, 10.0, 1250, sr0);
        assert!((dsr - 0.9004).abs() < 5e-5, "{dsr}");
        assert_eq!(expected_max_sharpe(1, 0.3).unwrap(), 0.0);
        assert!(expected_max_sharpe(0, 0.3).is_err());
        assert!(expected_max_sharpe(5, f64::NAN).is_err());
        // 1 - skew sr + (kurt - 1) / 4 sr^2 <= 0: undefined
        assert!(probabilistic_sharpe(1.0, 3.0, 1.0, 10, 0.0).is_nan());
    }

    #[test]
    fn deflated_sharpe_moments_on_hand_values() {
        // x = r - rf = 1, 2, 3, 6: mean 3, central 4 1 0 9 -> m2 14/4, m3 -8+(-1)+0+27 = 18/4,
        // m4 16+1+0+81 = 98/4, sd sqrt(14/3)
        let r = [1.01, 2.01, 3.01, 6.01];
        let m = Moments::of(&r, 0.01);
        assert!(close(m.mean, 3.0, 1e-14) && close(m.sd, (14.0f64 / 3.0).sqrt(), 1e-14));
        assert!(close(m.m2, 3.5, 1e-14) && close(m.m3, 4.5, 1e-13) && close(m.m4, 24.5, 1e-13));
        let (sr, skew) = (3.0 / (14.0f64 / 3.0).sqrt(), 4.5 / 3.5f64.powf(1.5));
        // kurt = 24.5 / 3.5^2 = 2: z = sr sqrt(3) / sqrt(1 - skew sr + sr^2 / 4)
        let want = norm_cdf(sr * 3f64.sqrt() / (1.0 - skew * sr + sr * sr / 4.0).sqrt());
        assert!(close(m.deflated(0.0), want, 1e-12));
        // a benchmark above the Sharpe lowers the probability
        assert!(m.deflated(0.5) < want);
        let r2 = [0.01, -0.02, 0.015, 0.0, 0.005];
        let m2 = Moments::of(&r2, 0.0);
        let mean = 0.002;
        let c: Vec<f64> = r2.iter().map(|v| v - mean).collect();
        let pm = |k: i32| c.iter().map(|v| v.powi(k)).sum::<f64>() / 5.0;
        let sd = (pm(2) * 5.0 / 4.0).sqrt();
        let want2 = norm_cdf(
            (mean / sd) * 2.0
                / (1.0 - pm(3) / pm(2).powf(1.5) * mean / sd
                    + (pm(4) / (pm(2) * pm(2)) - 1.0) / 4.0 * (mean / sd).powi(2))
                .sqrt(),
        );
        assert!(close(m2.deflated(0.0), want2, 1e-12));
        assert!(close(
            deflated_sharpe(&r2, 1, 0.0, 0.0).unwrap(),
            want2,
            1e-12
        ));
        assert!(deflated_sharpe(&r2[..2], 1, 0.0, 0.0).is_err());
        assert!(deflated_sharpe(&[0.0, f64::NAN, 1.0], 1, 0.0, 0.0).is_err());
        assert!(deflated_sharpe(&[0.0; 5], 3, 1e-4, 0.0).unwrap().is_nan());
    }

    #[test]
    fn grid_deflation_counts_the_finite_trials() {
        let r1 = [0.01, -0.02, 0.015, 0.0, 0.005];
        let r2 = [0.02, -0.01, 0.005, 0.01, -0.004];
        let ms = [
            Moments::of(&r1, 0.0),
            Moments::of(&[0.0; 5], 0.0),
            Moments::of(&r2, 0.0),
        ];
        let sharpe = [1.5, f64::NAN, 2.5];
        let (out, n) = deflate_grid(&sharpe, &ms, 4.0).unwrap();
        assert_eq!(n, 2);
        // per-period Sharpes 0.75 and 1.25: var (ddof 1) = 0.125
        let sr0 = expected_max_sharpe(2, 0.125).unwrap();
        assert_eq!(out[0], ms[0].deflated(sr0));
        assert!(out[1].is_nan());
        assert_eq!(out[2], ms[2].deflated(sr0));
        let (none, n0) = deflate_grid(&[f64::NAN], &ms[..1], 4.0).unwrap();
        assert!(n0 == 0 && none[0].is_nan());
        // a trial with a Sharpe needs at least 3 finite returns
        assert!(deflate_grid(&[1.0, 1.0], &[Moments::default(); 2], 1.0).is_err());
        let nan_r = Moments::of(&[0.01, f64::NAN, 0.02, 0.0], 0.0);
        assert!(deflate_grid(&[1.0, 1.0], &[ms[0], nan_r], 1.0).is_err());
        assert!(deflate_grid(&[1.0], &ms, 1.0).is_err());
    }
}
