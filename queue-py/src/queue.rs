//! `mq.Queue`: a handle on a named queue, with the methods of
//! `multiprocessing.Queue` (`put`/`get` of pickled objects), raw `bytes`
//! (`put_bytes`/`get_bytes`, what `mq` and Rust see), faster-fifo's batches
//! (`put_many`/`get_many`), leases, `shutdown()`, and pickling by name.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};
use queue_core::{Batch, DEFAULT_MAX_MSG_SIZE, DEFAULT_MODE, GetError, PutError};
use queue_core::{Queue, queue_dir};

use crate::errors;
use crate::fork;
use crate::lease::{LeaseContext, PyLease};
use crate::pickle;
use crate::settings::{self, Create};
use crate::wait::{Wait, blocking};

/// The open handle of a `mq.Queue` and the fork generation it was opened in.
struct Handle {
    queue: Arc<Queue>,
    generation: u64,
}

/// A named, bounded multi-producer multi-consumer queue in shared memory.
///
/// `Queue(name, maxsize=0, max_msg_size=4096, *, create=True, dir=None, mode=0o600,
/// priorities=1, lease_timeout=None, max_deliveries=None, dead_letter=None)`
/// opens the queue `name` in `dir` (default `$MQ_DIR`, else `/dev/shm`), or
/// creates it with room for `maxsize` messages (<= 0: 1024) per priority
/// level of at most `max_msg_size` bytes each, readable and writable by
/// `mode`. The delivery rules - `priorities` levels (higher served first),
/// `lease_timeout` seconds for a lease, `max_deliveries` per message and the
/// `dead_letter` queue for messages past it - also apply only when creating:
/// an existing queue keeps its own (see `stats()`). With `create=False` a
/// missing queue raises FileNotFoundError. Other processes open the same
/// queue by name; a pickled Queue is its name and directory.
#[pyclass(module = "mq", name = "Queue", frozen)]
pub(crate) struct PyQueue {
    /// `None` once `close()` detached this handle.
    handle: Mutex<Option<Handle>>,
    name: String,
    /// The queue directory, absolute (so that a pickle opens the same queue
    /// from another working directory).
    dir: PathBuf,
}

/// Which verb family a message goes through.
#[derive(Clone, Copy)]
enum Codec {
    /// `put`/`get`: pickled objects.
    Pickle,
    /// `put_bytes`/`get_bytes`: the bytes as they are.
    Raw,
}

