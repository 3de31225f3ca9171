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

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

use crate::model::RoomId;

/// The SFU's worker threads. Dropping this stops them (their tasks are dropped).
pub(crate) struct MediaWorkers {
    handles: Vec<Handle>,
    /// Dropping a sender lets its worker's thread finish.
    _stops: Vec<oneshot::Sender<()>>,
    hasher: std::collections::hash_map::RandomState,
}

impl MediaWorkers {
    /// Starts `count` workers (at least one).
    pub(crate) fn start(count: usize) -> io::Result<Self> {
        let mut handles = Vec::new();
        let mut stops = Vec::new();
        for i in 0..count.max(1) {
            let runtime = Builder::new_current_thread().enable_all().build()?;
            handles.push(runtime.handle().clone());
            let (stop, stopped) = oneshot::channel::<()>();
            stops.push(stop);
            std::thread::Builder::new()
                .name(format!("jrtc-media-{i}"))
                .spawn(move || {
                    runtime.block_on(async {
                        let _ = stopped.await;
                    });
                })?;
        }
        Ok(MediaWorkers {
            handles,
            _stops: stops,
            hasher: Default::default(),
        })
    }

    /// The worker that runs `room`'s media.
    pub(crate) fn for_room(&self, room: &RoomId) -> &Handle {
        let mut hasher = self.hasher.build_hasher();
        room.hash(&mut hasher);
        let i = std::hash::Hasher::finish(&hasher) as usize % self.handles.len();
        &self.handles[i]
    }

    /// Tasks alive on all workers (for tests that check nothing is left behind).
    pub(crate) fn alive_tasks(&self) -> usize {
        self.handles
            .iter()
            .map(|h| h.metrics().num_alive_tasks())
            .sum()
    }
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
    fn a_room_stays_on_one_worker_and_dropping_the_workers_ends_their_tasks() {
        let workers = MediaWorkers::start(3).unwrap();
        let room = RoomId::from("standup");
        let first = workers.for_room(&room).id();
        assert!((0..10).all(|_| workers.for_room(&room).id() == first));
        let (tx, rx) = mpsc::channel();
        let (started_tx, started) = mpsc::channel();
        for i in 0..3 {
            let guard = Dropped(tx.clone());
            let started_tx = started_tx.clone();
            workers.handles[i].spawn(async move {
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
