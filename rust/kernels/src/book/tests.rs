use std::collections::BTreeMap;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

/// A reference book: price ticks -> size in two ordered maps.
#[derive(Default, Clone)]
struct Reference {
    bids: BTreeMap<i64, f64>,
    asks: BTreeMap<i64, f64>,
}

impl Reference {
    fn set(&mut self, side: u8, tick: i64, size: f64) {
        let map = if side == BID {
            &mut self.bids
        } else {
            &mut self.asks
        };
        if size == 0.0 {
            map.remove(&tick);
        } else {
            map.insert(tick, size);
        }
    }

    fn top(&self, depth: usize) -> (Vec<Level>, Vec<Level>) {
        let lv = |(t, s): (&i64, &f64)| Level {
            price: *t as f64 * 0.5,
            size: *s,
        };
        (
            self.bids.iter().rev().take(depth).map(lv).collect(),
            self.asks.iter().take(depth).map(lv).collect(),
        )
    }
}

struct Owned {
    snap_ts: Vec<i64>,
    snap_seq: Vec<u64>,
    snap_offsets: Vec<usize>,
    snap_side: Vec<u8>,
    snap_price: Vec<f64>,
    snap_size: Vec<f64>,
    delta_ts: Vec<i64>,
    delta_seq: Vec<u64>,
    delta_side: Vec<u8>,
    delta_price: Vec<f64>,
    delta_size: Vec<f64>,
    /// the reference book after each delta
    states: Vec<Reference>,
}

impl Owned {
    fn rec(&self) -> Recording<'_> {
        Recording {
            snap_ts: &self.snap_ts,
            snap_seq: &self.snap_seq,
            snap_offsets: &self.snap_offsets,
            snap_side: &self.snap_side,
            snap_price: &self.snap_price,
            snap_size: &self.snap_size,
            delta_ts: &self.delta_ts,
            delta_seq: &self.delta_seq,
            delta_side: &self.delta_side,
            delta_price: &self.delta_price,
            delta_size: &self.delta_size,
        }
    }

    fn snapshot(&mut self, ts: i64, seq: u64, book: &Reference) {
        self.snap_ts.push(ts);
        self.snap_seq.push(seq);
        for (side, map) in [(BID, &book.bids), (ASK, &book.asks)] {
            for (t, s) in map {
                self.snap_side.push(side);
                self.snap_price.push(*t as f64 * 0.5);
                self.snap_size.push(*s);
            }
        }
        self.snap_offsets.push(self.snap_side.len());
    }
}

/// A random walk of a book around a moving mid: inserts, size changes and deletes near the
/// top, a snapshot every `snap_every` deltas, several deltas sharing a timestamp.
fn recording(n: usize, snap_every: usize, seed: u64) -> Owned {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut book = Reference::default();
    let mut mid: i64 = 200_000;
    for i in 1..=30 {
        book.set(BID, mid - i, 1.0 + i as f64);
        book.set(ASK, mid + i, 2.0 + i as f64);
    }
    let mut o = Owned {
        snap_ts: vec![],
        snap_seq: vec![],
        snap_offsets: vec![0],
        snap_side: vec![],
        snap_price: vec![],
        snap_size: vec![],
        delta_ts: vec![],
        delta_seq: vec![],
        delta_side: vec![],
        delta_price: vec![],
        delta_size: vec![],
        states: vec![],
    };
    o.snapshot(1_000, 0, &book);
    let mut ts = 1_000;
    for k in 0..n {
        if rng.random_range(0..3) == 0 {
            ts += rng.random_range(1..200);
        }
        if rng.random_range(0..50) == 0 {
            mid += rng.random_range(-3..=3);
        }
        let side = rng.random_range(0..2) as u8;
        let off = rng.random_range(1..40);
        let tick = if side == BID { mid - off } else { mid + off };
        let size = if rng.random_range(0..4) == 0 {
            0.0
        } else {
            rng.random_range(1..100) as f64 * 0.25
        };
        // keep the reference uncrossed, as a venue's book is
        let crosses = size > 0.0
            && ((side == BID && book.asks.keys().next().is_some_and(|a| tick >= *a))
                || (side == ASK && book.bids.keys().next_back().is_some_and(|b| tick <= *b)));
        if crosses {
            continue;
        }
        book.set(side, tick, size);
        let seq = k as u64 + 1;
        o.delta_ts.push(ts);
        o.delta_seq.push(seq);
        o.delta_side.push(side);
        o.delta_price.push(tick as f64 * 0.5);
        o.delta_size.push(size);
        o.states.push(book.clone());
        if (k + 1) % snap_every == 0 {
            o.snapshot(ts, seq, &book);
        }
    }
    o
}

#[test]
fn sides_stay_sorted_like_an_ordered_map() {
    let o = recording(20_000, usize::MAX, 1);
    let mut book = Book::new();
    let first = o.rec();
    first.load(&mut book, 0);
    for i in 0..o.delta_ts.len() {
        book.set(o.delta_side[i], o.delta_price[i], o.delta_size[i]);
        if i % 997 == 0 || i + 1 == o.delta_ts.len() {
            let (bids, asks) = o.states[i].top(usize::MAX);
            assert_eq!(
                book.bids.top(usize::MAX).collect::<Vec<_>>(),
                bids,
                "at {i}"
            );
            assert_eq!(
                book.asks.top(usize::MAX).collect::<Vec<_>>(),
                asks,
                "at {i}"
            );
        }
    }
    assert!(!book.crossed());
}

