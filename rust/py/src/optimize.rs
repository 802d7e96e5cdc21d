//! Bindings: DE, SHADE and L-SHADE with benchmark functions (docs/compute.md §4).
//!
//! The optimiser runs with the GIL released; a Python objective or progress
//! callback re-attaches only for its own calls.

use kernels::optimize::step::{self, Source, Tape};
use kernels::optimize::{
    Builtin, Config, Init, Method, Outcome, Params, Preset, Progress, Repair, State, Strategy,
};
use kernels::{KernelError, Result as KResult};
use numpy::{
    IntoPyArray, PyArray1, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::arrays::slice1;
use crate::errors::to_py;

pub fn slice2<'a>(arr: &'a PyReadonlyArray2<'_, f64>) -> Cow<'a, [f64]> {
    match arr.as_slice() {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(arr.as_array().iter().copied().collect()),
    }
}

fn parse_repair(name: Option<&str>) -> KResult<Option<Repair>> {
    match name {
        None => Ok(None),
        Some("midpoint") => Ok(Some(Repair::Midpoint)),
        Some("resample") => Ok(Some(Repair::Resample)),
        Some(other) => Err(kernels::error::invalid(format!(
            "unknown repair {other:?}; choose midpoint or resample"
        ))),
    }
}

/// A rayon pool of `workers` threads, built once per size and reused (a few sizes only).
fn pool(workers: usize) -> KResult<Arc<rayon::ThreadPool>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let build = || {
        rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .build()
            .map(Arc::new)
            .map_err(|e| KernelError::Numerical(format!("cannot start {workers} threads: {e}")))
    };
    let Ok(mut pools) = POOLS.get_or_init(Default::default).lock() else {
        return build();
    };
    if let Some(p) = pools.get(&workers) {
        return Ok(Arc::clone(p));
    }
    let p = build()?;
    if pools.len() < 8 {
        pools.insert(workers, Arc::clone(&p));
    }
    Ok(p)
}

/// Run `f` inside a rayon pool of `workers` threads (0 = the global pool). Running
/// the whole job on a pool thread keeps each generation's parallel batch in-pool,
/// instead of handing it over from an outside thread every time.
pub fn with_workers<T: Send>(workers: usize, f: impl FnOnce() -> T + Send) -> KResult<T> {
    if workers == 0 {
        let mut out = None;
        rayon::scope(|_| out = Some(f()));
        return out.ok_or_else(|| KernelError::Numerical("the rayon job did not run".into()));
    }
    Ok(pool(workers)?.install(f))
}

/// A progress hook calling `callback(generation, nfev, max_evals, best)`; a truthy
/// return or an exception stops the run.
pub fn progress_hook<'a>(
    callback: &'a Option<Py<PyAny>>,
    error: &'a mut Option<PyErr>,
) -> impl FnMut(&Progress) -> bool + Send + 'a {
    move |p: &Progress| {
        let Some(cb) = callback else { return true };
        Python::attach(|py| {
            match cb
                .call1(py, (p.generation, p.nfev, p.max_evals, p.best))
                .and_then(|r| r.bind(py).is_truthy())
            {
                Ok(stop) => !stop,
                Err(e) => {
                    *error = Some(e);
                    false
                }
            }
        })
    }
}

pub fn outcome_dict<'py>(py: Python<'py>, o: Outcome) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("x", o.x.into_pyarray(py))?;
    d.set_item("fun", o.fun)?;
    d.set_item("nfev", o.nfev)?;
    d.set_item("nit", o.nit)?;
    d.set_item("stop", format!("{:?}", o.stop).to_lowercase())?;
    d.set_item("message", o.stop.message())?;
    d.set_item("history", o.history.into_pyarray(py))?;
    d.set_item("mem_cr", o.mem_cr.into_pyarray(py))?;
    d.set_item("mem_f", o.mem_f.into_pyarray(py))?;
    d.set_item("final_pop_size", o.final_pop_size)?;
    Ok(d)
}

