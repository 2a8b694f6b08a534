//! Pickling for `put`/`get`: the `pickle` module's C functions (`_pickle`),
//! looked up once and called from Rust, with the highest protocol. (Measured
//! against a thin Python wrapper calling `pickle.dumps` itself: see
//! docs/python.md, "Performance".)

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyBytes;

static DUMPS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static PROTOCOL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// `pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)`.
pub(crate) fn dumps<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let py = obj.py();
    let dumps = DUMPS.import(py, "pickle", "dumps")?;
    let protocol = PROTOCOL.import(py, "pickle", "HIGHEST_PROTOCOL")?;
    Ok(dumps.call1((obj, protocol))?.cast_into::<PyBytes>()?)
}

/// `pickle.loads(data)`.
pub(crate) fn loads<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let loads = LOADS.import(py, "pickle", "loads")?;
    loads.call1((PyBytes::new(py, data),))
}
