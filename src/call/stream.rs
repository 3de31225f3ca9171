//! Event streams: one bounded queue per subscriber, typed per-kind views on top.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::event::{
    CallEvent, InviteEvent, MediaEvent, MessageEvent, ParticipantEvent, PropertyEvent,
};

/// A subscriber's view of a [`Call`](crate::Call)'s events: `Stream<Item = CallEvent>`.
///
/// Each stream has its own bounded queue. A subscriber that falls behind gets
/// [`CallEvent::Lagged`] saying how many events it missed; other subscribers are not slowed.
/// The stream ends after [`CallEvent::Closed`]. Dropping it frees its queue.
pub struct EventStream {
    inner: BroadcastStream<CallEvent>,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream").finish_non_exhaustive()
    }
}

impl EventStream {
    pub(crate) fn new(rx: broadcast::Receiver<CallEvent>) -> Self {
        EventStream {
            inner: BroadcastStream::new(rx),
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

    /// Only media events (tracks published and unpublished, remote tracks arriving and leaving).
    pub fn media(self) -> KindStream<MediaEvent> {
        self.kind(|ev| match ev {
            CallEvent::Media(m) => Some(m),
            _ => None,
        })
    }

    fn kind<T>(self, pick: fn(CallEvent) -> Option<T>) -> KindStream<T> {
        KindStream { inner: self, pick }
    }
}

impl Stream for EventStream {
    type Item = CallEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<CallEvent>> {
        Pin::new(&mut self.inner).poll_next(cx).map(|item| {
            item.map(|res| match res {
                Ok(ev) => ev,
                Err(BroadcastStreamRecvError::Lagged(missed)) => CallEvent::Lagged { missed },
            })
        })
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
/// Ends when the call closes.
pub struct KindStream<T> {
    inner: EventStream,
    pick: fn(CallEvent) -> Option<T>,
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
