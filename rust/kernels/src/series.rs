//! Vectorised series transforms: log returns and a rolling z-score.

use crate::error::{Result, invalid};

/// `ln(x[t] / x[t-1])` for t = 1..n; the result has n - 1 values.
///
/// Prices must be finite and strictly positive.
pub fn log_returns(prices: &[f64]) -> Result<Vec<f64>> {
    if prices.len() < 2 {
        return Err(invalid(format!(
            "log returns need at least 2 prices, got {}",
            prices.len()
        )));
    }
    if let Some((i, p)) = prices
        .iter()
        .enumerate()
        .find(|(_, p)| !(p.is_finite() && **p > 0.0))
    {
        return Err(invalid(format!(
            "prices must be finite and > 0; value {p} at index {i}"
        )));
    }
    Ok(prices.windows(2).map(|w| (w[1] / w[0]).ln()).collect())
}

/// Rolling z-score `(x[t] - mean) / sd` over the trailing `window` values,
/// with the sample standard deviation (ddof = 1, as pandas `rolling().std()`).
///
/// The first `window - 1` outputs are NaN, and so is any window whose
/// standard deviation is zero or that holds a non-finite value.
///
/// O(n) amortised: sums of `x - c` and `(x - c)^2` slide in O(1) per step for
/// a shift `c` near the window mean. The window is recomputed exactly (two
/// passes) every `window` steps, and sooner whenever the mean drifts more than
/// 8 standard deviations from `c`, which bounds cancellation to ~65 ulp.
pub fn rolling_zscore(x: &[f64], window: usize) -> Result<Vec<f64>> {
    if window < 2 {
        return Err(invalid(format!("window must be >= 2, got {window}")));
    }
    let n = x.len();
    let mut out = vec![f64::NAN; n];
    if n < window {
        return Ok(out);
    }
    let w = window as f64;
    let mut st = ShiftedSums::exact(&x[..window]);
    for t in (window - 1)..n {
        let seg = &x[t + 1 - window..=t];
        let slid = t >= window
            && st.bad == 0
            && (t + 1) % window != 0
            && x[t - window].is_finite()
            && x[t].is_finite();
        if slid {
            st.replace(x[t - window], x[t]);
        } else if t >= window {
            st = ShiftedSums::exact(seg);
        }
        if st.bad > 0 {
            continue;
        }
        let (mut mean_d, mut var) = st.moments(w);
        if slid && mean_d * mean_d > 64.0 * var {
            st = ShiftedSums::exact(seg);
            (mean_d, var) = st.moments(w);
        }
        if var > 0.0 {
            out[t] = (x[t] - st.c - mean_d) / var.sqrt();
        }
    }
    Ok(out)
}

/// Sums of deviations from a shift `c`, and how many non-finite values the
/// window holds (the sums are meaningless while it holds any).
struct ShiftedSums {
    c: f64,
    s1: f64,
    s2: f64,
    bad: usize,
}

impl ShiftedSums {
    fn exact(seg: &[f64]) -> Self {
        let bad = seg.iter().filter(|v| !v.is_finite()).count();
        if bad > 0 {
            return Self {
                c: 0.0,
                s1: 0.0,
                s2: 0.0,
                bad,
            };
        }
        let last = seg[seg.len() - 1];
        let c = last + seg.iter().map(|v| v - last).sum::<f64>() / seg.len() as f64;
        let (s1, s2) = seg.iter().fold((0.0, 0.0), |(a, b), v| {
            let d = v - c;
            (a + d, b + d * d)
        });
        Self { c, s1, s2, bad: 0 }
    }

    fn replace(&mut self, old: f64, new: f64) {
        let (a, b) = (old - self.c, new - self.c);
        self.s1 += b - a;
        self.s2 += b * b - a * a;
    }

    /// (mean - c, sample variance)
    fn moments(&self, w: f64) -> (f64, f64) {
        let mean_d = self.s1 / w;
        (mean_d, (self.s2 - self.s1 * mean_d).max(0.0) / (w - 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_z(x: &[f64], w: usize) -> Vec<f64> {
        (0..x.len())
            .map(|t| {
                if t + 1 < w {
                    return f64::NAN;
                }
                // Shift by the window's first value, then two passes.
                let seg: Vec<f64> = x[t + 1 - w..=t].iter().map(|v| v - x[t + 1 - w]).collect();
                let m = seg.iter().sum::<f64>() / w as f64;
                let v = seg.iter().map(|a| (a - m).powi(2)).sum::<f64>() / (w as f64 - 1.0);
                if v > 0.0 {
                    (seg[w - 1] - m) / v.sqrt()
                } else {
                    f64::NAN
                }
            })
            .collect()
    }

    #[test]
    fn log_returns_match_definition() {
        let p = [100.0, 101.0, 99.5, 99.5];
        let r = log_returns(&p).unwrap();
        assert_eq!(r.len(), 3);
        assert!((r[0] - (101.0f64 / 100.0).ln()).abs() < 1e-15);
        assert_eq!(r[2], 0.0);
    }

    #[test]
    fn log_returns_reject_bad_prices() {
        assert!(log_returns(&[1.0]).is_err());
        assert!(log_returns(&[1.0, 0.0]).is_err());
        assert!(log_returns(&[1.0, f64::NAN]).is_err());
        let msg = log_returns(&[1.0, -2.0]).unwrap_err().to_string();
        assert!(msg.contains("index 1"), "{msg}");
    }

    #[test]
    fn zscore_matches_two_pass_reference() {
        // A price-like series far from zero stresses cancellation.
        let x: Vec<f64> = (0..5000)
            .map(|i| 1.0e4 + (i as f64 * 0.37).sin() * 3.0 + (i % 7) as f64 * 0.01)
            .collect();
        for w in [2, 3, 20, 251] {
            let got = rolling_zscore(&x, w).unwrap();
            let want = naive_z(&x, w);
            for (g, e) in got.iter().zip(&want) {
                if e.is_nan() {
                    assert!(g.is_nan());
                } else {
                    assert!(
                        (g - e).abs() <= 1e-12 * (1.0 + e.abs()),
                        "w={w}: {g} vs {e}"
                    );
                }
            }
        }
    }

    #[test]
    fn zscore_constant_window_is_nan_and_short_input_all_nan() {
        let z = rolling_zscore(&[5.0; 10], 3).unwrap();
        assert!(z.iter().all(|v| v.is_nan()));
        let z = rolling_zscore(&[1.0, 2.0], 5).unwrap();
        assert!(z.iter().all(|v| v.is_nan()));
        assert!(rolling_zscore(&[1.0, 2.0], 1).is_err());
    }

    #[test]
    fn zscore_recovers_after_nan_leaves_window() {
        let mut x: Vec<f64> = (0..50).map(|i| (i as f64).sqrt()).collect();
        x[10] = f64::NAN;
        let z = rolling_zscore(&x, 5).unwrap();
        let want = naive_z(&x, 5);
        for t in 15..50 {
            assert!((z[t] - want[t]).abs() < 1e-12, "t={t}");
        }
        assert!(z[12].is_nan());
    }
}