fn call_objective(
    py: Python<'_>,
    f: &Py<PyAny>,
    vectorized: bool,
    xs: &[f64],
    d: usize,
    out: &mut [f64],
) -> PyResult<()> {
    let n = out.len();
    if vectorized {
        let arr = PyArray1::from_slice(py, xs).reshape([n, d])?;
        let res = f.call1(py, (arr,))?;
        let vals: Vec<f64> = match res.extract::<PyReadonlyArray1<'_, f64>>(py) {
            Ok(a) => a.as_array().to_vec(),
            Err(_) => res.extract(py)?,
        };
        if vals.len() != n {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "the vectorized objective must return {n} values, got {}",
                vals.len()
            )));
        }
        out.copy_from_slice(&vals);
    } else {
        for (o, x) in out.iter_mut().zip(xs.chunks(d)) {
            *o = f.call1(py, (PyArray1::from_slice(py, x),))?.extract(py)?;
        }
    }
    Ok(())
}

/// Minimise a built-in objective (by name) or a Python callable over a box.
#[pyfunction]
#[pyo3(signature = (objective, lower, upper, *, method="lshade", preset="lshade2014",
    pop_size=None, max_evals, seed, target=None, stagnation=None, mutation=0.5,
    recombination=0.9, repair=None, init=None, vectorized=false, workers=0, callback=None,
    updating="deferred", tol=None, atol=0.0, strategy="rand1bin", dither=None,
    init_method="uniform"))]
#[allow(clippy::too_many_arguments)]
fn de_minimize<'py>(
    py: Python<'py>,
    objective: &Bound<'py, PyAny>,
    lower: PyReadonlyArray1<'py, f64>,
    upper: PyReadonlyArray1<'py, f64>,
    method: &str,
    preset: &str,
    pop_size: Option<usize>,
    max_evals: usize,
    seed: u64,
    target: Option<f64>,
    stagnation: Option<usize>,
    mutation: f64,
    recombination: f64,
    repair: Option<&str>,
    init: Option<PyReadonlyArray2<'py, f64>>,
    vectorized: bool,
    workers: usize,
    callback: Option<Py<PyAny>>,
    updating: &str,
    tol: Option<f64>,
    atol: f64,
    strategy: &str,
    dither: Option<(f64, f64)>,
    init_method: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let mut cfg = Config::new(Method::parse(method).map_err(to_py)?, max_evals, seed);
    cfg.preset = Preset::parse(preset).map_err(to_py)?;
    cfg.pop_size = pop_size;
    cfg.target = target;
    cfg.stagnation = stagnation;
    cfg.f = mutation;
    cfg.cr = recombination;
    cfg.repair = parse_repair(repair).map_err(to_py)?;
    cfg.immediate = match updating {
        "deferred" => false,
        "immediate" => true,
        _ => {
            return Err(to_py(kernels::error::invalid(format!(
                "unknown updating {updating:?}; choose deferred or immediate"
            ))));
        }
    };
    cfg.tol = tol;
    cfg.atol = atol;
    cfg.strategy = Strategy::parse(strategy).map_err(to_py)?;
    cfg.dither = dither;
    cfg.init = Init::parse(init_method).map_err(to_py)?;
    let (lo, hi) = (slice1(&lower), slice1(&upper));
    let init_view = init.as_ref().map(slice2);
    let init_s: Option<&[f64]> = init_view.as_deref();
    let mut cb_err: Option<PyErr> = None;
    let mut obj_err: Option<PyErr> = None;
    let builtin = match objective.extract::<String>() {
        Ok(name) => Some(Builtin::parse(&name).map_err(to_py)?),
        Err(_) => None,
    };
    let func: Py<PyAny> = objective.clone().unbind();
    let out = py.detach(|| {
        let mut hook = progress_hook(&callback, &mut cb_err);
        match builtin {
            // One thread: evaluate on this one, with no pool to hand the run to.
            Some(b) if workers == 1 => {
                let mut eval = |xs: &[f64], d: usize, out: &mut [f64]| {
                    kernels::optimize::functions::eval_serial(b, xs, d, out);
                    Ok(())
                };
                kernels::optimize::minimize(&cfg, &lo, &hi, init_s, &mut eval, &mut hook)
            }
            Some(b) => with_workers(workers, || {
                let mut eval = |xs: &[f64], d: usize, out: &mut [f64]| {
                    kernels::optimize::functions::eval_batch(b, xs, d, out);
                    Ok(())
                };
                kernels::optimize::minimize(&cfg, &lo, &hi, init_s, &mut eval, &mut hook)
            })
            .and_then(|r| r),
            None => {
                let mut eval = |xs: &[f64], d: usize, out: &mut [f64]| {
                    Python::attach(|py| call_objective(py, &func, vectorized, xs, d, out)).map_err(
                        |e| {
                            obj_err = Some(e);
                            KernelError::Numerical("the objective raised".into())
                        },
                    )
                };
                kernels::optimize::minimize(&cfg, &lo, &hi, init_s, &mut eval, &mut hook)
            }
        }
    });
    if let Some(e) = obj_err.or(cb_err) {
        return Err(e);
    }
    outcome_dict(py, out.map_err(to_py)?)
}

