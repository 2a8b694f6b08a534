//! Leases (at-least-once delivery): `mq.Lease` from `Queue.lease_bytes()`,
//! settled with `ack()` or `release()`, and `mq.LeaseContext` from
//! `Queue.lease()`, the `with` form that unpickles the message and acks it
//! when the block ends normally. An unsettled lease goes back to the queue
//! when it is dropped, when its process dies (queue-core's repair), and
//! when the queue's lease timeout passes without `renew()`.

use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use queue_core::{GetError, Lease, Queue};

use crate::errors;
use crate::fork;
use crate::pickle;
use crate::wait::{Wait, blocking};

/// A message taken from the queue but not yet acknowledged.
///
/// `data` is its bytes. `ack()` removes it for good; `release()` puts it back
/// for another getter. A Lease that is neither (garbage-collected, or its
/// process killed) is put back too, and so is one whose deadline (the
/// queue's lease_timeout) passes without `renew()`: its `ack()` then raises
/// mq.LeaseExpired. `deliveries` counts this message's deliveries, this one
/// included; `dead_letter` says where a dead letter came from. As a context
/// manager it acks when the block ends normally and releases on an exception.
#[pyclass(module = "mq", name = "Lease")]
pub(crate) struct PyLease {
    /// `None` once settled. Declared before `queue`: fields drop in order,
    /// so the lease (which points into the queue) goes first.
    lease: Option<Lease<'static>>,
    /// The message, as handed to Python.
    data: Py<PyBytes>,
    /// Read when taken: they stay readable after the lease is settled.
    deliveries: usize,
    dead_letter: Option<DeadLetter>,
    /// The fork generation the lease was taken in (see `fork.rs`).
    generation: u64,
    /// Keeps the handle the lease points into alive.
    queue: Arc<Queue>,
    name: String,
}

impl PyLease {
    /// Takes the oldest message of `queue` as a lease, waiting as `wait` says.
    pub(crate) fn take(
        py: Python<'_>,
        queue: Arc<Queue>,
        name: &str,
        wait: Wait,
    ) -> PyResult<PyLease> {
        let q: &Queue = &queue;
        let result = blocking(
            py,
            wait,
            |e: &GetError| matches!(e, GetError::Empty | GetError::Timeout),
            |slice| match slice {
                None => q.try_get_lease(),
                Some(d) => q.get_lease_timeout(d),
            },
        )?;
        let lease = result.map_err(|e| errors::get_error(py, name, &e))?;
        let data = PyBytes::new(py, &lease).unbind();
        let deliveries = lease.deliveries();
        let dead_letter = lease.dead_letter().map(|d| DeadLetter {
            queue: d.queue,
            deliveries: d.deliveries,
        });
        // SAFETY: the lease borrows the `Queue` inside `queue`'s Arc, whose
        // address never changes; the returned PyLease holds that Arc and
        // drops (or forgets) the lease before it (field order, `settle`,
        // `Drop`), and never hands the lease itself out. So the borrow it
        // stands for outlives every use of the lease.
        let lease = unsafe { std::mem::transmute::<Lease<'_>, Lease<'static>>(lease) };
        Ok(PyLease {
            lease: Some(lease),
            data,
            deliveries,
            dead_letter,
            generation: fork::generation(),
            queue,
            name: name.to_owned(),
        })
    }

    /// An error if the lease belongs to the parent of this forked process.
    fn check_process(&self, verb: &str) -> PyResult<()> {
        if self.generation != fork::generation() {
            return Err(PyValueError::new_err(format!(
                "cannot {verb} a lease on queue {:?} in a forked child: it belongs to the process that took it (settle it there)",
                self.name
            )));
        }
        Ok(())
    }

    fn settled_error(&self) -> PyErr {
        PyValueError::new_err(format!(
            "this lease on queue {:?} was already acked or released",
            self.name
        ))
    }

    /// Takes the lease out for settling: an error if it was settled, or if
    /// it belongs to the parent of this forked process.
    fn unsettled(&mut self, verb: &str) -> PyResult<Lease<'static>> {
        self.check_process(verb)?;
        self.lease.take().ok_or_else(|| self.settled_error())
    }

    fn do_ack(&mut self) -> PyResult<()> {
        let lease = self.unsettled("ack")?;
        lease.ack().map_err(|e| errors::ack_error(&self.name, &e))
    }

    fn do_renew(&self) -> PyResult<()> {
        self.check_process("renew")?;
        let lease = self.lease.as_ref().ok_or_else(|| self.settled_error())?;
        lease.renew().map_err(|e| errors::ack_error(&self.name, &e))
    }

    /// `__exit__`: ack after a normal end, release after an exception (which
    /// is never swallowed: returns false).
    fn settle_on_exit(&mut self, exc_type: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
        match exc_type {
            None => self.do_ack()?,
            Some(_) => self.do_release()?,
        }
        Ok(false)
    }

    fn do_release(&mut self) -> PyResult<()> {
        self.unsettled("release")?.release();
        Ok(())
    }
}

#[pymethods]
impl PyLease {
    /// The message's bytes.
    #[getter]
    fn data(&self, py: Python<'_>) -> Py<PyBytes> {
        self.data.clone_ref(py)
    }

    /// Whether ack() or release() was called.
    #[getter]
    fn settled(&self) -> bool {
        self.lease.is_none()
    }

    /// How many times this message was delivered, this delivery included:
    /// 1 the first time, more after its earlier takers died, released it or
    /// let their lease expire (compare with the queue's max_deliveries).
    #[getter]
    fn deliveries(&self) -> usize {
        self.deliveries
    }

    /// For a message moved here after max_deliveries in another queue: a
    /// DeadLetter with that queue's name and the deliveries it had there;
    /// None for a message put into this queue directly.
    #[getter]
    fn dead_letter(&self) -> Option<DeadLetter> {
        self.dead_letter.clone()
    }

