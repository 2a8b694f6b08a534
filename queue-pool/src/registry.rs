//! The task registry: [`Task`] names a task and fixes its input and output
//! types; [`Registry`] maps task names to their functions. The parent reads
//! the types from it to check submissions; a worker runs the functions,
//! catching panics.

use std::any::{TypeId, type_name};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::wire::Outcome;

thread_local! {
    /// Set while a task function runs on this thread.
    pub(crate) static IN_TASK: Cell<bool> = const { Cell::new(false) };
    /// The last panic message of a task, from the worker's panic hook.
    pub(crate) static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// A task's name together with its input and output types.
///
/// Declare one constant per task and use it both to [register](Registry::register)
/// the function and to [submit](crate::Pool::submit) work, so the types always match:
///
/// ```
/// use queue_pool::Task;
/// const WORD_COUNT: Task<String, usize> = Task::new("word-count");
/// assert_eq!(WORD_COUNT.name(), "word-count");
/// ```
pub struct Task<I, O> {
    pub(crate) name: &'static str,
    _types: PhantomData<fn(I) -> O>,
}

impl<I, O> Task<I, O> {
    /// Names a task taking `I` and returning `O`.
    pub const fn new(name: &'static str) -> Self {
        Task {
            name,
            _types: PhantomData,
        }
    }

    /// The task's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

impl<I, O> Clone for Task<I, O> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<I, O> Copy for Task<I, O> {}

impl<I, O> fmt::Debug for Task<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Task({:?}: {} -> {})",
            self.name,
            type_name::<I>(),
            type_name::<O>()
        )
    }
}

/// The types of a registered task, checked when a task is submitted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Signature {
    pub(crate) input: TypeId,
    pub(crate) output: OutputType,
    pub(crate) input_name: &'static str,
}

/// A task's output type: what [`TaskResult::output`](crate::TaskResult::output)
/// checks the requested type against, and its name for the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutputType {
    pub(crate) id: TypeId,
    pub(crate) name: &'static str,
}

impl OutputType {
    /// The output type `O`.
    pub(crate) fn of<O: 'static>() -> OutputType {
        OutputType {
            id: TypeId::of::<O>(),
            name: type_name::<O>(),
        }
    }
}

/// A task function with its types erased: input bytes in, outcome out.
type Handler = dyn Fn(&[u8]) -> Outcome + Send + Sync;

/// One registered task: its types and its function.
struct Entry {
    signature: Signature,
    handler: Box<Handler>,
}

/// The tasks a pool can run, by name. Build the same registry in the parent
/// (to submit) and in the workers (to run): the usual way is a function
/// called in both places.
///
/// ```
/// use queue_pool::{Registry, Task};
/// const SQUARE: Task<u64, u64> = Task::new("square");
/// const SHOUT: Task<String, String> = Task::new("shout");
///
/// fn registry() -> Registry {
///     Registry::new()
///         .register(SQUARE, |x: u64| Ok::<_, String>(x * x))
///         .register(SHOUT, |s: String| -> Result<String, std::io::Error> { Ok(s.to_uppercase()) })
/// }
/// assert_eq!(registry().names().collect::<Vec<_>>(), ["shout", "square"]);
/// ```
#[derive(Default)]
pub struct Registry {
    tasks: BTreeMap<&'static str, Entry>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.tasks
                    .iter()
                    .map(|(name, e)| (name, (e.signature.input_name, e.signature.output.name))),
            )
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Adds `task`, run by `f`. The function's error (anything printable) is
    /// sent back as [`TaskError::Failed`](crate::TaskError::Failed) with its message. Registering a
    /// name again replaces the earlier function.
    pub fn register<I, O, E, F>(mut self, task: Task<I, O>, f: F) -> Registry
    where
        I: DeserializeOwned + 'static,
        O: Serialize + 'static,
        E: fmt::Display,
        F: Fn(I) -> Result<O, E> + Send + Sync + 'static,
    {
        let signature = Signature {
            input: TypeId::of::<I>(),
            output: OutputType::of::<O>(),
            input_name: type_name::<I>(),
        };
        let handler = move |bytes: &[u8]| -> Outcome {
            let input: I = match postcard::from_bytes(bytes) {
                Ok(input) => input,
                Err(e) => return Outcome::BadInput(e.to_string()),
            };
            match f(input) {
                Ok(output) => match postcard::to_allocvec(&output) {
                    Ok(bytes) => Outcome::Ok(bytes),
                    Err(e) => Outcome::Failed(format!("cannot encode the result: {e}")),
                },
                Err(e) => Outcome::Failed(e.to_string()),
            }
        };
        let handler = Box::new(handler);
        self.tasks.insert(task.name, Entry { signature, handler });
        self
    }

    /// The registered task names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.tasks.keys().copied()
    }

    /// The name and types of every registered task, for a [`Pool`](crate::Pool).
    pub(crate) fn signatures(&self) -> BTreeMap<&'static str, Signature> {
        self.tasks
            .iter()
            .map(|(name, e)| (*name, e.signature))
            .collect()
    }

    /// Runs task `name` on encoded input, catching panics.
    pub(crate) fn run(&self, name: &str, input: &[u8]) -> Outcome {
        let Some(Entry { handler, .. }) = self.tasks.get(name) else {
            return Outcome::UnknownTask(name.to_owned());
        };
        IN_TASK.with(|t| t.set(true));
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| handler(input)));
        IN_TASK.with(|t| t.set(false));
        outcome.unwrap_or_else(|payload| {
            let message = LAST_PANIC
                .with(|p| p.borrow_mut().take())
                .unwrap_or_else(|| panic_text(payload.as_ref()));
            Outcome::Panicked(message)
        })
    }
}

/// The text of a panic payload.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-text payload".to_owned()
    }
}

// ------------------------------------------------------------- wire format

#[cfg(test)]
mod tests {
    use super::*;

    const SQUARE: Task<u64, u64> = Task::new("square");
    const FAIL: Task<String, ()> = Task::new("fail");
    const BOOM: Task<(), ()> = Task::new("boom");

    fn registry() -> Registry {
        Registry::new()
            .register(SQUARE, |x: u64| Ok::<_, String>(x * x))
            .register(FAIL, |m: String| Err::<(), _>(m))
            .register(BOOM, |()| -> Result<(), String> { panic!("kaboom") })
    }

    fn run<I: Serialize, O>(task: Task<I, O>, input: &I) -> Outcome {
        registry().run(task.name(), &postcard::to_allocvec(input).unwrap())
    }

    #[test]
    fn registry_runs_tasks_and_catches_panics() {
        match run(SQUARE, &7) {
            Outcome::Ok(bytes) => assert_eq!(postcard::from_bytes::<u64>(&bytes).unwrap(), 49),
            _ => panic!("square failed"),
        }
        assert!(matches!(run(FAIL, &"nope".to_string()), Outcome::Failed(m) if m == "nope"));
        assert!(matches!(run(BOOM, &()), Outcome::Panicked(m) if m.contains("kaboom")));
        assert!(matches!(
            registry().run("missing", &[]),
            Outcome::UnknownTask(n) if n == "missing"
        ));
        assert!(matches!(
            registry().run("square", &[0xff; 11]),
            Outcome::BadInput(_)
        ));
    }
}