/// Evaluate a built-in function at each row of `x` (N, D), in parallel.
#[pyfunction]
fn de_builtin_eval<'py>(
    py: Python<'py>,
    name: &str,
    x: PyReadonlyArray2<'py, f64>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let f = Builtin::parse(name).map_err(to_py)?;
    let d = x.shape()[1];
    let xs = slice2(&x);
    if d == 0 {
        return Err(to_py(kernels::error::invalid(
            "x must have at least one column",
        )));
    }
    let mut out = vec![0.0; xs.len() / d];
    py.detach(|| kernels::optimize::functions::eval_batch(f, &xs, d, &mut out));
    Ok(out.into_pyarray(py))
}

#[allow(clippy::too_many_arguments)]
fn step_params(
    method: &str,
    n: usize,
    p: f64,
    f: f64,
    cr: f64,
    repair: Option<&str>,
    arc_rate: f64,
    n_min: usize,
    max_evals: usize,
) -> KResult<Params> {
    let method = Method::parse(method)?;
    Ok(Params {
        method,
        n_init: n,
        n_min,
        h: 1,
        arc_rate,
        p,
        f,
        cr,
        strategy: Strategy::default(),
        dither: None,
        repair: parse_repair(repair)?.unwrap_or(Repair::Midpoint),
        max_evals,
    })
}

fn state_from(
    pop: &PyReadonlyArray2<'_, f64>,
    fit: &PyReadonlyArray1<'_, f64>,
    archive: &PyReadonlyArray2<'_, f64>,
    mem_cr: &PyReadonlyArray1<'_, f64>,
    mem_f: &PyReadonlyArray1<'_, f64>,
    mem_pos: usize,
    nfev: usize,
) -> KResult<State> {
    let d = pop.shape()[1];
    let s = State {
        d,
        pop: slice2(pop).into_owned(),
        fit: slice1(fit).into_owned(),
        archive: slice2(archive).into_owned(),
        mem_cr: slice1(mem_cr).into_owned(),
        mem_f: slice1(mem_f).into_owned(),
        mem_pos,
        nfev,
    };
    if d == 0
        || s.fit.len() != pop.shape()[0]
        || (archive.shape()[0] > 0 && archive.shape()[1] != d)
        || s.mem_cr.len() != s.mem_f.len()
        || s.mem_f.is_empty()
        || mem_pos >= s.mem_f.len()
    {
        return Err(kernels::error::invalid("inconsistent state shapes"));
    }
    Ok(s)
}

