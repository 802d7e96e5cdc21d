//! Bindings: the byte-budgeted hot-tier cache.
//!
//! `HotCache` stores Python objects (the store puts Polars frames in it) with
//! a caller-given weight in bytes. A hit hands back the same object, a new
//! reference and no copy of the data.

use std::sync::Mutex;

use kernels::cache::{Policy, WeightedCache};
use numpy::PyReadonlyArray1;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::to_py;

/// A byte-budgeted cache of Python objects keyed by str (S3-FIFO or LRU).
#[pyclass(frozen, module = "core._native")]
struct HotCache {
    inner: Mutex<WeightedCache<String, Py<PyAny>>>,
}

impl HotCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, WeightedCache<String, Py<PyAny>>> {
        // A panic while holding the lock cannot leave the cache half-updated in
        // a way that breaks its invariants, so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[pymethods]
impl HotCache {
    #[new]
    #[pyo3(signature = (capacity_bytes, policy = "s3fifo"))]
    fn new(capacity_bytes: u64, policy: &str) -> PyResult<Self> {
        let policy = Policy::parse(policy).map_err(to_py)?;
        let cache = WeightedCache::new(capacity_bytes, policy).map_err(to_py)?;
        Ok(Self {
            inner: Mutex::new(cache),
        })
    }

    /// The cached object, or None (counts a hit or a miss).
    fn get(&self, py: Python<'_>, key: &str) -> Option<Py<PyAny>> {
        self.lock().get(&key.to_owned()).map(|v| v.clone_ref(py))
    }

    /// Store `value` weighing `weight` bytes; False if it alone exceeds the budget.
    fn put(&self, key: String, value: Py<PyAny>, weight: u64) -> bool {
        self.lock().insert(key, value, weight)
    }

    fn remove(&self, key: &str) -> bool {
        self.lock().remove(&key.to_owned())
    }

    /// Drop every key starting with `prefix`; returns how many went.
    fn remove_prefix(&self, prefix: &str) -> usize {
        self.lock().remove_if(|k| k.starts_with(prefix))
    }

    fn clear(&self) {
        self.lock().clear();
    }

    fn reset_counters(&self) {
        self.lock().reset_counters();
    }

    fn __len__(&self) -> usize {
        self.lock().len()
    }

    fn __contains__(&self, key: &str) -> bool {
        self.lock().contains(&key.to_owned())
    }

    #[getter]
    fn policy(&self) -> &'static str {
        self.lock().policy().name()
    }

    /// hits, misses, inserts, evictions, rejected, bytes, entries, capacity.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.lock().stats();
        let d = PyDict::new(py);
        d.set_item("hits", s.hits)?;
        d.set_item("misses", s.misses)?;
        d.set_item("inserts", s.inserts)?;
        d.set_item("evictions", s.evictions)?;
        d.set_item("rejected", s.rejected)?;
        d.set_item("bytes", s.bytes)?;
        d.set_item("entries", s.entries)?;
        d.set_item("capacity", s.capacity)?;
        Ok(d)
    }
}

/// Replay an access trace (get, insert on miss) and return (hits, misses).
#[pyfunction]
#[pyo3(signature = (keys, weights, capacity_bytes, policy = "s3fifo"))]
fn cache_simulate(
    py: Python<'_>,
    keys: PyReadonlyArray1<'_, u64>,
    weights: PyReadonlyArray1<'_, u64>,
    capacity_bytes: u64,
    policy: &str,
) -> PyResult<(u64, u64)> {
    let policy = Policy::parse(policy).map_err(to_py)?;
    let keys = keys
        .as_slice()
        .map_err(|_| PyValueError::new_err("keys must be a contiguous uint64 array"))?
        .to_vec();
    let weights = weights
        .as_slice()
        .map_err(|_| PyValueError::new_err("weights must be a contiguous uint64 array"))?
        .to_vec();
    py.detach(|| kernels::cache::simulate(&keys, &weights, capacity_bytes, policy))
        .map_err(to_py)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<HotCache>()?;
    m.add_function(wrap_pyfunction!(cache_simulate, m)?)?;
    Ok(())
}
