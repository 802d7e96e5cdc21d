//! Byte-budgeted hot-tier cache for market data.
//!
//! Two eviction policies over the same byte budget:
//! - `S3Fifo` (Yang et al., SOSP 2023): a small FIFO (10% of the budget) that
//!   filters one-hit wonders, a main FIFO with a 2-bit frequency counter and
//!   lazy promotion, and a ghost queue of recently evicted keys so that a key
//!   coming back goes straight to main. Hits only bump a counter.
//! - `Lru`: plain least-recently-used, kept as the baseline the benchmark
//!   compares against.
//!
//! Every entry has a weight in bytes given by the caller; the cache never
//! holds more than `capacity` bytes. Values are generic so the binding can
//! store Python objects and hand them back without copying.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use crate::error::{Result, invalid};

/// Which eviction policy a cache runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    S3Fifo,
    Lru,
}

impl Policy {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "s3fifo" => Ok(Policy::S3Fifo),
            "lru" => Ok(Policy::Lru),
            other => Err(invalid(format!(
                "unknown cache policy {other:?}; choose \"s3fifo\" or \"lru\""
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Policy::S3Fifo => "s3fifo",
            Policy::Lru => "lru",
        }
    }
}

/// Counters a cache keeps about itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub hits: u64,
    pub misses: u64,
    pub inserts: u64,
    pub evictions: u64,
    pub rejected: u64,
    pub bytes: u64,
    pub entries: u64,
    pub capacity: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Queue {
    Small,
    Main,
}

struct Slot<V> {
    value: V,
    weight: u64,
    freq: u8,
    queue: Queue,
    /// Position stamp: a queue record whose stamp differs is stale.
    stamp: u64,
}

/// A byte-budgeted cache with S3-FIFO or LRU eviction.
pub struct WeightedCache<K, V> {
    policy: Policy,
    capacity: u64,
    small_capacity: u64,
    map: HashMap<K, Slot<V>>,
    small: VecDeque<(K, u64)>,
    main: VecDeque<(K, u64)>,
    small_bytes: u64,
    main_bytes: u64,
    ghost: VecDeque<(K, u64, u64)>,
    ghost_map: HashMap<K, u64>,
    ghost_bytes: u64,
    next_stamp: u64,
    stats: Stats,
}

const MAX_FREQ: u8 = 3;

impl<K: Hash + Eq + Clone, V> WeightedCache<K, V> {
    /// A cache holding at most `capacity` bytes of values.
    pub fn new(capacity: u64, policy: Policy) -> Result<Self> {
        if capacity == 0 {
            return Err(invalid("cache capacity must be > 0 bytes"));
        }
        Ok(Self {
            policy,
            capacity,
            small_capacity: (capacity / 10).max(1),
            map: HashMap::new(),
            small: VecDeque::new(),
            main: VecDeque::new(),
            small_bytes: 0,
            main_bytes: 0,
            ghost: VecDeque::new(),
            ghost_map: HashMap::new(),
            ghost_bytes: 0,
            next_stamp: 0,
            stats: Stats {
                capacity,
                ..Stats::default()
            },
        })
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn bytes(&self) -> u64 {
        self.small_bytes + self.main_bytes
    }

    pub fn stats(&self) -> Stats {
        Stats {
            bytes: self.bytes(),
            entries: self.map.len() as u64,
            ..self.stats
        }
    }

    pub fn reset_counters(&mut self) {
        self.stats = Stats {
            capacity: self.capacity,
            ..Stats::default()
        };
    }

    pub fn contains(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }

    fn stamp(&mut self) -> u64 {
        self.next_stamp += 1;
        self.next_stamp
    }

    /// Look a key up, counting a hit or a miss.
    pub fn get(&mut self, key: &K) -> Option<&V> {
        if !self.map.contains_key(key) {
            self.stats.misses += 1;
            return None;
        }
        self.stats.hits += 1;
        if self.policy == Policy::Lru {
            let stamp = self.stamp();
            self.main.push_back((key.clone(), stamp));
            if let Some(slot) = self.map.get_mut(key) {
                slot.stamp = stamp;
            }
            // Lazy LRU leaves stale records behind; keep the queue bounded.
            if self.main.len() > 2 * self.map.len() + 64 {
                self.compact_lru();
            }
        } else if let Some(slot) = self.map.get_mut(key)
            && slot.freq < MAX_FREQ
        {
            slot.freq += 1;
        }
        self.map.get(key).map(|s| &s.value)
    }

    fn compact_lru(&mut self) {
        let map = &self.map;
        self.main
            .retain(|(k, stamp)| map.get(k).is_some_and(|s| s.stamp == *stamp));
    }

    /// Insert or replace a value weighing `weight` bytes. Returns false (and
    /// stores nothing) when the value alone exceeds the budget.
    pub fn insert(&mut self, key: K, value: V, weight: u64) -> bool {
        let weight = weight.max(1);
        if weight > self.capacity {
            self.stats.rejected += 1;
            self.remove(&key);
            return false;
        }
        self.stats.inserts += 1;
        if let Some(slot) = self.map.get_mut(&key) {
            let old = slot.weight;
            slot.value = value;
            slot.weight = weight;
            match slot.queue {
                Queue::Small => self.small_bytes = self.small_bytes - old + weight,
                Queue::Main => self.main_bytes = self.main_bytes - old + weight,
            }
        } else {
            let stamp = self.stamp();
            let to_main = self.policy == Policy::Lru || self.ghost_map.remove(&key).is_some();
            let queue = if to_main { Queue::Main } else { Queue::Small };
            match queue {
                Queue::Small => {
                    self.small.push_back((key.clone(), stamp));
                    self.small_bytes += weight;
                }
                Queue::Main => {
                    self.main.push_back((key.clone(), stamp));
                    self.main_bytes += weight;
                }
            }
            self.map.insert(
                key,
                Slot {
                    value,
                    weight,
                    freq: 0,
                    queue,
                    stamp,
                },
            );
        }
        while self.bytes() > self.capacity {
            if !self.evict_one() {
                break;
            }
        }
        true
    }

    /// Drop a key; returns whether it was present.
    pub fn remove(&mut self, key: &K) -> bool {
        match self.map.remove(key) {
            Some(slot) => {
                self.unaccount(&slot);
                true
            }
            None => false,
        }
    }

    /// Drop every key matching `pred`; returns how many went.
    pub fn remove_if(&mut self, mut pred: impl FnMut(&K) -> bool) -> usize {
        let doomed: Vec<K> = self.map.keys().filter(|k| pred(k)).cloned().collect();
        for k in &doomed {
            self.remove(k);
        }
        doomed.len()
    }

    pub fn clear(&mut self) {
        self.map.clear();
        self.small.clear();
        self.main.clear();
        self.ghost.clear();
        self.ghost_map.clear();
        self.small_bytes = 0;
        self.main_bytes = 0;
        self.ghost_bytes = 0;
    }

    fn unaccount(&mut self, slot: &Slot<V>) {
        match slot.queue {
            Queue::Small => self.small_bytes -= slot.weight,
            Queue::Main => self.main_bytes -= slot.weight,
        }
    }

    fn evict_one(&mut self) -> bool {
        match self.policy {
            Policy::Lru => self.evict_main(),
            Policy::S3Fifo => {
                let small_first = self.small_bytes > self.small_capacity || self.main_bytes == 0;
                if small_first {
                    self.evict_small() || self.evict_main()
                } else {
                    let evicted = self.evict_main();
                    evicted || self.evict_small()
                }
            }
        }
    }

    /// Pop the small queue's head: promote it to main if it was hit, else
    /// evict it and remember its key in the ghost queue.
    fn evict_small(&mut self) -> bool {
        while let Some((key, stamp)) = self.small.pop_front() {
            let Some(slot) = self.map.get_mut(&key) else {
                continue;
            };
            if slot.stamp != stamp || slot.queue != Queue::Small {
                continue;
            }
            if slot.freq > 0 {
                slot.freq = 0;
                slot.queue = Queue::Main;
                let weight = slot.weight;
                self.small_bytes -= weight;
                self.main_bytes += weight;
                self.main.push_back((key, stamp));
                return true;
            }
            let slot = self.map.remove(&key).expect("slot present");
            self.small_bytes -= slot.weight;
            self.stats.evictions += 1;
            self.remember_ghost(key, slot.weight);
            return true;
        }
        false
    }

    /// Pop main's head: S3-FIFO reinserts it with one less credit if it was
    /// hit; LRU (and a cold S3-FIFO entry) is evicted.
    fn evict_main(&mut self) -> bool {
        while let Some((key, stamp)) = self.main.pop_front() {
            let Some(slot) = self.map.get_mut(&key) else {
                continue;
            };
            if slot.stamp != stamp || slot.queue != Queue::Main {
                continue;
            }
            if self.policy == Policy::S3Fifo && slot.freq > 0 {
                slot.freq -= 1;
                self.main.push_back((key, stamp));
                continue;
            }
            let slot = self.map.remove(&key).expect("slot present");
            self.main_bytes -= slot.weight;
            self.stats.evictions += 1;
            return true;
        }
        false
    }

    fn remember_ghost(&mut self, key: K, weight: u64) {
        let id = self.stamp();
        self.ghost_map.insert(key.clone(), id);
        self.ghost.push_back((key, id, weight));
        self.ghost_bytes += weight;
        // The ghost queue remembers about as many bytes as main can hold.
        let limit = self.capacity - self.small_capacity.min(self.capacity);
        while self.ghost_bytes > limit.max(1) {
            let Some((k, gid, w)) = self.ghost.pop_front() else {
                break;
            };
            self.ghost_bytes -= w;
            if self.ghost_map.get(&k) == Some(&gid) {
                self.ghost_map.remove(&k);
            }
        }
    }
}

/// Replay a trace of `(key, weight)` accesses (get, then insert on a miss)
/// and return `(hits, misses)`. Used to compare policies on recorded traces.
pub fn simulate(
    keys: &[u64],
    weights: &[u64],
    capacity: u64,
    policy: Policy,
) -> Result<(u64, u64)> {
    if keys.len() != weights.len() {
        return Err(invalid(format!(
            "keys and weights differ in length ({} vs {})",
            keys.len(),
            weights.len()
        )));
    }
    let mut cache: WeightedCache<u64, ()> = WeightedCache::new(capacity, policy)?;
    for (&k, &w) in keys.iter().zip(weights) {
        if cache.get(&k).is_none() {
            cache.insert(k, (), w);
        }
    }
    let s = cache.stats();
    Ok((s.hits, s.misses))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn both() -> [Policy; 2] {
        [Policy::S3Fifo, Policy::Lru]
    }

    #[test]
    fn never_exceeds_budget() {
        for policy in both() {
            let mut c: WeightedCache<u64, u64> = WeightedCache::new(1000, policy).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            for i in 0..10_000u64 {
                let k = rng.random_range(0..300u64);
                if c.get(&k).is_none() {
                    c.insert(k, i, rng.random_range(1..120u64));
                }
                assert!(c.bytes() <= 1000, "{policy:?} over budget: {}", c.bytes());
            }
            let s = c.stats();
            assert_eq!(s.hits + s.misses, 10_000);
            assert!(s.evictions > 0);
        }
    }

    #[test]
    fn get_returns_what_was_put_and_replace_updates() {
        let mut c: WeightedCache<String, Vec<u8>> =
            WeightedCache::new(1 << 20, Policy::S3Fifo).unwrap();
        assert!(c.insert("a".into(), vec![1, 2, 3], 3));
        assert_eq!(c.get(&"a".to_string()), Some(&vec![1, 2, 3]));
        assert!(c.insert("a".into(), vec![9], 1));
        assert_eq!(c.get(&"a".to_string()), Some(&vec![9]));
        assert_eq!(c.bytes(), 1);
        assert!(c.remove(&"a".to_string()));
        assert_eq!(c.get(&"a".to_string()), None);
        assert_eq!(c.bytes(), 0);
    }

    #[test]
    fn oversized_value_is_rejected() {
        let mut c: WeightedCache<u32, ()> = WeightedCache::new(10, Policy::S3Fifo).unwrap();
        assert!(!c.insert(1, (), 11));
        assert_eq!(c.stats().rejected, 1);
        assert!(c.is_empty());
        assert!(WeightedCache::<u32, ()>::new(0, Policy::Lru).is_err());
    }

    #[test]
    fn remove_if_drops_matching_keys() {
        let mut c: WeightedCache<String, ()> = WeightedCache::new(100, Policy::S3Fifo).unwrap();
        for k in ["q|a|1", "q|a|2", "q|b|1"] {
            c.insert(k.to_string(), (), 1);
        }
        assert_eq!(c.remove_if(|k| k.starts_with("q|a|")), 2);
        assert_eq!(c.len(), 1);
        assert_eq!(c.bytes(), 1);
    }

    #[test]
    fn lru_evicts_least_recent() {
        let mut c: WeightedCache<u32, ()> = WeightedCache::new(3, Policy::Lru).unwrap();
        for k in 0..3 {
            c.insert(k, (), 1);
        }
        assert!(c.get(&0).is_some());
        c.insert(3, (), 1);
        assert!(c.contains(&0));
        assert!(!c.contains(&1));
    }

    #[test]
    fn s3fifo_resists_a_scan() {
        // A hot working set that fits, then a long scan of one-hit wonders.
        let mut c: WeightedCache<u32, ()> = WeightedCache::new(100, Policy::S3Fifo).unwrap();
        for round in 0..5 {
            for k in 0..50 {
                if c.get(&k).is_none() {
                    c.insert(k, (), 1);
                }
            }
            let _ = round;
        }
        for k in 1000..1500 {
            if c.get(&k).is_none() {
                c.insert(k, (), 1);
            }
        }
        let survivors = (0..50).filter(|k| c.contains(k)).count();
        assert!(
            survivors >= 45,
            "only {survivors} hot keys survived the scan"
        );
    }

    #[test]
    fn s3fifo_beats_lru_on_zipf_with_scans() {
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let n = 2000u64;
        let weights: Vec<f64> = (1..=n).map(|i| 1.0 / (i as f64).powf(0.9)).collect();
        let total: f64 = weights.iter().sum();
        let cdf: Vec<f64> = weights
            .iter()
            .scan(0.0, |acc, w| {
                *acc += w / total;
                Some(*acc)
            })
            .collect();
        let mut keys = Vec::new();
        let mut scan_key = 1_000_000u64;
        for _ in 0..200_000 {
            if rng.random_range(0.0..1.0) < 0.2 {
                scan_key += 1;
                keys.push(scan_key);
            } else {
                let u: f64 = rng.random_range(0.0..1.0);
                let k = cdf.partition_point(|&c| c < u) as u64;
                keys.push(k);
            }
        }
        let w = vec![1u64; keys.len()];
        let (s3, _) = simulate(&keys, &w, 200, Policy::S3Fifo).unwrap();
        let (lru, _) = simulate(&keys, &w, 200, Policy::Lru).unwrap();
        assert!(s3 > lru, "s3fifo hits {s3} <= lru hits {lru}");
    }

    #[test]
    fn simulate_checks_lengths_and_policy_names() {
        assert!(simulate(&[1, 2], &[1], 10, Policy::Lru).is_err());
        assert_eq!(Policy::parse("s3fifo").unwrap(), Policy::S3Fifo);
        assert!(Policy::parse("arc").is_err());
        assert_eq!(Policy::Lru.name(), "lru");
    }
}
