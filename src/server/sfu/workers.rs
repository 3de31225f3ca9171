//! Media workers: threads that each run a single-threaded tokio runtime, and the rule that puts
//! all of one room's media on one of them.
//!
//! Forwarding a packet takes several task hops (the publisher's peer-connection driver, the
//! track's reader, each subscriber's driver). On a multi-threaded runtime every hop may wake a
//! parked thread, and on a 2-core machine those wakeups cost about as much as the forwarding
//! itself (see docs/benchmarks.md). With a room's peer connections, drivers and readers on one
//! thread, a hop is a queue push on that thread; rooms spread over the workers use the cores.

use std::hash::{BuildHasher, Hash};
use std::io;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

use crate::model::RoomId;

/// The SFU's worker threads, each started when a room first needs it (a server that carries no
/// media starts none). Dropping this stops them (their tasks are dropped).
pub(crate) struct MediaWorkers {
    /// `None` in a slot whose thread could not be started: its rooms run on the caller's runtime.
    slots: Vec<OnceLock<Option<Worker>>>,
    hasher: std::collections::hash_map::RandomState,
}

struct Worker {
    handle: Handle,
    /// Dropping it lets the worker's thread finish.
    _stop: oneshot::Sender<()>,
}

impl Worker {
    fn start(i: usize) -> io::Result<Worker> {
        let runtime = Builder::new_current_thread().enable_all().build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("jrtc-media-{i}"))
            .spawn(move || {
                CURRENT.set(Some(i));
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })?;
        Ok(Worker {
            handle,
            _stop: stop,
        })
    }
}

impl MediaWorkers {
    /// Room for `count` workers (at least one); none is started yet.
    pub(crate) fn new(count: usize) -> Self {
        MediaWorkers {
            slots: (0..count.max(1)).map(|_| OnceLock::new()).collect(),
            hasher: Default::default(),
        }
    }

    /// The runtime that runs `room`'s media: its worker's, started if need be. Called from
    /// within a tokio runtime, whose handle stands in if the worker cannot be started.
    pub(crate) fn for_room(&self, room: &RoomId) -> Handle {
        let mut hasher = self.hasher.build_hasher();
        room.hash(&mut hasher);
        let i = std::hash::Hasher::finish(&hasher) as usize % self.slots.len();
        self.worker(i)
            .map_or_else(Handle::current, |w| w.handle.clone())
    }

    fn worker(&self, i: usize) -> Option<&Worker> {
        self.slots[i]
            .get_or_init(|| {
                Worker::start(i)
                    .inspect_err(|error| {
                        tracing::warn!(%error, "cannot start a media worker; using the server's runtime")
                    })
                    .ok()
            })
            .as_ref()
    }

    /// Tasks alive on the started workers (for tests that check nothing is left behind).
    pub(crate) fn alive_tasks(&self) -> usize {
        self.slots
            .iter()
            .filter_map(|slot| slot.get()?.as_ref())
            .map(|w| w.handle.metrics().num_alive_tasks())
            .sum()
    }
}

thread_local! {
    /// The index of the media worker this thread is, if it is one.
    static CURRENT: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// The index of the media worker the calling thread is (`None` off the workers).
pub(crate) fn current() -> Option<usize> {
    CURRENT.get()
}

/// One worker per available core.
pub(crate) fn default_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    /// Sends on drop: tells the test a task was dropped.
    struct Dropped(mpsc::Sender<()>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            let _ = self.0.send(());
        }
    }

    #[test]
    fn a_worker_thread_knows_its_index() {
        let workers = MediaWorkers::new(3);
        let (index_tx, index) = mpsc::channel();
        workers.worker(2).unwrap().handle.spawn(async move {
            let _ = index_tx.send(current());
        });
        assert_eq!(index.recv_timeout(Duration::from_secs(5)).unwrap(), Some(2));
        assert_eq!(current(), None);
    }

    #[test]
    fn a_room_stays_on_one_worker_and_dropping_the_workers_ends_their_tasks() {
        let workers = MediaWorkers::new(3);
        let room = RoomId::from("standup");
        let first = workers.for_room(&room).id();
        assert!((0..10).all(|_| workers.for_room(&room).id() == first));
        let (tx, rx) = mpsc::channel();
        let (started_tx, started) = mpsc::channel();
        for i in 0..3 {
            let guard = Dropped(tx.clone());
            let started_tx = started_tx.clone();
            workers.worker(i).unwrap().handle.spawn(async move {
                let _guard = guard;
                let _ = started_tx.send(std::thread::current().name().map(str::to_owned));
                std::future::pending::<()>().await;
            });
        }
        let mut names: Vec<_> = (0..3)
            .map(|_| {
                started
                    .recv_timeout(Duration::from_secs(5))
                    .unwrap()
                    .unwrap()
            })
            .collect();
        names.sort();
        assert_eq!(names, ["jrtc-media-0", "jrtc-media-1", "jrtc-media-2"]);
        assert_eq!(workers.alive_tasks(), 3);
        drop(workers);
        for _ in 0..3 {
            rx.recv_timeout(Duration::from_secs(5))
                .expect("a worker's task outlived the workers");
        }
    }
}
