//! Microstructure features sampled on a time grid while a recording is replayed.
//!
//! At each grid time g (start, start + every, ... < end) the book is the one after every
//! event stamped at or before g. Per sample:
//! - mid = (best bid + best ask) / 2, spread = best ask - best bid;
//! - microprice = (ask * bid size + bid * ask size) / (bid size + ask size);
//! - depth within b bps: bid size priced >= mid * (1 - b/1e4), ask size <= mid * (1 + b/1e4);
//! - imbalance = (bid size - ask size) / (bid size + ask size) at the best levels;
//! - order-flow imbalance (Cont, Kukanov and Stoikov 2014): the sum over the events in
//!   (g - every, g] of e = 1{Pb >= Pb'} qb - 1{Pb <= Pb'} qb' - 1{Pa <= Pa'} qa +
//!   1{Pa >= Pa'} qa', primes before the event; a side that is empty before or after an
//!   event adds nothing. The first sample has no full interval behind it: NaN.
//!
//! A sample with an empty side is NaN for every price measure.

use super::replay::{Event, Recording};
use super::{Book, Level};
use crate::error::{Result, invalid};

pub const MAX_SAMPLES: i64 = 10_000_000;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Features {
    pub ts: Vec<i64>,
    pub mid: Vec<f64>,
    pub spread: Vec<f64>,
    pub microprice: Vec<f64>,
    pub imbalance: Vec<f64>,
    pub ofi: Vec<f64>,
    /// One column per requested bps value.
    pub depth_bid: Vec<Vec<f64>>,
    pub depth_ask: Vec<Vec<f64>>,
}

/// The CKS contribution of one event, from the best levels before and after it.
#[inline]
fn flow(before: (Option<Level>, Option<Level>), after: (Option<Level>, Option<Level>)) -> f64 {
    let mut e = 0.0;
    if let (Some(b0), Some(b1)) = (before.0, after.0) {
        if b1.price >= b0.price {
            e += b1.size;
        }
        if b1.price <= b0.price {
            e -= b0.size;
        }
    }
    if let (Some(a0), Some(a1)) = (before.1, after.1) {
        if a1.price <= a0.price {
            e -= a1.size;
        }
        if a1.price >= a0.price {
            e += a0.size;
        }
    }
    e
}

fn tops(book: &Book) -> (Option<Level>, Option<Level>) {
    (book.bids.best(), book.asks.best())
}

fn sample(book: &Book, bps: &[f64], out: &mut Features) {
    let (bid, ask) = tops(book);
    let nan = f64::NAN;
    let (mid, spread, micro, imb) = match (bid, ask) {
        (Some(b), Some(a)) => {
            let q = b.size + a.size;
            (
                0.5 * (b.price + a.price),
                a.price - b.price,
                (a.price * b.size + b.price * a.size) / q,
                (b.size - a.size) / q,
            )
        }
        _ => (nan, nan, nan, nan),
    };
    out.mid.push(mid);
    out.spread.push(spread);
    out.microprice.push(micro);
    out.imbalance.push(imb);
    for (k, b) in bps.iter().enumerate() {
        let (db, da) = if mid.is_finite() {
            (
                book.bids.size_within(mid * (1.0 - b / 1e4)),
                book.asks.size_within(mid * (1.0 + b / 1e4)),
            )
        } else {
            (nan, nan)
        };
        out.depth_bid[k].push(db);
        out.depth_ask[k].push(da);
    }
}

/// Features of the recording on the grid start, start + every, ... (< end), all in µs.
pub fn features(
    rec: &Recording<'_>,
    start: i64,
    end: i64,
    every: i64,
    bps: &[f64],
) -> Result<Features> {
    rec.check()?;
    if every <= 0 {
        return Err(invalid("every must be > 0"));
    }
    if end <= start {
        return Err(invalid("end must be after start"));
    }
    let n = (end - start - 1) / every + 1;
    if n > MAX_SAMPLES {
        return Err(invalid(format!(
            "{n} samples asked; at most {MAX_SAMPLES}: use a longer interval"
        )));
    }
    if let Some(b) = bps.iter().find(|b| !(b.is_finite() && **b > 0.0)) {
        return Err(invalid(format!(
            "depth bands must be finite bps > 0, got {b}"
        )));
    }
    let Some(first) = rec.snapshot_before(start) else {
        return Err(invalid(match rec.snap_ts.first() {
            Some(s) => format!("the recording starts at {s} µs, after the window start"),
            None => "the recording holds no snapshot".to_string(),
        }));
    };
    let n = n as usize;
    let mut out = Features {
        ts: Vec::with_capacity(n),
        depth_bid: vec![Vec::with_capacity(n); bps.len()],
        depth_ask: vec![Vec::with_capacity(n); bps.len()],
        ..Features::default()
    };
    let mut book = Book::new();
    rec.load(&mut book, first);
    let (mut d, mut s) = (rec.first_delta_after(first), first + 1);
    let mut acc = 0.0;
    for k in 0..n {
        let g = start + k as i64 * every;
        while let Some((event, ts)) = rec.next(d, s) {
            if ts > g {
                break;
            }
            let before = tops(&book);
            match event {
                Event::Delta(i) => {
                    book.set(rec.delta_side[i], rec.delta_price[i], rec.delta_size[i]);
                    d += 1;
                }
                Event::Snapshot(i) => {
                    rec.load(&mut book, i);
                    d = d.max(rec.first_delta_after(i));
                    s += 1;
                }
            }
            acc += flow(before, tops(&book));
        }
        out.ts.push(g);
        out.ofi.push(if k == 0 { f64::NAN } else { acc });
        acc = 0.0;
        sample(&book, bps, &mut out);
    }
    Ok(out)
}