impl PyQueue {
    /// Opens the queue, or creates it with `create` if it is missing (as
    /// Rust's `open_or_create`: an existing queue's settings win); the work
    /// of `Queue(...)` and of unpickling.
    pub(crate) fn open(
        name: &str,
        create: Option<Create>,
        dir: Option<PathBuf>,
    ) -> PyResult<PyQueue> {
        fork::install();
        let dir = queue_dir(dir.as_deref());
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        let queue = match create {
            Some(c) => c.builder(name, &dir).open_or_create(),
            None => Queue::open_in(&dir, name),
        }
        .map_err(|e| errors::open_error(&e))?;
        Ok(PyQueue {
            handle: Mutex::new(Some(Handle {
                queue: Arc::new(queue),
                generation: fork::generation(),
            })),
            name: name.to_owned(),
            dir,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Option<Handle>> {
        // A panic never happens while the lock is held; a poisoned lock
        // still holds a consistent Option.
        self.handle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The queue handle for this process: an error after `close()`; in a
    /// forked child, a fresh handle opened by name (see `fork.rs`).
    pub(crate) fn queue(&self) -> PyResult<Arc<Queue>> {
        let mut guard = self.lock();
        let Some(handle) = guard.as_mut() else {
            return Err(PyValueError::new_err(format!(
                "queue {:?} was closed in this process (close() detached the handle; open it again with mq.Queue({:?}))",
                self.name, self.name
            )));
        };
        let generation = fork::generation();
        if handle.generation != generation {
            let fresh =
                Queue::open_in(&self.dir, &self.name).map_err(|e| errors::open_error(&e))?;
            let inherited = std::mem::replace(&mut handle.queue, Arc::new(fresh));
            // The parent's handle: dropping it here would free the parent's
            // participant entry.
            std::mem::forget(inherited);
            handle.generation = generation;
        }
        Ok(Arc::clone(&handle.queue))
    }

    /// Turns a message into the bytes to put.
    fn encode<'py>(codec: Codec, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        match codec {
            Codec::Pickle => Ok(pickle::dumps(obj)?.into_any()),
            Codec::Raw => Ok(obj.clone()),
        }
    }

    /// Turns a message taken from the queue into the Python object returned.
    fn decode<'py>(py: Python<'py>, codec: Codec, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        match codec {
            Codec::Pickle => pickle::loads(py, data),
            Codec::Raw => Ok(PyBytes::new(py, data).into_any()),
        }
    }

    fn put_one(
        &self,
        py: Python<'_>,
        codec: Codec,
        obj: &Bound<'_, PyAny>,
        block: bool,
        timeout: Option<f64>,
        priority: i64,
    ) -> PyResult<()> {
        let wait = Wait::new(block, timeout)?;
        let q = self.queue()?;
        let priority = self.level(py, &q, priority)?;
        let encoded = Self::encode(codec, obj)?;
        let holder;
        let data: &[u8] = match encoded.cast::<PyBytes>() {
            Ok(b) => b.as_bytes(),
            Err(_) => {
                // bytearray / memoryview / other buffers: one copy.
                holder = encoded
                    .extract::<Vec<u8>>()
                    .map_err(|_| errors::not_bytes("put_bytes", &encoded))?;
                &holder
            }
        };
        let result = blocking(py, wait, is_full, |slice| match slice {
            None => q.try_put_priority(data, priority),
            Some(d) => q.put_priority_timeout(data, priority, d),
        })?;
        result.map_err(|e| errors::put_error(py, &self.name, &e))
    }

    fn get_one<'py>(
        &self,
        py: Python<'py>,
        codec: Codec,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let wait = Wait::new(block, timeout)?;
        let q = self.queue()?;
        let result = blocking(py, wait, is_empty, |slice| match slice {
            None => q.try_get(),
            Some(d) => q.get_timeout(d),
        })?;
        let data = result.map_err(|e| errors::get_error(py, &self.name, &e))?;
        Self::decode(py, codec, &data)
    }

    fn put_batch(
        &self,
        py: Python<'_>,
        codec: Codec,
        items: &Bound<'_, PyAny>,
        block: bool,
        timeout: Option<f64>,
        priority: i64,
    ) -> PyResult<()> {
        let wait = Wait::new(block, timeout)?;
        let q = self.queue()?;
        let priority = self.level(py, &q, priority)?;
        // Encode (and size-check) everything before putting anything.
        let mut encoded: Vec<Bound<'_, PyBytes>> = Vec::new();
        for item in items.try_iter()? {
            let item = Self::encode(codec, &item?)?;
            let bytes = match item.cast_into::<PyBytes>() {
                Ok(b) => b,
                Err(e) => {
                    let obj = e.into_inner();
                    let v = obj
                        .extract::<Vec<u8>>()
                        .map_err(|_| errors::not_bytes("put_many_bytes", &obj))?;
                    PyBytes::new(py, &v)
                }
            };
            encoded.push(bytes);
        }
        let msgs: Vec<&[u8]> = encoded.iter().map(|b| b.as_bytes()).collect();
        let max = q.max_msg_size();
        if let Some(m) = msgs.iter().find(|m| m.len() > max) {
            let e = PutError::TooLarge { len: m.len(), max };
            return Err(errors::put_error(py, &self.name, &e));
        }
        let mut done = 0usize;
        let result = blocking(
            py,
            wait,
            |e: &(usize, PutError)| is_full(&e.1),
            |slice| {
                let rest = &msgs[done..];
                let r = match slice {
                    None => q.try_put_many_priority(rest, priority),
                    Some(d) => q.put_many_priority_timeout(rest, priority, d),
                };
                r.map_err(|(n, e)| {
                    done += n;
                    (done, e)
                })
            },
        )?;
        result.map_err(|(n, e)| {
            let err = errors::put_error(py, &self.name, &e);
            // How many went in before the error: `exc.count`.
            let _ = err.value(py).setattr("count", n);
            err
        })
    }

