//! The event ring behind a call's streams: one queue of at most `capacity` events shared by
//! every subscriber, each with its own cursor. It keeps exactly `capacity` events (not a power
//! of two above it), holds memory only for the events some subscriber has yet to read (an idle
//! call holds none: the queue grows as events wait and gives its memory back once they are
//! read), and tells a subscriber that fell more than `capacity` events behind how many it
//! missed.
//!
//! Why not `tokio::sync::broadcast`: it allocates its whole ring when made, so a call with the
//! default 4,096 events cost ~0.8 MiB at rest.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// Why a receive gives no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TryRecvError {
    /// Nothing queued now.
    Empty,
    /// The subscriber fell behind: this many events were dropped for it.
    Lagged(u64),
    /// The sender is gone and every queued event was read.
    Closed,
}

/// Why a waiting receive ends without an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecvError {
    /// This many events were dropped for the subscriber.
    Lagged(u64),
    /// The sender is gone and every queued event was read.
    Closed,
}

/// Makes a ring keeping at most `capacity` events (at least 1), and its first subscriber.
/// Nothing is allocated for events until one is sent.
pub(crate) fn channel<T: Clone>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let ring = Arc::new(Ring {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            head: 0,
            capacity: capacity.max(1),
            receivers: 1,
            closed: false,
        }),
        notify: Notify::new(),
    });
    (Sender { ring: ring.clone() }, Receiver { ring, next: 0 })
}

struct Ring<T> {
    state: Mutex<State<T>>,
    notify: Notify,
}

struct State<T> {
    /// The events some subscriber has not read yet, oldest first.
    queue: VecDeque<Entry<T>>,
    /// The number of `queue[0]` in the ring's sequence (events are numbered from 0).
    head: u64,
    capacity: usize,
    receivers: usize,
    closed: bool,
}

struct Entry<T> {
    event: T,
    /// Subscribers that have still to read it.
    unread: usize,
}

impl<T> State<T> {
    fn tail(&self) -> u64 {
        self.head + self.queue.len() as u64
    }

    /// Drops events every subscriber has read, and the memory of a queue that ran dry.
    fn trim(&mut self) {
        while self.queue.front().is_some_and(|e| e.unread == 0) {
            self.queue.pop_front();
            self.head += 1;
        }
        // A queue that ran dry after a burst keeps room for a short one, not for the burst.
        if self.queue.is_empty() && self.queue.capacity() > 256 {
            self.queue.shrink_to(64);
        }
    }
}

impl<T> Ring<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Publishes events to every subscriber. Dropping it ends the streams once they have read
/// what is queued.
pub(crate) struct Sender<T> {
    ring: Arc<Ring<T>>,
}

impl<T: Clone> Sender<T> {
    /// Queues `event` for every subscriber now (with none, it is dropped: events are not kept
    /// for subscribers to come). A full ring drops its oldest event.
    pub(crate) fn send(&self, event: T) {
        let mut state = self.ring.lock();
        if state.receivers == 0 {
            return;
        }
        if state.queue.len() == state.capacity {
            state.queue.pop_front();
            state.head += 1;
        }
        let unread = state.receivers;
        state.queue.push_back(Entry { event, unread });
        drop(state);
        self.ring.notify.notify_waiters();
    }

    /// A subscriber to the events sent from now on.
    pub(crate) fn subscribe(&self) -> Receiver<T> {
        let mut state = self.ring.lock();
        state.receivers += 1;
        Receiver {
            ring: self.ring.clone(),
            next: state.tail(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.ring.lock().closed = true;
        self.ring.notify.notify_waiters();
    }
}

/// One subscriber: its cursor in the ring.
pub(crate) struct Receiver<T> {
    ring: Arc<Ring<T>>,
    /// The number of the next event it reads.
    next: u64,
}

impl<T: Clone> Receiver<T> {
    /// The next event if one is queued, without waiting.
    pub(crate) fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut state = self.ring.lock();
        if self.next < state.head {
            let missed = state.head - self.next;
            self.next = state.head;
            return Err(TryRecvError::Lagged(missed));
        }
        if self.next == state.tail() {
            return Err(if state.closed {
                TryRecvError::Closed
            } else {
                TryRecvError::Empty
            });
        }
        let at = (self.next - state.head) as usize;
        self.next += 1;
        let entry = &mut state.queue[at];
        entry.unread -= 1;
        let event = if at == 0 && entry.unread == 0 {
            // The last reader of the oldest event takes it instead of a copy.
            let entry = state.queue.pop_front().expect("read above");
            state.head += 1;
            entry.event
        } else {
            entry.event.clone()
        };
        state.trim();
        Ok(event)
    }

    /// The next event, waiting for one.
    pub(crate) async fn recv(&mut self) -> Result<T, RecvError> {
        let ring = self.ring.clone();
        loop {
            let notified = ring.notify.notified();
            tokio::pin!(notified);
            // Registered before looking, so an event sent in between still wakes it.
            notified.as_mut().enable();
            match self.try_recv() {
                Ok(event) => return Ok(event),
                Err(TryRecvError::Lagged(missed)) => return Err(RecvError::Lagged(missed)),
                Err(TryRecvError::Closed) => return Err(RecvError::Closed),
                Err(TryRecvError::Empty) => notified.await,
            }
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = self.ring.lock();
        state.receivers -= 1;
        let from = self.next.max(state.head);
        let start = (from - state.head) as usize;
        for entry in state.queue.iter_mut().skip(start) {
            entry.unread -= 1;
        }
        state.trim();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_exactly_its_capacity_and_counts_what_a_laggard_missed() {
        let (tx, mut rx) = channel::<u32>(3);
        for i in 0..5 {
            tx.send(i);
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Lagged(2)));
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.try_recv(), Ok(3));
        assert_eq!(rx.try_recv(), Ok(4));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        drop(tx);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    }

    #[test]
    fn memory_is_held_only_while_someone_has_to_read() {
        let (tx, mut a) = channel::<Vec<u8>>(4096);
        let mut b = tx.subscribe();
        for _ in 0..1000 {
            tx.send(vec![0; 10]);
        }
        assert!(tx.ring.lock().queue.capacity() >= 1000);
        for _ in 0..1000 {
            a.try_recv().unwrap();
        }
        assert_eq!(tx.ring.lock().queue.len(), 1000, "b has yet to read them");
        for _ in 0..500 {
            b.try_recv().unwrap();
        }
        assert_eq!(tx.ring.lock().queue.len(), 500);
        drop(b);
        let state = tx.ring.lock();
        assert_eq!(state.queue.len(), 0, "nobody is left to read");
        assert!(state.queue.capacity() <= 64, "and the memory is given back");
    }

    #[test]
    fn a_new_subscriber_sees_only_later_events_and_none_without_subscribers_are_kept() {
        let (tx, rx) = channel::<u32>(8);
        drop(rx);
        tx.send(1);
        assert_eq!(tx.ring.lock().queue.len(), 0);
        let mut late = tx.subscribe();
        tx.send(2);
        assert_eq!(late.try_recv(), Ok(2));
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_for_an_event_and_for_the_end() {
        let (tx, mut rx) = channel::<u32>(8);
        let waiter = tokio::spawn(async move {
            let first = rx.recv().await;
            let second = rx.recv().await;
            (first, second)
        });
        tokio::task::yield_now().await;
        tx.send(7);
        drop(tx);
        assert_eq!(waiter.await.unwrap(), (Ok(7), Err(RecvError::Closed)));
    }
}