fn state_tuple<'py>(py: Python<'py>, s: State, used: usize) -> PyResult<Bound<'py, PyAny>> {
    let (n, d, a) = (s.n(), s.d, s.archive_len());
    let pop = s.pop.into_pyarray(py).reshape([n, d])?;
    let arc = s.archive.into_pyarray(py).reshape([a, d])?;
    (
        pop,
        s.fit.into_pyarray(py),
        arc,
        s.mem_cr.into_pyarray(py),
        s.mem_f.into_pyarray(py),
        s.mem_pos,
        used,
    )
        .into_pyobject(py)
        .map(|b| b.into_any())
}

/// One generation's trials from injected uniforms (for step-level tests).
#[pyfunction]
#[pyo3(signature = (method, pop, fit, archive, mem_cr, mem_f, lower, upper, tape, *,
    p=0.11, f=0.5, cr=0.9, repair=None, strategy="rand1bin", dither=None))]
#[allow(clippy::too_many_arguments)]
fn de_trials<'py>(
    py: Python<'py>,
    method: &str,
    pop: PyReadonlyArray2<'py, f64>,
    fit: PyReadonlyArray1<'py, f64>,
    archive: PyReadonlyArray2<'py, f64>,
    mem_cr: PyReadonlyArray1<'py, f64>,
    mem_f: PyReadonlyArray1<'py, f64>,
    lower: PyReadonlyArray1<'py, f64>,
    upper: PyReadonlyArray1<'py, f64>,
    tape: PyReadonlyArray1<'py, f64>,
    p: f64,
    f: f64,
    cr: f64,
    repair: Option<&str>,
    strategy: &str,
    dither: Option<(f64, f64)>,
) -> PyResult<Bound<'py, PyAny>> {
    let s = state_from(&pop, &fit, &archive, &mem_cr, &mem_f, 0, 0).map_err(to_py)?;
    let n = s.n();
    let mut prm = step_params(method, n, p, f, cr, repair, 1.0, 4, 1).map_err(to_py)?;
    prm.strategy = Strategy::parse(strategy).map_err(to_py)?;
    prm.dither = dither;
    if n < 1 + prm.strategy.draws() {
        return Err(to_py(kernels::error::invalid(
            "the population is too small for this strategy",
        )));
    }
    let (lo, hi, tp) = (slice1(&lower), slice1(&upper), slice1(&tape));
    if lo.len() != s.d || hi.len() != s.d {
        return Err(to_py(kernels::error::invalid("bounds must have D entries")));
    }
    let mut t = Tape::new(&tp);
    let trials = step::make_trials(&prm, &s, &lo, &hi, &mut t);
    t.check().map_err(to_py)?;
    let x = trials.x.into_pyarray(py).reshape([n, s.d])?;
    (
        x,
        trials.cr.into_pyarray(py),
        trials.f.into_pyarray(py),
        t.pos,
    )
        .into_pyobject(py)
        .map(|b| b.into_any())
}

/// Selection, archive, memory update and LPSR from injected uniforms.
#[pyfunction]
#[pyo3(signature = (method, pop, fit, archive, mem_cr, mem_f, mem_pos, trials, trial_cr,
    trial_f, trial_fit, tape, *, nfev, n_init, max_evals, n_min=4, arc_rate=2.6))]
