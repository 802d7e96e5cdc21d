//! Branch-free e^x for x <= 0, scalar and 16 lanes at a time, for the
//! max-shifted emissions of the fused E-step.
//!
//! x = (32 m + j) ln2/32 + r with |r| <= ln2/64: e^x = 2^m 2^(j/32) e^r, with
//! 2^(j/32) from a table (correctly rounded) and e^r from its Taylor series
//! to degree 6 (truncation below 4e-18). Six multiply-adds instead of the
//! thirteen a [-ln2/2, ln2/2] reduction needs.
#![allow(clippy::needless_range_loop)] // lane loops read like the maths here
#![allow(clippy::excessive_precision, clippy::unreadable_literal)] // table digits as printed

/// 2^(j/32), j = 0..32, each the double nearest the exact value.
const POW2_J32: [f64; 32] = [
    1.0,
    1.0218971486541166,
    1.0442737824274138,
    1.0671404006768237,
    1.0905077326652577,
    1.1143867425958924,
    1.1387886347566916,
    1.1637248587775775,
    1.189207115002721,
    1.215247359980469,
    1.241857812073484,
    1.2690509571917332,
    1.2968395546510096,
    1.3252366431597413,
    1.3542555469368927,
    1.383909881963832,
    std::f64::consts::SQRT_2,
    1.4451808069770467,
    1.4768261459394993,
    1.5091644275934228,
    1.5422108254079407,
    1.5759808451078865,
    1.6104903319492543,
    1.645755478153965,
    1.681792830507429,
    1.718619298122478,
    1.7562521603732995,
    1.7947090750031072,
    1.8340080864093424,
    1.8741676341103,
    1.9152065613971474,
    1.9571441241754002,
];
/// 32 / ln 2.
const INV_STEP: f64 = 46.16624130844683;
/// ln2/32 to 32 significant bits (n * STEP_HI is exact for |n| < 2^21) ...
const STEP_HI: f64 = 0.02166084938653512;
/// ... and the rest.
const STEP_LO: f64 = 5.9631716539705866e-12;
/// 1.5 * 2^52: adding it rounds to an integer held in the low mantissa bits.
const SHIFT: f64 = 6_755_399_441_055_744.0;
/// Taylor coefficients of e^r from degree 5 down to 0, after 1/720 (Horner order).
const C: [f64; 6] = [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0];

/// e^x for x <= 0 (x = NaN is not expected), to about 2 ulp; below e^-708
/// it returns 0 (where std would give a subnormal), so a row whose every
/// reachable state underflows still sends the pass to the log-space path.
/// Written branch-free so the sweep over a sequence vectorises.
#[inline(always)]
pub fn exp_nonpos(x: f64) -> f64 {
    let mut v = [x];
    exp_nonpos_n(&mut v);
    v[0]
}

/// `exp_nonpos` on N values at once, stage by stage, with N independent
/// chains in flight so the polynomial's latency overlaps.
#[inline(always)]
fn exp_nonpos_n<const N: usize>(v: &mut [f64; N]) {
    let mut t = [0.0; N];
    let mut r = [0.0; N];
    for i in 0..N {
        let xc = v[i].max(-708.0);
        t[i] = xc * INV_STEP + SHIFT;
        let n = t[i] - SHIFT;
        r[i] = xc - n * STEP_HI - n * STEP_LO;
    }
    let mut p = [1.0 / 720.0; N];
    for c in C {
        for i in 0..N {
            p[i] = p[i] * r[i] + c;
        }
    }
    for i in 0..N {
        // n = 32 m + j in the low bits of t (two's complement); 2^m 2^(j/32)
        // is the table entry with m added to its exponent (1023 + m >= 1
        // for x >= -708, so it stays a normal number).
        let n = (t[i].to_bits() as i64).wrapping_sub(SHIFT.to_bits() as i64);
        let scale = POW2_J32[(n & 31) as usize].to_bits() as i64 + ((n >> 5) << 52);
        let e = p[i] * f64::from_bits(scale as u64);
        v[i] = if v[i] < -708.0 { 0.0 } else { e };
    }
}

/// Values per step of `exp_sweep`.
const WIDTH: usize = 16;

/// `exp_nonpos` over a slice, WIDTH at a time.
#[inline(always)]
pub fn exp_sweep(v: &mut [f64]) {
    let mut chunks = v.chunks_exact_mut(WIDTH);
    for c in &mut chunks {
        if let Ok(c) = <&mut [f64; WIDTH]>::try_from(c) {
            exp_nonpos_n(c);
        }
    }
    for x in chunks.into_remainder() {
        *x = exp_nonpos(*x);
    }
}

#[cfg(test)]
mod tests {
    use super::{POW2_J32, exp_nonpos, exp_sweep};

    #[test]
    fn table_is_two_to_the_j_over_32() {
        for (j, &v) in POW2_J32.iter().enumerate() {
            let want = (j as f64 / 32.0).exp2();
            assert!(
                (v - want).abs() <= f64::EPSILON * want,
                "j={j}: {v} vs {want}"
            );
            // Squaring 2^(j/32) five times gives 2^j (to rounding).
            let mut q = v;
            for _ in 0..5 {
                q *= q;
            }
            assert!((q / (j as f64).exp2() - 1.0).abs() < 1e-14, "j={j}");
        }
        assert_eq!(POW2_J32[0], 1.0);
        assert_eq!(POW2_J32[16], std::f64::consts::SQRT_2);
    }

    #[test]
    fn fast_exp_matches_std() {
        let mut worst = 0.0f64;
        for i in 0..200_000 {
            let x = -(i as f64) * 0.003_7;
            let got = exp_nonpos(x);
            if x < -708.0 {
                assert_eq!(got, 0.0);
                continue;
            }
            worst = worst.max(((got - x.exp()) / x.exp()).abs());
        }
        assert!(worst < 5e-16, "{worst}");
        assert_eq!(exp_nonpos(0.0), 1.0);
        assert_eq!(exp_nonpos(-1e6), 0.0);
    }

    #[test]
    fn sweep_matches_scalar_bitwise() {
        let xs: Vec<f64> = (0..1003).map(|i| -(i as f64) * 0.77).collect();
        let mut v = xs.clone();
        exp_sweep(&mut v);
        for (x, got) in xs.iter().zip(&v) {
            assert_eq!(got.to_bits(), exp_nonpos(*x).to_bits(), "{x}");
        }
    }
}
