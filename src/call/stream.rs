//! Event streams: one bounded queue per subscriber, typed per-kind views on top.

use std::pin::Pin;
use std::task::{Context, Poll};

use super::ring::{self, RecvError, TryRecvError};
use futures::Stream;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::task::coop;
use tokio_util::sync::ReusableBoxFuture;

use crate::event::{
    CallEvent, InviteEvent, MediaEvent, MessageEvent, ParticipantEvent, PropertyEvent,
};
use crate::model::Reason;

/// A subscriber's view of a [`Call`](crate::Call)'s events: `Stream<Item = CallEvent>`.
///
/// Each stream has its own bounded queue. A subscriber that falls behind gets
/// [`CallEvent::Lagged`] saying how many events it missed; other subscribers are not slowed.
/// The stream ends after [`CallEvent::Closed`]. Dropping it frees its queue.
pub struct EventStream {
    /// The queue, while no wait is in progress.
    rx: Option<ring::Receiver<CallEvent>>,
    /// A wait for the next event, holding the queue until it completes; made at the first wait,
    /// its box reused after.
    wait: Option<ReusableBoxFuture<'static, Waited>>,
}

/// What a wait for the next event gives back: the event (or why there is none) and the queue.
type Waited = (Result<CallEvent, RecvError>, ring::Receiver<CallEvent>);

async fn next_event(mut rx: ring::Receiver<CallEvent>) -> Waited {
    (rx.recv().await, rx)
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream").finish_non_exhaustive()
    }
}

impl EventStream {
    pub(crate) fn new(rx: ring::Receiver<CallEvent>) -> Self {
        EventStream {
            rx: Some(rx),
            wait: None,
        }
    }

    /// Only participant events (joined, left, updated).
    pub fn participants(self) -> KindStream<ParticipantEvent> {
        self.kind(|ev| match ev {
            CallEvent::Participant(p) => Some(p),
            _ => None,
        })
    }

    /// Only call-property events.
    pub fn properties(self) -> KindStream<PropertyEvent> {
        self.kind(|ev| match ev {
            CallEvent::Property(p) => Some(p),
            _ => None,
        })
    }

    /// Only message events (received messages and send outcomes).
    pub fn messages(self) -> KindStream<MessageEvent> {
        self.kind(|ev| match ev {
            CallEvent::Message(m) => Some(m),
            _ => None,
        })
    }

    /// Only invitation events (received, answered, canceled, and request outcomes).
    pub fn invites(self) -> KindStream<InviteEvent> {
        self.kind(|ev| match ev {
            CallEvent::Invite(i) => Some(i),
            _ => None,
        })
    }

    /// Only recording events (started, stopped, aborted).
    pub fn recording(self) -> KindStream<crate::event::RecordingEvent> {
        self.kind(|ev| match ev {
            CallEvent::Recording(r) => Some(r),
            _ => None,
        })
    }

    /// Only media events (tracks published and unpublished, remote tracks arriving and leaving).
    pub fn media(self) -> KindStream<MediaEvent> {
        self.kind(|ev| match ev {
            CallEvent::Media(m) => Some(m),
            _ => None,
        })
    }

    fn kind<T>(self, pick: fn(CallEvent) -> Option<T>) -> KindStream<T> {
        KindStream {
            inner: self,
            pick,
            closed: None,
        }
    }
}

impl Stream for EventStream {
    type Item = CallEvent;

    /// Takes a queued event without waiting when there is one (the common case under load: no
    /// future to build or wake), and otherwise waits on the queue. Each event taken counts
    /// against the task's cooperative budget, so a subscriber that never finds its queue empty
    /// still lets other tasks run.
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<CallEvent>> {
        let this = &mut *self;
        let budget = std::task::ready!(coop::poll_proceed(cx));
        if let Some(mut rx) = this.rx.take() {
            let res = match rx.try_recv() {
                Ok(ev) => Ok(ev),
                Err(TryRecvError::Lagged(missed)) => Err(RecvError::Lagged(missed)),
                Err(TryRecvError::Closed) => Err(RecvError::Closed),
                Err(TryRecvError::Empty) => {
                    match &mut this.wait {
                        Some(wait) => wait.set(next_event(rx)),
                        None => this.wait = Some(ReusableBoxFuture::new(next_event(rx))),
                    }
                    return this.poll_wait(cx, budget);
                }
            };
            this.rx = Some(rx);
            budget.made_progress();
            return Poll::Ready(item(res));
        }
        this.poll_wait(cx, budget)
    }
}

