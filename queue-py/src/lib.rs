//! The Python module `mq`: queue-core's named, crash-safe shared-memory
//! queue with the API of `multiprocessing.Queue` (see docs/python.md).
//!
//! ```python
//! import mq
//! q = mq.Queue("jobs", maxsize=1024)    # opens "jobs" or creates it
//! q.put({"photo": 1})                   # any picklable object
//! print(q.get(timeout=1))               # from any process that opens "jobs"
//! q.shutdown()                          # end of stream for every process
//! mq.remove("jobs")
//! ```
//!
//! Modules: `queue` (the `Queue` class), `lease` (at-least-once delivery),
//! `settings` (the options of a new queue, `stats()`), `wait` (blocking
//! with the GIL released, Ctrl-C aware), `pickle`,
//! `errors` (the exceptions), `fork` (handles inherited through fork).
//! Built by maturin (`pip install ./queue-py`); tested from Python
//! (`queue-py/tests`, run by `cargo xtask test`).

#![deny(unsafe_op_in_unsafe_fn)]

mod errors;
mod fork;
mod lease;
mod pickle;
mod queue;
mod settings;
mod wait;

use std::path::PathBuf;

use pyo3::prelude::*;

use crate::queue::PyQueue;

/// Removes the queue `name` from `dir` (default `$MQ_DIR`, else `/dev/shm`).
/// Open handles keep working on the old queue until closed; a queue created
/// later under the same name is a new one. FileNotFoundError if there is none.
#[pyfunction]
#[pyo3(signature = (name, dir=None))]
fn remove(name: &str, dir: Option<PathBuf>) -> PyResult<()> {
    let dir = queue_core::queue_dir(dir.as_deref());
    queue_core::Queue::remove_in(&dir, name).map_err(|e| errors::remove_error(&e))
}

/// Unpickles a Queue: opens `name` in `dir`, never creating it.
#[pyfunction]
fn _reopen(name: &str, dir: PathBuf) -> PyResult<PyQueue> {
    PyQueue::open(name, None, Some(dir))
}

/// A named, bounded, crash-safe multi-process message queue in shared memory:
/// multiprocessing.Queue that unrelated processes open by name.
#[pymodule]
#[pyo3(name = "mq")]
fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    fork::install();
    m.add_class::<PyQueue>()?;
    m.add_class::<lease::PyLease>()?;
    m.add_class::<lease::LeaseContext>()?;
    m.add_class::<lease::DeadLetter>()?;
    m.add("Error", py.get_type::<errors::Error>())?;
    m.add("LeaseExpired", py.get_type::<errors::LeaseExpired>())?;
    m.add("ShutDown", errors::shutdown_type(py)?)?;
    // queue.Full / queue.Empty, re-exported for `except mq.Full`.
    let std_queue = py.import("queue")?;
    m.add("Full", std_queue.getattr("Full")?)?;
    m.add("Empty", std_queue.getattr("Empty")?)?;
    m.add("DEFAULT_MAXSIZE", queue_core::DEFAULT_CAPACITY)?;
    m.add("DEFAULT_MAX_MSG_SIZE", queue_core::DEFAULT_MAX_MSG_SIZE)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(remove, m)?)?;
    m.add_function(wrap_pyfunction!(_reopen, m)?)?;
    // maturin wraps the extension in a package (`mq/__init__.py` does
    // `from .mq import *`, for the type stubs): `_reopen`, which pickles
    // name, must be in `__all__` to reach the package.
    let all = [
        "Queue",
        "Lease",
        "LeaseContext",
        "DeadLetter",
        "Error",
        "LeaseExpired",
        "ShutDown",
        "Full",
        "Empty",
        "DEFAULT_MAXSIZE",
        "DEFAULT_MAX_MSG_SIZE",
        "remove",
        "_reopen",
        "__version__",
    ];
    m.add("__all__", all.to_vec())?;
    Ok(())
}
