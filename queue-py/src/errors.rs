//! The exceptions of the module and the mapping from queue-core's errors to
//! them: `queue.Full` / `queue.Empty`, `mq.ShutDown`, `ValueError` (a
//! message over the size limit, a bad name or setting), `PermissionError`,
//! `FileNotFoundError`, `mq.LeaseExpired` (an ack or renew after the lease's
//! deadline) and `mq.Error` for everything else. Every message names the
//! queue and gives a hint (queue-core's error text).

use pyo3::exceptions::{
    PyException, PyFileNotFoundError, PyPermissionError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};
use queue_core::{AckError, GetError, OpenError, PutError, RemoveError};

pyo3::create_exception!(
    mq,
    Error,
    PyException,
    "Any failure of a queue that is not Full, Empty, ShutDown, a bad argument \
     (ValueError), a permission (PermissionError) or a missing queue \
     (FileNotFoundError). The message names the queue and gives a hint."
);

pyo3::create_exception!(
    mq,
    LeaseExpired,
    Error,
    "A lease's deadline (the queue's lease_timeout) passed before ack() or \
     renew(): the message was put back, and another consumer may be handling \
     it now. Call renew() more often than the timeout during long work."
);

/// `mq.ShutDown`, made at import: a subclass of `mq.Error` and, on Python
/// 3.13 and newer, of `queue.ShutDown` too.
static SHUTDOWN: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static FULL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static EMPTY: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Makes `mq.ShutDown` (once) and returns it.
pub(crate) fn shutdown_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    SHUTDOWN
        .get_or_try_init(py, || {
            let queue = py.import("queue")?;
            let error = py.get_type::<Error>();
            let bases = match queue.getattr("ShutDown") {
                Ok(std_shutdown) => PyTuple::new(py, [std_shutdown, error.into_any()])?,
                Err(_) => PyTuple::new(py, [error.into_any()])?,
            };
            let dict = PyDict::new(py);
            dict.set_item("__module__", "mq")?;
            dict.set_item(
                "__doc__",
                "The queue was shut down (`Queue.shutdown()`, `mq close`, or \
                 `close()` in Rust): put raises it at once, get once every \
                 message has been taken. A subclass of mq.Error and, on Python \
                 3.13 and newer, of queue.ShutDown.",
            )?;
            let ty = py
                .get_type::<PyType>()
                .call1(("ShutDown", bases, dict))?
                .cast_into::<PyType>()?;
            Ok::<_, PyErr>(ty.unbind())
        })
        .map(|t| t.bind(py))
}

fn queue_exc(
    py: Python<'_>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
    msg: String,
) -> PyErr {
    match cell.import(py, "queue", name) {
        Ok(ty) => PyErr::from_type(ty.clone(), msg),
        Err(e) => e,
    }
}

/// `queue.Full` with a message.
pub(crate) fn full(py: Python<'_>, msg: String) -> PyErr {
    queue_exc(py, &FULL, "Full", msg)
}

/// `queue.Empty` with a message.
pub(crate) fn empty(py: Python<'_>, msg: String) -> PyErr {
    queue_exc(py, &EMPTY, "Empty", msg)
}

/// `mq.ShutDown` with a message.
pub(crate) fn shut_down(py: Python<'_>, msg: String) -> PyErr {
    match shutdown_type(py) {
        Ok(ty) => PyErr::from_type(ty.clone(), msg),
        Err(e) => e,
    }
}

/// `e` and its sources, joined with ": ".
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// The exception for a failed open or create of queue `name`.
pub(crate) fn open_error(e: &OpenError) -> PyErr {
    let msg = chain(e);
    match e {
        OpenError::NotFound { .. } => PyFileNotFoundError::new_err(msg),
        OpenError::PermissionDenied { .. } => PyPermissionError::new_err(msg),
        OpenError::InvalidName { .. } | OpenError::InvalidConfig { .. } => {
            PyValueError::new_err(msg)
        }
        OpenError::Io { source, .. } => match source.kind() {
            std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(msg),
            std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(msg),
            _ => Error::new_err(msg),
        },
        _ => Error::new_err(msg),
    }
}

/// The exception for a failed `mq.remove`.
pub(crate) fn remove_error(e: &RemoveError) -> PyErr {
    let msg = chain(e);
    match e {
        RemoveError::NotFound { .. } => PyFileNotFoundError::new_err(msg),
        RemoveError::PermissionDenied { .. } => PyPermissionError::new_err(msg),
        RemoveError::InvalidName { .. } => PyValueError::new_err(msg),
        _ => Error::new_err(msg),
    }
}

/// The exception for a failed put on queue `name`.
pub(crate) fn put_error(py: Python<'_>, name: &str, e: &PutError) -> PyErr {
    match e {
        PutError::TooLarge { .. } | PutError::InvalidPriority { .. } => {
            PyValueError::new_err(format!("queue {name:?}: {e}"))
        }
        PutError::Full | PutError::Timeout => full(
            py,
            format!("queue {name:?} is full (a consumer takes messages out with get)"),
        ),
        PutError::Closed => shut_down(
            py,
            format!("queue {name:?} is shut down: it takes no more messages"),
        ),
        // Corrupted (and any variant added later): the core's text, never its payload.
        _ => Error::new_err(format!(
            "queue {name:?}: {e} (remove it with 'mq rm --force {name}')"
        )),
    }
}

/// The exception for a failed get on queue `name`.
pub(crate) fn get_error(py: Python<'_>, name: &str, e: &GetError) -> PyErr {
    match e {
        GetError::Empty | GetError::Timeout => empty(
            py,
            format!("queue {name:?} is empty (a producer puts messages in with put)"),
        ),
        GetError::Closed => shut_down(
            py,
            format!("queue {name:?} is shut down and every message has been taken"),
        ),
        _ => Error::new_err(format!(
            "queue {name:?}: {e} (remove it with 'mq rm --force {name}')"
        )),
    }
}

/// The exception for a failed ack or renew of a lease on queue `name`:
/// mq.LeaseExpired for a deadline that passed, mq.Error otherwise.
pub(crate) fn ack_error(name: &str, e: &AckError) -> PyErr {
    match e {
        AckError::Expired {
            late_ms,
            timeout_ms,
            ..
        } => LeaseExpired::new_err(format!(
            "queue {name:?}: the lease expired {late_ms} ms ago and its message was put back \
             for another consumer (the work may be done twice; call renew() more often than \
             the queue's lease_timeout of {} s)",
            *timeout_ms as f64 / 1000.0
        )),
        _ => Error::new_err(format!(
            "queue {name:?}: {e} (it is delivered again: the work may be done twice)"
        )),
    }
}

/// A `TypeError` for a message argument that is not bytes-like.
pub(crate) fn not_bytes(what: &str, obj: &Bound<'_, PyAny>) -> PyErr {
    let ty = obj
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into());
    PyTypeError::new_err(format!(
        "{what} takes bytes, bytearray or memoryview, not {ty} (use put() for other objects: it pickles them)"
    ))
}