impl EventStream {
    fn poll_wait(
        &mut self,
        cx: &mut Context<'_>,
        budget: coop::RestoreOnPending,
    ) -> Poll<Option<CallEvent>> {
        // Without the queue there is always a wait holding it; were there none, the stream is over.
        let Some(wait) = self.wait.as_mut() else {
            return Poll::Ready(None);
        };
        let (res, rx) = std::task::ready!(wait.poll(cx));
        self.rx = Some(rx);
        budget.made_progress();
        Poll::Ready(item(res))
    }
}

fn item(res: Result<CallEvent, RecvError>) -> Option<CallEvent> {
    match res {
        Ok(ev) => Some(ev),
        Err(RecvError::Lagged(missed)) => Some(CallEvent::Lagged { missed }),
        Err(RecvError::Closed) => None,
    }
}

/// A subscriber fell behind and missed this many events (of every kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Error)]
#[error("the subscriber fell behind and missed {missed} events")]
pub struct Lagged {
    /// How many events were dropped for this subscriber.
    pub missed: u64,
}

/// A typed view of one kind of event; yields `Err(Lagged)` where the subscriber fell behind.
/// Ends (`None`) when the call closes; [`KindStream::closed`] then says why.
pub struct KindStream<T> {
    inner: EventStream,
    pick: fn(CallEvent) -> Option<T>,
    closed: Option<Reason>,
}

impl<T> KindStream<T> {
    /// Why the call closed, once this stream has seen it close (the
    /// [`CallEvent::Closed`] that ends every stream); `None` while it is open.
    pub fn closed(&self) -> Option<Reason> {
        self.closed
    }
}

impl<T> std::fmt::Debug for KindStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KindStream").finish_non_exhaustive()
    }
}

impl<T> Stream for KindStream<T> {
    type Item = Result<T, Lagged>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match Pin::new(&mut self.inner).poll_next(cx) {
                Poll::Ready(Some(CallEvent::Lagged { missed })) => {
                    return Poll::Ready(Some(Err(Lagged { missed })));
                }
                Poll::Ready(Some(CallEvent::Closed { reason })) => self.closed = Some(reason),
                Poll::Ready(Some(ev)) => {
                    if let Some(item) = (self.pick)(ev) {
                        return Poll::Ready(Some(Ok(item)));
                    }
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use futures::StreamExt;

    use super::*;

    fn closed() -> CallEvent {
        CallEvent::Closed {
            reason: Reason::Quit,
        }
    }

    #[tokio::test]
    async fn queued_events_then_lag_then_waiting_then_end() {
        let (tx, rx) = ring::channel(4);
        let mut events = EventStream::new(rx);
        for _ in 0..6 {
            tx.send(closed());
        }
        assert_eq!(events.next().await, Some(CallEvent::Lagged { missed: 2 }));
        for _ in 0..4 {
            assert_eq!(events.next().await, Some(closed()));
        }
        let sender = tokio::spawn(async move {
            tokio::task::yield_now().await;
            tx.send(closed());
            // Dropping the sender ends the stream after the event.
        });
        assert_eq!(events.next().await, Some(closed()));
        assert_eq!(events.next().await, None);
        assert_eq!(events.next().await, None);
        sender.await.unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_never_empty_queue_still_lets_other_tasks_run() {
        let (tx, rx) = ring::channel(4096);
        let mut events = EventStream::new(rx);
        for _ in 0..4096 {
            tx.send(closed());
        }
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        tokio::spawn(async move { flag.store(true, Ordering::SeqCst) });
        let mut taken_before_other_task_ran = 0;
        while !ran.load(Ordering::SeqCst) {
            events.next().await.expect("queued");
            taken_before_other_task_ran += 1;
            assert!(
                taken_before_other_task_ran < 4096,
                "the stream never yielded"
            );
        }
        // Tokio's budget is 128 per poll of a task; the event that was waiting when the task
        // yielded is taken when it resumes.
        assert!(
            taken_before_other_task_ran <= 129,
            "{taken_before_other_task_ran}"
        );
    }
}
