//! Branch-free e^x for x <= 0, scalar and 16 lanes at a time, for the
//! max-shifted emissions of the fused E-step.
#![allow(clippy::needless_range_loop)] // lane loops read like the maths here

/// e^x for x <= 0 (x = NaN is not expected), to about 2 ulp; below e^-708
/// it returns 0 (where std would give a subnormal), so a row whose every
/// reachable state underflows still sends the pass to the log-space path.
/// Written branch-free so the sweep over a sequence vectorises.
#[inline(always)]
pub fn exp_nonpos(x: f64) -> f64 {
    const INV_LN2: f64 = std::f64::consts::LOG2_E;
    const LN2_HI: f64 = 0.693_147_180_369_123_8;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    const SHIFT: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52
    let xc = x.max(-708.0);
    let t = xc * INV_LN2 + SHIFT;
    let n = t - SHIFT;
    let r = xc - n * LN2_HI - n * LN2_LO;
    // Taylor series of e^r on |r| <= ln2/2 to degree 12 (error < 2e-16).
    let mut p = 1.0 / 479_001_600.0;
    p = p * r + 1.0 / 39_916_800.0;
    p = p * r + 1.0 / 3_628_800.0;
    p = p * r + 1.0 / 362_880.0;
    p = p * r + 1.0 / 40_320.0;
    p = p * r + 1.0 / 5_040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    let ni = (t.to_bits() as i64).wrapping_sub(SHIFT.to_bits() as i64);
    let v = p * f64::from_bits(((ni + 1023) << 52) as u64);
    if x < -708.0 { 0.0 } else { v }
}

/// `exp_nonpos` on N values at once, stage by stage: the same operations
/// (bitwise equal results) with N independent chains in flight, so the
/// polynomial's latency overlaps instead of serialising.
#[inline(always)]
fn exp_nonpos_n<const N: usize>(v: &mut [f64; N]) {
    const INV_LN2: f64 = std::f64::consts::LOG2_E;
    const LN2_HI: f64 = 0.693_147_180_369_123_8;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    const SHIFT: f64 = 6_755_399_441_055_744.0;
    const C: [f64; 12] = [
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ];
    let mut t = [0.0; N];
    let mut r = [0.0; N];
    for i in 0..N {
        let xc = v[i].max(-708.0);
        t[i] = xc * INV_LN2 + SHIFT;
        let n = t[i] - SHIFT;
        r[i] = xc - n * LN2_HI - n * LN2_LO;
    }
    let mut p = [1.0 / 479_001_600.0; N];
    for c in C {
        for i in 0..N {
            p[i] = p[i] * r[i] + c;
        }
    }
    for i in 0..N {
        let ni = (t[i].to_bits() as i64).wrapping_sub(SHIFT.to_bits() as i64);
        let e = p[i] * f64::from_bits(((ni + 1023) << 52) as u64);
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
    use super::{exp_nonpos, exp_sweep};

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