#[test]
fn book_at_equals_the_book_held_at_that_instant() {
    let o = recording(30_000, 1_000, 2);
    let rec = o.rec();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for _ in 0..200 {
        let i = rng.random_range(0..o.delta_ts.len());
        let t = o.delta_ts[i];
        // the live book at t is the one after the last delta stamped <= t
        let last = o.delta_ts.partition_point(|&x| x <= t) - 1;
        let (bids, asks, seq) = book_at(&rec, t, 50).unwrap();
        let (rb, ra) = o.states[last].top(50);
        assert_eq!((bids, asks), (rb, ra), "t={t}");
        assert_eq!(seq, o.delta_seq[last]);
    }
}

#[test]
fn book_at_before_the_first_snapshot_is_an_error() {
    let o = recording(100, 50, 3);
    let err = book_at(&o.rec(), 999, 10).unwrap_err();
    assert!(err.to_string().contains("starts at 1000"), "{err}");
    assert!(book_at(&o.rec(), 1_000, 0).is_err());
}

#[test]
fn bad_rows_are_refused_with_their_index() {
    let mut o = recording(100, 50, 4);
    o.delta_size[7] = f64::NAN;
    let err = o.rec().check().unwrap_err().to_string();
    assert!(err.contains("delta 7"), "{err}");
    let mut o = recording(100, 50, 4);
    o.delta_seq[5] = o.delta_seq[4];
    assert!(o.rec().check().is_err());
    let mut b = Book::new();
    assert!(b.apply_batch(&[0, 2], &[1.0, 1.0], &[1.0, 1.0]).is_err());
    assert!(b.bids.is_empty(), "a refused batch applies nothing");
}

/// Features computed the slow way from the reference states.
#[test]
fn features_match_a_plain_reference() {
    let o = recording(20_000, 2_000, 5);
    let rec = o.rec();
    let n = o.delta_ts.len();
    let (start, end, every) = (o.delta_ts[100], o.delta_ts[n - 500], 500);
    let bps = [10.0, 50.0];
    let f = features(&rec, start, end, every, &bps).unwrap();
    let at = |t: i64| o.delta_ts.partition_point(|&x| x <= t) - 1;
    let tops = |r: &Reference| {
        let (b, a) = r.top(1);
        (b[0], a[0])
    };
    for (k, &g) in f.ts.iter().enumerate() {
        let r = &o.states[at(g)];
        let (b, a) = tops(r);
        let mid = 0.5 * (b.price + a.price);
        assert_eq!(f.mid[k], mid);
        assert_eq!(f.spread[k], a.price - b.price);
        let q = b.size + a.size;
        assert!((f.microprice[k] - (a.price * b.size + b.price * a.size) / q).abs() < 1e-9);
        assert!((f.imbalance[k] - (b.size - a.size) / q).abs() < 1e-12);
        for (j, bp) in bps.iter().enumerate() {
            let lo = mid * (1.0 - bp / 1e4);
            let hi = mid * (1.0 + bp / 1e4);
            let db: f64 = r
                .bids
                .iter()
                .filter(|(t, _)| **t as f64 * 0.5 >= lo)
                .map(|x| x.1)
                .sum();
            let da: f64 = r
                .asks
                .iter()
                .filter(|(t, _)| **t as f64 * 0.5 <= hi)
                .map(|x| x.1)
                .sum();
            assert!((f.depth_bid[j][k] - db).abs() < 1e-9);
            assert!((f.depth_ask[j][k] - da).abs() < 1e-9);
        }
        if k == 0 {
            assert!(f.ofi[0].is_nan());
            continue;
        }
        // OFI: the sum of e over the deltas in (g - every, g]
        let (lo_i, hi_i) = (at(g - every), at(g));
        let mut e = 0.0;
        for i in lo_i + 1..=hi_i {
            let (b0, a0) = tops(&o.states[i - 1]);
            let (b1, a1) = tops(&o.states[i]);
            // Cont, Kukanov and Stoikov (2014), eq. (2)
            let ind = |c: bool| if c { 1.0 } else { 0.0 };
            e += ind(b1.price >= b0.price) * b1.size
                - ind(b1.price <= b0.price) * b0.size
                - ind(a1.price <= a0.price) * a1.size
                + ind(a1.price >= a0.price) * a0.size;
        }
        assert!(
            (f.ofi[k] - e).abs() < 1e-9,
            "ofi at {k}: {} vs {e}",
            f.ofi[k]
        );
    }
    assert_eq!(f.ts.len() as i64, (end - start - 1) / every + 1);
}

#[test]
fn feature_windows_are_checked() {
    let o = recording(100, 50, 6);
    let rec = o.rec();
    assert!(features(&rec, 2_000, 1_000, 10, &[10.0]).is_err());
    assert!(features(&rec, 1_000, 2_000, 0, &[10.0]).is_err());
    assert!(features(&rec, 1_000, 2_000, 10, &[-1.0]).is_err());
    assert!(features(&rec, 0, i64::MAX / 2, 1, &[10.0]).is_err());
}