    /// Acknowledges the message: it is gone for good. Raises ValueError if
    /// the lease was already settled, mq.LeaseExpired if its deadline had
    /// passed (the message went back to the queue).
    fn ack(&mut self) -> PyResult<()> {
        self.do_ack()
    }

    /// Keeps the message for another lease_timeout from now: call it more
    /// often than the timeout during long work. Raises mq.LeaseExpired if the
    /// deadline had already passed, ValueError if the lease was settled.
    /// Without a lease_timeout it only checks that the lease is still held.
    fn renew(&self) -> PyResult<()> {
        self.do_renew()
    }

    /// Puts the message back for another getter. Raises ValueError if the
    /// lease was already settled.
    fn release(&mut self) -> PyResult<()> {
        self.do_release()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Acks when the block ends normally, releases on an exception (if the
    /// block did not settle the lease itself).
    #[pyo3(signature = (exc_type, _exc=None, _tb=None))]
    fn __exit__(
        &mut self,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        if self.lease.is_some() {
            return self.settle_on_exit(exc_type);
        }
        Ok(false)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let state = if self.lease.is_some() {
            "unsettled"
        } else {
            "settled"
        };
        format!(
            "<mq.Lease on {:?}: {} bytes, delivery {}, {state}>",
            self.name,
            self.data.bind(py).as_bytes().len(),
            self.deliveries
        )
    }
}

impl Drop for PyLease {
    fn drop(&mut self) {
        if self.generation != fork::generation() {
            // Inherited through fork(): putting it back would undo the
            // parent's work. Leak it and keep the parent's handle alive.
            if let Some(lease) = self.lease.take() {
                std::mem::forget(lease);
            }
            std::mem::forget(Arc::clone(&self.queue));
        }
    }
}

/// `with q.lease() as obj:` - takes a message when the block is entered,
/// returns it unpickled, acks it when the block ends normally and releases
/// it on an exception.
#[pyclass(module = "mq", name = "LeaseContext")]
pub(crate) struct LeaseContext {
    queue: Arc<Queue>,
    /// The fork generation `queue` belongs to (see `fork.rs`).
    generation: u64,
    name: String,
    wait: Wait,
    lease: Option<PyLease>,
}

impl LeaseContext {
    /// The lease of the message in the block: an error outside the block.
    fn entered(&self) -> PyResult<&PyLease> {
        self.lease.as_ref().ok_or_else(|| {
            PyValueError::new_err(format!(
                "this lease context on queue {:?} holds no message: use it inside its with block (ctx = q.lease(); with ctx as obj: ctx.renew())",
                self.name
            ))
        })
    }

    pub(crate) fn new(queue: Arc<Queue>, name: String, wait: Wait) -> LeaseContext {
        LeaseContext {
            queue,
            generation: fork::generation(),
            name,
            wait,
            lease: None,
        }
    }
}

#[pymethods]
impl LeaseContext {
    /// Waits for a message (as `get`), leases it and returns it unpickled.
    /// A message that does not unpickle is released and the error raised.
    fn __enter__<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        if self.lease.is_some() {
            return Err(PyValueError::new_err(format!(
                "this lease context on queue {:?} is already entered (call q.lease() again for another message)",
                self.name
            )));
        }
        if self.generation != fork::generation() {
            return Err(PyValueError::new_err(format!(
                "this lease context on queue {:?} was made before a fork (call q.lease() in this process)",
                self.name
            )));
        }
        let mut lease = PyLease::take(py, Arc::clone(&self.queue), &self.name, self.wait)?;
        match pickle::loads(py, lease.data.bind(py).as_bytes()) {
            Ok(obj) => {
                self.lease = Some(lease);
                Ok(obj)
            }
            Err(e) => {
                lease.do_release()?;
                Err(e)
            }
        }
    }

    /// The deliveries of the message in the block (see Lease.deliveries).
    #[getter]
    fn deliveries(&self) -> PyResult<usize> {
        Ok(self.entered()?.deliveries)
    }

    /// Where the message in the block came from, if it is a dead letter
    /// (see Lease.dead_letter).
    #[getter]
    fn dead_letter(&self) -> PyResult<Option<DeadLetter>> {
        Ok(self.entered()?.dead_letter.clone())
    }

    /// Keeps the message in the block for another lease_timeout (see Lease.renew).
    fn renew(&self) -> PyResult<()> {
        self.entered()?.do_renew()
    }

    /// Acks on a normal end, releases on an exception; never swallows it.
    #[pyo3(signature = (exc_type, _exc=None, _tb=None))]
    fn __exit__(
        &mut self,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        match self.lease.take() {
            Some(mut lease) => lease.settle_on_exit(exc_type),
            None => Ok(false),
        }
    }
}

impl Drop for LeaseContext {
    fn drop(&mut self) {
        if self.generation != fork::generation() {
            // The parent's handle: never the one to drop it (see `fork.rs`).
            std::mem::forget(Arc::clone(&self.queue));
        }
    }
}

/// Where a dead letter came from (`Lease.dead_letter`): `queue`, the queue
/// it was moved from, and `deliveries`, how many times it was delivered
/// there (that queue's max_deliveries, or more if a move was interrupted).
#[pyclass(module = "mq", name = "DeadLetter", frozen, get_all, eq)]
#[derive(Clone, PartialEq)]
pub(crate) struct DeadLetter {
    queue: String,
    deliveries: usize,
}

#[pymethods]
impl DeadLetter {
    fn __repr__(&self) -> String {
        format!(
            "mq.DeadLetter(queue='{}', deliveries={})",
            self.queue, self.deliveries
        )
    }
}