    /// Checks a `priority=` argument: the core's error for one out of range
    /// (it names the levels), and the same words for a negative one.
    fn level(&self, py: Python<'_>, q: &Queue, priority: i64) -> PyResult<usize> {
        let levels = q.priorities();
        match usize::try_from(priority) {
            Ok(p) if p < levels => Ok(p),
            Ok(p) => {
                let e = PutError::InvalidPriority {
                    priority: p,
                    priorities: levels,
                };
                Err(errors::put_error(py, &self.name, &e))
            }
            Err(_) => Err(PyValueError::new_err(format!(
                "queue {:?}: priority {priority} is out of range: the queue has {levels} level(s), 0 to {}",
                self.name,
                levels - 1
            ))),
        }
    }

    fn get_batch<'py>(
        &self,
        py: Python<'py>,
        codec: Codec,
        block: bool,
        timeout: Option<f64>,
        max_messages_to_get: usize,
    ) -> PyResult<Bound<'py, PyList>> {
        let wait = Wait::new(block, timeout)?;
        if max_messages_to_get == 0 {
            return Err(PyValueError::new_err(
                "max_messages_to_get is 0, it must be at least 1",
            ));
        }
        let q = self.queue()?;
        let mut batch = Batch::new();
        let result = blocking(py, wait, is_empty, |slice| match slice {
            None => q.try_get_many_into(&mut batch, max_messages_to_get),
            Some(d) => q.get_many_into_timeout(&mut batch, max_messages_to_get, d),
        })?;
        result.map_err(|e| errors::get_error(py, &self.name, &e))?;
        let list = PyList::empty(py);
        for msg in batch.iter() {
            list.append(Self::decode(py, codec, msg)?)?;
        }
        Ok(list)
    }
}

/// Drops a handle, unless it was inherited through fork: then it is the
/// parent's, and dropping it would free the parent's participant entry.
fn drop_handle(handle: Option<Handle>) {
    if let Some(h) = handle.filter(|h| h.generation != fork::generation()) {
        std::mem::forget(h.queue);
    }
}

fn is_full(e: &PutError) -> bool {
    matches!(e, PutError::Full | PutError::Timeout)
}

fn is_empty(e: &GetError) -> bool {
    matches!(e, GetError::Empty | GetError::Timeout)
}

