//! Each hub shard runs on a thread of its own.
//!
//! On a busy node the connection tasks spend the runtime's time in socket writes: one pass
//! over 1,000 sockets takes several milliseconds. A shard scheduled among them would wait
//! behind every connection woken before it, so a publication would reach the queues a pass
//! late, and the order in which connections run would change from pass to pass (the local
//! queue overflows into the shared one). On its own thread a shard runs as soon as a command
//! arrives, since the kernel wakes the thread; its pushes land in queues whose connections are
//! still waiting for their turn in the current pass, and the connections it wakes join the
//! runtime's shared queue in the order they were woken.

use std::{future::Future, io};

use tokio_util::task::TaskTracker;

/// Runs `task` to completion on a new thread named `name`, on a current-thread runtime (with
/// I/O and timers) of its own. `tracker` counts the task until it ends. What the task spawns
/// runs on the same thread and is dropped with it.
pub(crate) fn spawn(
    name: String,
    task: impl Future<Output = ()> + Send + 'static,
    tracker: &TaskTracker,
) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let task = tracker.track_future(task);
    std::thread::Builder::new()
        .name(name)
        .spawn(move || runtime.block_on(task))?;
    Ok(())
}
