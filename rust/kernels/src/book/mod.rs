//! L2 order books: apply level updates, take snapshots, replay a recording, and measure it.
//!
//! A side is a vector of (price, size) levels kept sorted so the best level is LAST (bids
//! ascending, asks descending). Venues update mostly near the top, so an insert or delete
//! moves only the few levels above it, and the best level is one index away.

mod features;
mod replay;
#[cfg(test)]
mod tests;

pub use features::{Features, features};
pub use replay::{Recording, book_at};

use crate::error::{Result, invalid};

pub const BID: u8 = 0;
pub const ASK: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    pub price: f64,
    pub size: f64,
}

/// One side of a book, best level last.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Side {
    levels: Vec<Level>,
    descending: bool,
}

impl Side {
    fn new(descending: bool) -> Self {
        Side {
            levels: Vec::new(),
            descending,
        }
    }

    /// Index of `price`, or where it would go, in best-last order.
    #[inline]
    fn find(&self, price: f64) -> std::result::Result<usize, usize> {
        // Search from the top: most updates touch the first few levels.
        let n = self.levels.len();
        let worse = |p: f64| {
            if self.descending {
                p > price
            } else {
                p < price
            }
        };
        let mut i = n;
        let mut steps = 0;
        while i > 0 && steps < 8 {
            let p = self.levels[i - 1].price;
            if p == price {
                return Ok(i - 1);
            }
            if worse(p) {
                return Err(i);
            }
            i -= 1;
            steps += 1;
        }
        let head = &self.levels[..i];
        if self.descending {
            head.binary_search_by(|l| price.total_cmp(&l.price))
        } else {
            head.binary_search_by(|l| l.price.total_cmp(&price))
        }
    }

    /// Set the size at `price`; a zero size removes the level.
    #[inline]
    pub fn set(&mut self, price: f64, size: f64) {
        match self.find(price) {
            Ok(i) if size == 0.0 => {
                self.levels.remove(i);
            }
            Ok(i) => self.levels[i].size = size,
            Err(_) if size == 0.0 => {}
            Err(i) => self.levels.insert(i, Level { price, size }),
        }
    }

    pub fn best(&self) -> Option<Level> {
        self.levels.last().copied()
    }

    pub fn len(&self) -> usize {
        self.levels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// The best `depth` levels, best first.
    pub fn top(&self, depth: usize) -> impl Iterator<Item = Level> + '_ {
        self.levels.iter().rev().take(depth).copied()
    }

    /// Total size of the levels priced at or better than `limit`.
    pub fn size_within(&self, limit: f64) -> f64 {
        let mut total = 0.0;
        for l in self.levels.iter().rev() {
            let inside = if self.descending {
                l.price <= limit
            } else {
                l.price >= limit
            };
            if !inside {
                break;
            }
            total += l.size;
        }
        total
    }

    fn clear(&mut self) {
        self.levels.clear();
    }
}

/// An L2 book: bids and asks.
#[derive(Debug, Clone, PartialEq)]
pub struct Book {
    pub bids: Side,
    pub asks: Side,
}

impl Default for Book {
    fn default() -> Self {
        Self::new()
    }
}

/// A checked level update: finite price > 0, finite size >= 0, side BID or ASK.
pub fn check_update(side: u8, price: f64, size: f64) -> Result<()> {
    if side > ASK {
        return Err(invalid(format!(
            "side must be 0 (bid) or 1 (ask), got {side}"
        )));
    }
    if !(price.is_finite() && price > 0.0) {
        return Err(invalid(format!(
            "price must be finite and > 0, got {price}"
        )));
    }
    if !(size.is_finite() && size >= 0.0) {
        return Err(invalid(format!("size must be finite and >= 0, got {size}")));
    }
    Ok(())
}

impl Book {
    pub fn new() -> Self {
        Book {
            bids: Side::new(false),
            asks: Side::new(true),
        }
    }

    /// Set one level (size 0 deletes it). Inputs are trusted: check them with
    /// `check_update` or `apply_batch`.
    #[inline]
    pub fn set(&mut self, side: u8, price: f64, size: f64) {
        if side == BID {
            self.bids.set(price, size)
        } else {
            self.asks.set(price, size)
        }
    }

    /// Apply a batch of level updates in order; nothing is applied when one is invalid.
    pub fn apply_batch(&mut self, sides: &[u8], prices: &[f64], sizes: &[f64]) -> Result<()> {
        if sides.len() != prices.len() || sides.len() != sizes.len() {
            return Err(invalid(format!(
                "sides, prices and sizes differ in length ({}, {}, {})",
                sides.len(),
                prices.len(),
                sizes.len()
            )));
        }
        for i in 0..sides.len() {
            check_update(sides[i], prices[i], sizes[i])
                .map_err(|e| invalid(format!("update {i}: {e}")))?;
        }
        for i in 0..sides.len() {
            self.set(sides[i], prices[i], sizes[i]);
        }
        Ok(())
    }

    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }

    /// True when the best bid is at or above the best ask.
    pub fn crossed(&self) -> bool {
        matches!((self.bids.best(), self.asks.best()), (Some(b), Some(a)) if b.price >= a.price)
    }

    pub fn mid(&self) -> f64 {
        match (self.bids.best(), self.asks.best()) {
            (Some(b), Some(a)) => 0.5 * (b.price + a.price),
            _ => f64::NAN,
        }
    }
}
