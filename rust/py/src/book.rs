//! Bindings: L2 order books (apply, snapshot), replay of a recording and its features.

use kernels::book::{self, Book, Level, Recording};
use kernels::error::invalid;
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays::{slice1, view};
use crate::errors::to_py;

type Side<'py> = (Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>);

fn side_arrays<'py>(py: Python<'py>, levels: &[Level]) -> Side<'py> {
    let px: Vec<f64> = levels.iter().map(|l| l.price).collect();
    let sz: Vec<f64> = levels.iter().map(|l| l.size).collect();
    (px.into_pyarray(py), sz.into_pyarray(py))
}

/// A live L2 book: level updates in, best-first snapshots out.
#[pyclass(module = "core._native", name = "L2Book")]
struct L2Book {
    inner: Book,
}

#[pymethods]
impl L2Book {
    #[new]
    fn new() -> Self {
        L2Book { inner: Book::new() }
    }

    /// Apply updates in order (side 0 bid / 1 ask, size 0 removes); all or nothing.
    fn apply(
        &mut self,
        py: Python<'_>,
        sides: PyReadonlyArray1<'_, u8>,
        prices: PyReadonlyArray1<'_, f64>,
        sizes: PyReadonlyArray1<'_, f64>,
    ) -> PyResult<()> {
        let (s, p, q) = (view(&sides), slice1(&prices), slice1(&sizes));
        let book = &mut self.inner;
        py.detach(|| book.apply_batch(&s, &p, &q)).map_err(to_py)
    }

    /// (bid prices, bid sizes, ask prices, ask sizes), best first, `depth` levels a side.
    fn snapshot<'py>(&self, py: Python<'py>, depth: usize) -> (Side<'py>, Side<'py>) {
        let bids: Vec<Level> = self.inner.bids.top(depth).collect();
        let asks: Vec<Level> = self.inner.asks.top(depth).collect();
        (side_arrays(py, &bids), side_arrays(py, &asks))
    }

    fn clear(&mut self) {
        self.inner.clear();
    }

    fn crossed(&self) -> bool {
        self.inner.crossed()
    }

    fn mid(&self) -> f64 {
        self.inner.mid()
    }

    fn __len__(&self) -> usize {
        self.inner.bids.len() + self.inner.asks.len()
    }
}

/// The recording's columns, borrowed from numpy.
#[derive(FromPyObject)]
struct Columns<'py> {
    #[pyo3(item)]
    snap_ts: PyReadonlyArray1<'py, i64>,
    #[pyo3(item)]
    snap_seq: PyReadonlyArray1<'py, u64>,
    #[pyo3(item)]
    snap_offsets: PyReadonlyArray1<'py, u64>,
    #[pyo3(item)]
    snap_side: PyReadonlyArray1<'py, u8>,
    #[pyo3(item)]
    snap_price: PyReadonlyArray1<'py, f64>,
    #[pyo3(item)]
    snap_size: PyReadonlyArray1<'py, f64>,
    #[pyo3(item)]
    delta_ts: PyReadonlyArray1<'py, i64>,
    #[pyo3(item)]
    delta_seq: PyReadonlyArray1<'py, u64>,
    #[pyo3(item)]
    delta_side: PyReadonlyArray1<'py, u8>,
    #[pyo3(item)]
    delta_price: PyReadonlyArray1<'py, f64>,
    #[pyo3(item)]
    delta_size: PyReadonlyArray1<'py, f64>,
}

/// Run `f` on the borrowed recording with the GIL released.
fn with_recording<T: Send>(
    py: Python<'_>,
    c: &Columns<'_>,
    f: impl FnOnce(&Recording<'_>) -> kernels::Result<T> + Send,
) -> PyResult<T> {
    let offsets: Vec<usize> = view(&c.snap_offsets)
        .iter()
        .map(|&o| usize::try_from(o).map_err(|_| to_py(invalid("snapshot offset too large"))))
        .collect::<PyResult<_>>()?;
    let (snap_ts, snap_seq, snap_side) = (view(&c.snap_ts), view(&c.snap_seq), view(&c.snap_side));
    let (snap_price, snap_size) = (slice1(&c.snap_price), slice1(&c.snap_size));
    let (delta_ts, delta_seq, delta_side) =
        (view(&c.delta_ts), view(&c.delta_seq), view(&c.delta_side));
    let (delta_price, delta_size) = (slice1(&c.delta_price), slice1(&c.delta_size));
    let rec = Recording {
        snap_ts: &snap_ts,
        snap_seq: &snap_seq,
        snap_offsets: &offsets,
        snap_side: &snap_side,
        snap_price: &snap_price,
        snap_size: &snap_size,
        delta_ts: &delta_ts,
        delta_seq: &delta_seq,
        delta_side: &delta_side,
        delta_price: &delta_price,
        delta_size: &delta_size,
    };
    py.detach(|| f(&rec)).map_err(to_py)
}

/// The book at `t` (µs): ((bid px, bid sz), (ask px, ask sz), seq of the last change).
#[pyfunction]
fn book_at<'py>(
    py: Python<'py>,
    recording: Columns<'py>,
    t: i64,
    depth: usize,
) -> PyResult<(Side<'py>, Side<'py>, u64)> {
    let (bids, asks, seq) = with_recording(py, &recording, |r| book::book_at(r, t, depth))?;
    Ok((side_arrays(py, &bids), side_arrays(py, &asks), seq))
}

/// Features sampled every `every` µs over [start, end); `bps` the depth bands.
#[pyfunction]
fn book_features<'py>(
    py: Python<'py>,
    recording: Columns<'py>,
    start: i64,
    end: i64,
    every: i64,
    bps: Vec<f64>,
) -> PyResult<Bound<'py, PyDict>> {
    let f = with_recording(py, &recording, |r| {
        book::features(r, start, end, every, &bps)
    })?;
    let d = PyDict::new(py);
    d.set_item("ts", f.ts.into_pyarray(py))?;
    d.set_item("mid", f.mid.into_pyarray(py))?;
    d.set_item("spread", f.spread.into_pyarray(py))?;
    d.set_item("microprice", f.microprice.into_pyarray(py))?;
    d.set_item("imbalance", f.imbalance.into_pyarray(py))?;
    d.set_item("ofi", f.ofi.into_pyarray(py))?;
    let bid: Vec<_> = f
        .depth_bid
        .into_iter()
        .map(|c| c.into_pyarray(py))
        .collect();
    let ask: Vec<_> = f
        .depth_ask
        .into_iter()
        .map(|c| c.into_pyarray(py))
        .collect();
    d.set_item("depth_bid", bid)?;
    d.set_item("depth_ask", ask)?;
    Ok(d)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<L2Book>()?;
    m.add_function(wrap_pyfunction!(book_at, m)?)?;
    m.add_function(wrap_pyfunction!(book_features, m)?)?;
    Ok(())
}
