//! A recorded book: periodic snapshots plus the level updates between them, in sequence.
//!
//! Every delta carries a sequence number, strictly increasing. A snapshot carries the
//! sequence of the last delta applied before it was taken, so replay from snapshot `s`
//! applies the deltas with seq > s.seq. Times are µs since the epoch, non-decreasing.

use super::{Book, Level, check_update};
use crate::error::{Result, invalid};

/// Borrowed column arrays of a recording (one venue/symbol).
#[derive(Debug, Clone, Copy)]
pub struct Recording<'a> {
    pub snap_ts: &'a [i64],
    pub snap_seq: &'a [u64],
    /// Snapshot i holds levels `snap_offsets[i]..snap_offsets[i + 1]` (len = snapshots + 1).
    pub snap_offsets: &'a [usize],
    pub snap_side: &'a [u8],
    pub snap_price: &'a [f64],
    pub snap_size: &'a [f64],
    pub delta_ts: &'a [i64],
    pub delta_seq: &'a [u64],
    pub delta_side: &'a [u8],
    pub delta_price: &'a [f64],
    pub delta_size: &'a [f64],
}

/// One event of the merged replay order.
pub(super) enum Event {
    Delta(usize),
    Snapshot(usize),
}

impl<'a> Recording<'a> {
    /// Check that the columns fit together (lengths and offsets): O(snapshots).
    pub fn check_shape(&self) -> Result<()> {
        let ns = self.snap_ts.len();
        if self.snap_seq.len() != ns || self.snap_offsets.len() != ns + 1 {
            return Err(invalid(
                "snapshot columns differ in length (offsets need one more entry)",
            ));
        }
        let nl = self.snap_side.len();
        if self.snap_price.len() != nl || self.snap_size.len() != nl {
            return Err(invalid("snapshot level columns differ in length"));
        }
        if self.snap_offsets[0] != 0 || self.snap_offsets[ns] != nl {
            return Err(invalid(
                "snapshot offsets must start at 0 and end at the level count",
            ));
        }
        if self.snap_offsets.windows(2).any(|w| w[1] < w[0]) {
            return Err(invalid("snapshot offsets must not decrease"));
        }
        let nd = self.delta_ts.len();
        if [
            self.delta_seq.len(),
            self.delta_side.len(),
            self.delta_price.len(),
            self.delta_size.len(),
        ]
        .iter()
        .any(|&n| n != nd)
        {
            return Err(invalid("delta columns differ in length"));
        }
        Ok(())
    }

    /// `check_shape` plus order and values of every row: O(rows).
    pub fn check(&self) -> Result<()> {
        self.check_shape()?;
        let (nl, nd) = (self.snap_side.len(), self.delta_ts.len());
        if self.snap_ts.windows(2).any(|w| w[1] < w[0])
            || self.snap_seq.windows(2).any(|w| w[1] < w[0])
        {
            return Err(invalid("snapshots must be in time and sequence order"));
        }
        if self.delta_ts.windows(2).any(|w| w[1] < w[0]) {
            return Err(invalid("deltas must be in time order"));
        }
        if self.delta_seq.windows(2).any(|w| w[1] <= w[0]) {
            return Err(invalid("delta sequence numbers must increase"));
        }
        for i in 0..nl {
            check_update(self.snap_side[i], self.snap_price[i], self.snap_size[i])
                .map_err(|e| invalid(format!("snapshot level {i}: {e}")))?;
        }
        for i in 0..nd {
            check_update(self.delta_side[i], self.delta_price[i], self.delta_size[i])
                .map_err(|e| invalid(format!("delta {i}: {e}")))?;
        }
        Ok(())
    }

    /// Index of the last snapshot taken at or before `t`.
    pub(super) fn snapshot_before(&self, t: i64) -> Option<usize> {
        self.snap_ts.partition_point(|&s| s <= t).checked_sub(1)
    }

    /// Replace `book` with snapshot `i`.
    pub(super) fn load(&self, book: &mut Book, i: usize) {
        book.clear();
        for j in self.snap_offsets[i]..self.snap_offsets[i + 1] {
            book.set(self.snap_side[j], self.snap_price[j], self.snap_size[j]);
        }
    }

    /// The first delta after snapshot `i`.
    pub(super) fn first_delta_after(&self, i: usize) -> usize {
        let seq = self.snap_seq[i];
        self.delta_seq.partition_point(|&s| s <= seq)
    }

    /// The next event (delta index `d`, snapshot index `s`) in replay order: a delta whose
    /// seq is at most the snapshot's comes before it.
    pub(super) fn next(&self, d: usize, s: usize) -> Option<(Event, i64)> {
        let delta = (d < self.delta_ts.len()).then(|| (self.delta_seq[d], self.delta_ts[d]));
        let snap = (s < self.snap_ts.len()).then(|| (self.snap_seq[s], self.snap_ts[s]));
        match (delta, snap) {
            (Some((dseq, dts)), Some((sseq, _))) if dseq <= sseq => Some((Event::Delta(d), dts)),
            (_, Some((_, sts))) => Some((Event::Snapshot(s), sts)),
            (Some((_, dts)), None) => Some((Event::Delta(d), dts)),
            (None, None) => None,
        }
    }
}

/// The book as it was at `t` (after every event stamped at or before `t`): the best
/// `depth` bids (descending) and asks (ascending), and the sequence of the last delta.
///
/// Only the rows it replays are checked (the snapshot and the deltas after it up to `t`),
/// so the cost is that segment, not the whole recording.
pub fn book_at(rec: &Recording<'_>, t: i64, depth: usize) -> Result<(Vec<Level>, Vec<Level>, u64)> {
    rec.check_shape()?;
    if depth == 0 {
        return Err(invalid("depth must be >= 1"));
    }
    let Some(i) = rec.snapshot_before(t) else {
        return Err(invalid(match rec.snap_ts.first() {
            Some(first) => format!("the recording starts at {first} µs, after {t}"),
            None => "the recording holds no snapshot".to_string(),
        }));
    };
    for j in rec.snap_offsets[i]..rec.snap_offsets[i + 1] {
        check_update(rec.snap_side[j], rec.snap_price[j], rec.snap_size[j])
            .map_err(|e| invalid(format!("snapshot level {j}: {e}")))?;
    }
    let mut book = Book::new();
    rec.load(&mut book, i);
    let mut seq = rec.snap_seq[i];
    let mut d = rec.first_delta_after(i);
    while d < rec.delta_ts.len() && rec.delta_ts[d] <= t {
        let (side, price, size) = (rec.delta_side[d], rec.delta_price[d], rec.delta_size[d]);
        check_update(side, price, size).map_err(|e| invalid(format!("delta {d}: {e}")))?;
        if rec.delta_seq[d] <= seq {
            return Err(invalid(format!("delta {d} is out of sequence")));
        }
        book.set(side, price, size);
        seq = rec.delta_seq[d];
        d += 1;
    }
    Ok((
        book.bids.top(depth).collect(),
        book.asks.top(depth).collect(),
        seq,
    ))
}