#[pymethods]
impl PyQueue {
    #[new]
    #[pyo3(signature = (
        name, maxsize=0, max_msg_size=DEFAULT_MAX_MSG_SIZE, *, create=true, dir=None,
        mode=DEFAULT_MODE, priorities=1, lease_timeout=None, max_deliveries=None, dead_letter=None,
    ))]
    #[allow(clippy::too_many_arguments)] // Python's keyword arguments
    fn new(
        name: &str,
        maxsize: i64,
        max_msg_size: usize,
        create: bool,
        dir: Option<PathBuf>,
        mode: u32,
        priorities: i64,
        lease_timeout: Option<f64>,
        max_deliveries: Option<i64>,
        dead_letter: Option<String>,
    ) -> PyResult<PyQueue> {
        // Checked even with create=False: a bad value is a bug either way.
        let settings = Create {
            maxsize,
            max_msg_size,
            mode,
            priorities: settings::count_arg("priorities", priorities)?,
            lease_timeout: settings::lease_timeout_arg(lease_timeout)?,
            max_deliveries: max_deliveries
                .map(|n| settings::count_arg("max_deliveries", n))
                .transpose()?,
            dead_letter: settings::dead_letter_arg(dead_letter, max_deliveries)?,
        };
        PyQueue::open(name, create.then_some(settings), dir)
    }

    /// Puts `obj` (pickled) at priority level `priority` (0 .. priorities-1,
    /// higher served first); blocks while that level is full, at most
    /// `timeout` seconds (None: forever). Raises queue.Full when it times
    /// out (or at once with block=False), ValueError when the pickle is over
    /// max_msg_size or the priority out of range, mq.ShutDown after shutdown().
    #[pyo3(signature = (obj, block=true, timeout=None, *, priority=0))]
    fn put(
        &self,
        py: Python<'_>,
        obj: &Bound<'_, PyAny>,
        block: bool,
        timeout: Option<f64>,
        priority: i64,
    ) -> PyResult<()> {
        self.put_one(py, Codec::Pickle, obj, block, timeout, priority)
    }

    /// Takes the oldest message of the highest priority level that has one
    /// and unpickles it; blocks while the queue is
    /// empty, at most `timeout` seconds (None: forever). Raises queue.Empty
    /// when it times out (or at once with block=False), mq.ShutDown once the
    /// queue is shut down and drained.
    #[pyo3(signature = (block=true, timeout=None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.get_one(py, Codec::Pickle, block, timeout)
    }

    /// `put(obj, block=False, priority=priority)`.
    #[pyo3(signature = (obj, *, priority=0))]
    fn put_nowait(&self, py: Python<'_>, obj: &Bound<'_, PyAny>, priority: i64) -> PyResult<()> {
        self.put_one(py, Codec::Pickle, obj, false, None, priority)
    }

    /// `get(block=False)`.
    fn get_nowait<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.get_one(py, Codec::Pickle, false, None)
    }

    /// Puts `data` (bytes, bytearray or memoryview) as it is, without
    /// pickling: what `mq get` and Rust's `Queue::get` see.
    #[pyo3(signature = (data, block=true, timeout=None, *, priority=0))]
    fn put_bytes(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        block: bool,
        timeout: Option<f64>,
        priority: i64,
    ) -> PyResult<()> {
        self.put_one(py, Codec::Raw, data, block, timeout, priority)
    }

    /// Takes the oldest message as bytes, without unpickling (e.g. one
    /// written by `mq put` or by Rust).
    #[pyo3(signature = (block=true, timeout=None))]
    fn get_bytes<'py>(
        &self,
        py: Python<'py>,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.get_one(py, Codec::Raw, block, timeout)
    }

    /// Puts every object of `objs` (pickled), in order, all at level
    /// `priority`. All are pickled and size-checked before the first goes
    /// in. On a timeout raises queue.Full with `count`: how many went in.
    #[pyo3(signature = (objs, block=true, timeout=None, *, priority=0))]
    fn put_many(
        &self,
        py: Python<'_>,
        objs: &Bound<'_, PyAny>,
        block: bool,
        timeout: Option<f64>,
        priority: i64,
    ) -> PyResult<()> {
        self.put_batch(py, Codec::Pickle, objs, block, timeout, priority)
    }

    /// Takes at least one and at most `max_messages_to_get` messages
    /// (those there now), unpickled, as a list; waits as `get` for the first.
    #[pyo3(signature = (block=true, timeout=None, max_messages_to_get=1000))]
    fn get_many<'py>(
        &self,
        py: Python<'py>,
        block: bool,
        timeout: Option<f64>,
        max_messages_to_get: usize,
    ) -> PyResult<Bound<'py, PyList>> {
        self.get_batch(py, Codec::Pickle, block, timeout, max_messages_to_get)
    }

    /// `put_many` without pickling: each item is bytes-like.
    #[pyo3(signature = (items, block=true, timeout=None, *, priority=0))]
    fn put_many_bytes(
        &self,
        py: Python<'_>,
        items: &Bound<'_, PyAny>,
        block: bool,
        timeout: Option<f64>,
        priority: i64,
    ) -> PyResult<()> {
        self.put_batch(py, Codec::Raw, items, block, timeout, priority)
    }

    /// `get_many` without unpickling: a list of bytes.
    #[pyo3(signature = (block=true, timeout=None, max_messages_to_get=1000))]
    fn get_many_bytes<'py>(
        &self,
        py: Python<'py>,
        block: bool,
        timeout: Option<f64>,
        max_messages_to_get: usize,
    ) -> PyResult<Bound<'py, PyList>> {
        self.get_batch(py, Codec::Raw, block, timeout, max_messages_to_get)
    }

    /// A context manager for at-least-once delivery:
    /// `with q.lease() as obj: work(obj)` takes the oldest message (waiting
    /// as `get`) and acknowledges it when the block ends normally; an
    /// exception in the block, or this process dying, puts it back.
    #[pyo3(signature = (block=true, timeout=None))]
    fn lease(&self, block: bool, timeout: Option<f64>) -> PyResult<LeaseContext> {
        let wait = Wait::new(block, timeout)?;
        Ok(LeaseContext::new(self.queue()?, self.name.clone(), wait))
    }

    /// Takes the oldest message as a `Lease` (raw bytes in `.data`) that
    /// must be settled with `.ack()` or `.release()`; unsettled, it goes back
    /// to the queue when the Lease is dropped or the process dies.
    #[pyo3(signature = (block=true, timeout=None))]
    fn lease_bytes(&self, py: Python<'_>, block: bool, timeout: Option<f64>) -> PyResult<PyLease> {
        let wait = Wait::new(block, timeout)?;
        PyLease::take(py, self.queue()?, &self.name, wait)
    }

    /// The number of messages in the queue now (others may change it at once).
    fn qsize(&self) -> PyResult<usize> {
        Ok(self.queue()?.len())
    }

    /// Whether the queue holds no message now.
    fn empty(&self) -> PyResult<bool> {
        Ok(self.queue()?.is_empty())
    }

    /// Whether every slot is taken now.
    fn full(&self) -> PyResult<bool> {
        Ok(self.queue()?.is_full())
    }

    /// End of stream for every process: puts raise mq.ShutDown at once; gets
    /// take what is left, then raise mq.ShutDown. Calling it again does nothing.
    fn shutdown(&self) -> PyResult<()> {
        // AlreadyClosed: someone shut it down first, which is what was asked.
        let _ = self.queue()?.close();
        Ok(())
    }

    /// Whether the queue was shut down (by any process).
    #[getter]
    fn is_shutdown(&self) -> PyResult<bool> {
        Ok(self.queue()?.is_closed())
    }

    /// Detaches this handle (other processes and the queue are unaffected);
    /// later calls on it raise ValueError. An unsettled Lease keeps the
    /// handle alive until it is settled.
    fn close(&self) {
        let handle = self.lock().take();
        drop_handle(handle);
    }

    /// Does nothing (multiprocessing.Queue compatibility: there is no feeder
    /// thread; a put has finished when it returns).
    fn join_thread(&self) {}

    /// Does nothing (multiprocessing.Queue compatibility).
    fn cancel_join_thread(&self) {}

    /// The queue's name.
    #[getter(name)]
    fn py_name(&self) -> &str {
        &self.name
    }

    /// The queue directory (absolute).
    #[getter]
    fn dir(&self) -> PathBuf {
        self.dir.clone()
    }

    /// How many messages each priority level holds at most (its maxsize;
    /// the queue holds `capacity * priorities`).
    #[getter]
    fn capacity(&self) -> PyResult<usize> {
        Ok(self.queue()?.capacity())
    }

    /// The number of priority levels (1: no priorities), as the queue was created.
    #[getter]
    fn priorities(&self) -> PyResult<usize> {
        Ok(self.queue()?.priorities())
    }

    /// Seconds a lease lasts without ack() or renew() (None: while its
    /// holder lives), as the queue was created.
    #[getter]
    fn lease_timeout(&self) -> PyResult<Option<f64>> {
        Ok(self.queue()?.lease_timeout().map(|t| t.as_secs_f64()))
    }

    /// How many times a message may be delivered (None: unlimited).
    #[getter]
    fn max_deliveries(&self) -> PyResult<Option<usize>> {
        Ok(self.queue()?.max_deliveries())
    }

    /// The name of the queue that takes messages past max_deliveries (None: they are dropped).
    #[getter]
    fn dead_letter(&self) -> PyResult<Option<String>> {
        Ok(self.queue()?.dead_letter().map(str::to_owned))
    }

    /// Everything `mq inspect` shows, as a dict: sizes, settings (priorities,
    /// lease_timeout in seconds, max_deliveries, dead_letter,
    /// dead_letters_of), counters (total_put, total_got, redelivered,
    /// expired, dropped_poison, dead_lettered, ...), and lists of `levels`,
    /// `leases` and `participants`. Read field by field: not atomic under load.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        settings::stats_dict(py, &self.queue()?.stats())
    }

    /// The largest message in bytes (after pickling, for put).
    #[getter]
    fn max_msg_size(&self) -> PyResult<usize> {
        Ok(self.queue()?.max_msg_size())
    }

    /// A pickled Queue is its name and directory: unpickling opens the
    /// queue by name (FileNotFoundError if it was removed meanwhile).
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let reopen = py.import("mq")?.getattr("_reopen")?;
        let args = (self.name.as_str(), self.dir.clone()).into_pyobject(py)?;
        PyTuple::new(py, [reopen, args.into_any()])
    }

    fn __repr__(&self) -> String {
        let state = if self.lock().is_some() {
            ""
        } else {
            ", closed"
        };
        format!(
            "<mq.Queue {:?} in {}{state}>",
            self.name,
            self.dir.display()
        )
    }
}

impl Drop for PyQueue {
    fn drop(&mut self) {
        let handle = self
            .handle
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        drop_handle(handle);
    }
}
