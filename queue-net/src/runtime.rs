//! The crate's own tokio runtime: one per process, started on first use, two
//! worker threads. Every blocking verb of this crate is a `block_on` on it, so
//! callers see a blocking API like `queue_core::Queue` and need no runtime.
//!
//! Calling a blocking verb from inside another tokio runtime's task panics
//! (tokio forbids nested `block_on`); use `tokio::task::spawn_blocking` there.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Runtime;

/// Worker threads: the client's socket tasks and ack handling; the callers'
/// threads run the futures themselves in `block_on`.
const WORKER_THREADS: usize = 2;

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("mq-net")
            .enable_all()
            .build()
            // Only fails when the OS refuses threads or an epoll fd: nothing
            // in this crate can work then.
            .expect("cannot start the queue-net runtime (no threads or file descriptors left)")
    })
}

/// Runs `fut` to completion on the crate's runtime, blocking this thread.
pub(crate) fn block_on<F: Future>(fut: F) -> F::Output {
    runtime().block_on(fut)
}

/// Puts a leased message back (nak): before returning when called from a
/// plain thread, so the next get can take it; in the background when called
/// from inside a runtime (a drop there must not block).
pub(crate) fn nak_now_or_soon(msg: async_nats::jetstream::Message) {
    let nak = async move {
        // Confirmed, so it is not lost when the last client handle closes
        // the connection right after.
        let _ = msg
            .double_ack_with(async_nats::jetstream::AckKind::Nak(None))
            .await;
    };
    if tokio::runtime::Handle::try_current().is_ok() {
        runtime().spawn(nak);
    } else {
        runtime().block_on(nak);
    }
}