#[allow(clippy::too_many_arguments)]
fn de_select<'py>(
    py: Python<'py>,
    method: &str,
    pop: PyReadonlyArray2<'py, f64>,
    fit: PyReadonlyArray1<'py, f64>,
    archive: PyReadonlyArray2<'py, f64>,
    mem_cr: PyReadonlyArray1<'py, f64>,
    mem_f: PyReadonlyArray1<'py, f64>,
    mem_pos: usize,
    trials: PyReadonlyArray2<'py, f64>,
    trial_cr: PyReadonlyArray1<'py, f64>,
    trial_f: PyReadonlyArray1<'py, f64>,
    trial_fit: PyReadonlyArray1<'py, f64>,
    tape: PyReadonlyArray1<'py, f64>,
    nfev: usize,
    n_init: usize,
    max_evals: usize,
    n_min: usize,
    arc_rate: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let mut s = state_from(&pop, &fit, &archive, &mem_cr, &mem_f, mem_pos, nfev).map_err(to_py)?;
    let prm = step_params(
        method, n_init, 0.11, 0.5, 0.9, None, arc_rate, n_min, max_evals,
    )
    .map_err(to_py)?;
    let t = step::Trials {
        x: slice2(&trials).into_owned(),
        cr: slice1(&trial_cr).into_owned(),
        f: slice1(&trial_f).into_owned(),
    };
    let tf = slice1(&trial_fit);
    if t.x.len() != s.pop.len() || t.cr.len() != s.n() || t.f.len() != s.n() || tf.len() > s.n() {
        return Err(to_py(kernels::error::invalid(
            "trial shapes must match the population",
        )));
    }
    let tp = slice1(&tape);
    let mut tape = Tape::new(&tp);
    step::select(&prm, &mut s, &t, &tf, &mut tape);
    tape.check().map_err(to_py)?;
    let used = tape.pos;
    state_tuple(py, s, used)
}

/// The LPSR population size after `nfev` of `max_evals` evaluations.
#[pyfunction]
fn de_lpsr_size(n_init: usize, n_min: usize, nfev: usize, max_evals: usize) -> usize {
    step::lpsr_size(n_init, n_min, nfev, max_evals)
}

/// The first `n` uniforms of generation `generation`'s stream (for tests).
#[pyfunction]
fn de_stream_uniforms<'py>(
    py: Python<'py>,
    seed: u64,
    generation: u64,
    n: usize,
) -> Bound<'py, PyArray1<f64>> {
    let mut rng =
        kernels::rng::SplitMix::stream(seed, kernels::rng::purpose::DE_GENERATION, generation);
    (0..n)
        .map(|_| rng.uniform())
        .collect::<Vec<f64>>()
        .into_pyarray(py)
}

/// The first population of a run: `init` = uniform, lhs or sobol (n × D).
#[pyfunction]
fn de_init_population<'py>(
    py: Python<'py>,
    init: &str,
    n: usize,
    lower: PyReadonlyArray1<'py, f64>,
    upper: PyReadonlyArray1<'py, f64>,
    seed: u64,
) -> PyResult<Bound<'py, PyAny>> {
    let kind = Init::parse(init).map_err(to_py)?;
    let (lo, hi) = (slice1(&lower), slice1(&upper));
    if lo.is_empty() || lo.len() != hi.len() || n == 0 {
        return Err(to_py(kernels::error::invalid(
            "need n >= 1 and matching non-empty bounds",
        )));
    }
    let d = lo.len();
    let pop = py
        .detach(|| kernels::optimize::init::population(kind, seed, n, &lo, &hi))
        .map_err(to_py)?;
    Ok(pop.into_pyarray(py).reshape([n, d])?.into_any())
}

/// The first `n` unshifted Sobol points in `d` dimensions (for tests).
#[pyfunction]
fn de_sobol_points<'py>(py: Python<'py>, n: usize, d: usize) -> PyResult<Bound<'py, PyAny>> {
    let pts = kernels::optimize::sobol::points(n, d, None).map_err(to_py)?;
    Ok(pts.into_pyarray(py).reshape([n, d])?.into_any())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("DE_STRATEGIES", step::Strategy::NAMES.to_vec())?;
    m.add_function(wrap_pyfunction!(de_init_population, m)?)?;
    m.add_function(wrap_pyfunction!(de_sobol_points, m)?)?;
    m.add_function(wrap_pyfunction!(de_minimize, m)?)?;
    m.add_function(wrap_pyfunction!(de_builtin_eval, m)?)?;
    m.add_function(wrap_pyfunction!(de_trials, m)?)?;
    m.add_function(wrap_pyfunction!(de_select, m)?)?;
    m.add_function(wrap_pyfunction!(de_lpsr_size, m)?)?;
    m.add_function(wrap_pyfunction!(de_stream_uniforms, m)?)?;
    Ok(())
}
