//! What a session was sent, kept until its client says it has it: a lost connection's frames are
//! replayed to the connection that resumes the session, in their first order, with nothing
//! missing and nothing twice. Sans-IO and self-contained.
//!
//! One ordered list per session holds both kinds of frame: personal frames, numbered `n` per
//! session, and the room events of the session's room, which carry the room's `seq` and are
//! shared (one `Arc`) by every member's list. A client names what it has taken with two numbers,
//! its last `n` and its last room `seq`. What it took is a prefix of the list (one ordered
//! connection delivered it), so those two numbers find the end of that prefix: after personal
//! frame `n`, and before personal frame `n + 1`, the last room event it took. Between two
//! personal frames there is at most one room's events (a new room always starts with a personal
//! `joined`), so `seq` is unambiguous there.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::model::{OperationId, RoomId};
use crate::protocol::{ErrorCode, ServerFrame};

/// Requests remembered per session, for the exactly-once rule.
pub(super) const KEPT_OPS: usize = 64;

struct Entry {
    /// The personal number, or 0 for a room event.
    n: u64,
    /// The room event's `seq` (0 for a personal frame).
    seq: u64,
    frame: Arc<ServerFrame>,
}

/// What a client says it has taken.
#[derive(Clone, Copy, Debug)]
pub(super) struct Taken<'a> {
    pub(super) received: u64,
    pub(super) room: Option<&'a RoomId>,
    pub(super) seq: Option<u64>,
}

/// What became of a repeated request.
#[derive(Debug, PartialEq)]
pub(super) enum Repeat {
    /// Not seen before: apply it.
    New,
    /// Seen, not answered yet: the answer is on its way.
    Pending,
    /// Seen and answered: these are the answer's frames, to send again.
    Answered(Vec<(u64, Arc<ServerFrame>)>),
    /// Seen, answered, and the client acknowledged the answer.
    Acknowledged,
}

struct KeptOp {
    op: OperationId,
    answered: bool,
    answers: Vec<(u64, Arc<ServerFrame>)>,
}

/// One session's kept frames and recent requests.
#[derive(Default)]
pub(crate) struct Outbox {
    entries: VecDeque<Entry>,
    /// The last personal number given out.
    last_n: u64,
    /// The highest personal number no longer kept (acknowledged, or dropped for room).
    base_n: u64,
    /// Room events dropped for room before the client took them, and the last one's room and
    /// seq (to count what a resync loses).
    dropped_events: u64,
    last_dropped: Option<(RoomId, u64)>,
    /// Personal frames dropped for room (the lowest such `n` is `base_n - dropped_personal + 1`).
    dropped_personal: u64,
    ops: VecDeque<KeptOp>,
}

impl Outbox {
    /// The last personal number given out.
    pub(super) fn last_n(&self) -> u64 {
        self.last_n
    }

    /// Keeps personal frame `frame`, numbering it; returns its number.
    pub(super) fn personal(&mut self, frame: Arc<ServerFrame>, capacity: usize) -> u64 {
        self.last_n += 1;
        let n = self.last_n;
        // A `duplicate_request` refusal is about a repeat, not the operation's answer: it is
        // not sent again as one.
        let repeat_refused = matches!(
            &*frame,
            ServerFrame::Error {
                code: ErrorCode::DuplicateRequest,
                ..
            }
        );
        if let Some(op) = frame.op()
            && !repeat_refused
            && let Some(kept) = self.ops.iter_mut().rev().find(|k| k.op == op)
        {
            kept.answered = true;
            kept.answers.push((n, frame.clone()));
        }
        self.push(Entry { n, seq: 0, frame }, capacity);
        n
    }

    /// Keeps room event `seq`.
    pub(super) fn room_event(&mut self, seq: u64, frame: Arc<ServerFrame>, capacity: usize) {
        self.push(Entry { n: 0, seq, frame }, capacity);
    }

    fn push(&mut self, entry: Entry, capacity: usize) {
        self.entries.push_back(entry);
        while self.entries.len() > capacity {
            let Some(old) = self.entries.pop_front() else {
                break;
            };
            if old.n > 0 {
                self.base_n = old.n;
                self.dropped_personal += 1;
            } else {
                self.dropped_events += 1;
                self.last_dropped = old.frame.room_event().map(|(r, s)| (r.clone(), s));
            }
        }
    }

    /// Where the first frame the client has not taken is, or `None` when the client's position
    /// is no longer kept (or was never sent).
    fn locate(&self, taken: Taken<'_>) -> Option<usize> {
        if taken.received > self.last_n || taken.received < self.base_n {
            return None;
        }
        let mut i = if taken.received == self.base_n {
            // Everything up to the front was taken; unless room events the client had not taken
            // yet were dropped. A position that names no room cannot say it had them: only a
            // resync is sure to lose nothing silently.
            if let Some((room, seq)) = &self.last_dropped {
                let had_them = taken.room.is_some_and(|r| r != room)
                    || (taken.room == Some(room) && taken.seq.is_some_and(|s| s >= *seq));
                if !had_them {
                    return None;
                }
            }
            0
        } else {
            self.entries.iter().position(|e| e.n == taken.received)? + 1
        };
        let (Some(room), Some(seq)) = (taken.room, taken.seq) else {
            return Some(i);
        };
        let mut j = i;
        while let Some(e) = self.entries.get(j) {
            if e.n > 0 {
                break;
            }
            if e.seq <= seq && e.frame.room_event().is_some_and(|(r, _)| r == room) {
                i = j + 1;
            }
            j += 1;
        }
        Some(i)
    }

    /// Forgets what the client says it has taken. Returns false when that is not a position
    /// this outbox knows (nothing is forgotten then).
    pub(super) fn acknowledge(&mut self, taken: Taken<'_>) -> bool {
        let Some(i) = self.locate(taken) else {
            return false;
        };
        for e in self.entries.drain(..i) {
            if e.n > 0 {
                self.base_n = e.n;
            }
        }
        // What was dropped before this point was taken after all.
        self.dropped_events = 0;
        self.dropped_personal = 0;
        self.last_dropped = None;
        let base = self.base_n;
        for kept in &mut self.ops {
            kept.answers.retain(|(n, _)| *n > base);
            if kept.answers.is_empty() {
                // An idle session holds no allocation for answers it no longer needs.
                kept.answers = Vec::new();
            }
        }
        if self.entries.is_empty() {
            self.entries = VecDeque::new();
        }
        true
    }

    /// Forgets everything, as if the client had acknowledged its last frame (benchmarks).
    #[cfg(feature = "internals")]
    pub(super) fn acknowledge_all(&mut self) {
        self.entries.clear();
        self.base_n = self.last_n;
        for kept in &mut self.ops {
            kept.answers = Vec::new();
        }
    }

    /// The frames after what the client has taken, to send again, with their personal numbers
    /// (`None` for room events); `None` when the client's position is no longer kept.
    pub(super) fn replay(
        &mut self,
        taken: Taken<'_>,
    ) -> Option<Vec<(Option<u64>, Arc<ServerFrame>)>> {
        if !self.acknowledge(taken) {
            return None;
        }
        Some(
            self.entries
                .iter()
                .map(|e| ((e.n > 0).then_some(e.n), e.frame.clone()))
                .collect(),
        )
    }

    /// How many frames a client at `taken` missed that are no longer kept (at least), and
    /// forgets every kept frame: the client gets the state as it is instead. The answers to
    /// requests the client has not seen are kept, numbered again after the last number (the
    /// client's next): returned, to send after the resync, so every request it is still waiting
    /// for gets its answer.
    pub(super) fn resync(
        &mut self,
        taken: Taken<'_>,
        capacity: usize,
    ) -> (u64, Vec<(u64, Arc<ServerFrame>)>) {
        // A client claiming more than was ever sent has no position: every kept answer may be
        // one it has not seen.
        let seen = if taken.received > self.last_n {
            0
        } else {
            taken.received
        };
        let missed = self.forget_all(taken);
        let mut unseen: Vec<Arc<ServerFrame>> = Vec::new();
        for kept in &mut self.ops {
            for (n, frame) in std::mem::take(&mut kept.answers) {
                if n > seen {
                    unseen.push(frame);
                }
            }
        }
        let mut again = Vec::with_capacity(unseen.len());
        for frame in unseen {
            let n = self.personal(frame.clone(), capacity);
            again.push((n, frame));
        }
        (missed, again)
    }

    fn forget_all(&mut self, taken: Taken<'_>) -> u64 {
        let personal = self
            .base_n
            .saturating_sub(taken.received)
            .min(self.dropped_personal);
        let events = match (&self.last_dropped, taken.room, taken.seq) {
            (Some((room, last)), Some(r), Some(seq)) if room == r => last.saturating_sub(seq),
            _ => self.dropped_events,
        };
        let unsent: u64 = self.entries.len() as u64;
        for e in self.entries.drain(..) {
            if e.n > 0 {
                self.base_n = e.n;
            }
        }
        self.dropped_events = 0;
        self.dropped_personal = 0;
        self.last_dropped = None;
        personal + events + unsent
    }

    /// Notes request `op` as it arrives: whether it is new, or what to do with a repeat.
    pub(super) fn request(&mut self, op: OperationId) -> Repeat {
        if let Some(kept) = self.ops.iter().rev().find(|k| k.op == op) {
            return if !kept.answered {
                Repeat::Pending
            } else if kept.answers.is_empty() {
                Repeat::Acknowledged
            } else {
                Repeat::Answered(kept.answers.clone())
            };
        }
        if self.ops.len() >= KEPT_OPS {
            // The oldest answered request goes; one still being worked on stays (its repeat
            // must not be applied again), so the list outgrows its size only while that many
            // requests wait for the media shell.
            match self.ops.iter().position(|k| k.answered) {
                Some(i) => {
                    self.ops.remove(i);
                }
                None if self.ops.len() >= 4 * KEPT_OPS => {
                    self.ops.pop_front();
                }
                None => {}
            }
        }
        self.ops.push_back(KeptOp {
            op,
            answered: false,
            answers: Vec::new(),
        });
        Repeat::New
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MessageScope;

    fn event(room: &str, seq: u64) -> Arc<ServerFrame> {
        Arc::new(ServerFrame::Message {
            room: RoomId::from(room),
            seq: Some(seq),
            from: "u".into(),
            scope: MessageScope::Group,
            content_type: "t".into(),
            content: "c".into(),
        })
    }

    fn done(op: u64) -> Arc<ServerFrame> {
        Arc::new(ServerFrame::Done {
            op: OperationId(op),
            seq: None,
        })
    }

    fn taken(received: u64, room: Option<&RoomId>, seq: Option<u64>) -> Taken<'_> {
        Taken {
            received,
            room,
            seq,
        }
    }

    #[test]
    fn a_resume_replays_exactly_what_was_not_taken() {
        let r = RoomId::from("r");
        let mut o = Outbox::default();
        o.personal(done(1), 100); // n 1
        o.room_event(1, event("r", 1), 100);
        o.room_event(2, event("r", 2), 100);
        o.personal(done(2), 100); // n 2
        o.room_event(3, event("r", 3), 100);
        // Took n 1 and seq 1: seq 2, n 2, seq 3 are missing.
        let replay = o.replay(taken(1, Some(&r), Some(1))).unwrap();
        let marks: Vec<_> = replay
            .iter()
            .map(|(n, f)| (*n, f.room_event().map(|(_, s)| s)))
            .collect();
        assert_eq!(
            marks,
            vec![(None, Some(2)), (Some(2), None), (None, Some(3))]
        );
        // Everything taken: nothing to replay, and the outbox forgets it on acknowledgement.
        assert!(o.replay(taken(2, Some(&r), Some(3))).unwrap().is_empty());
        assert!(o.entries.is_empty());
    }

    #[test]
    fn a_position_that_was_dropped_needs_a_resync() {
        let r = RoomId::from("r");
        let mut o = Outbox::default();
        for seq in 1..=10 {
            o.room_event(seq, event("r", seq), 4);
        }
        assert!(o.replay(taken(0, Some(&r), Some(3))).is_none());
        assert_eq!(
            o.resync(taken(0, Some(&r), Some(3)), 4).0,
            7,
            "3 dropped after seq 3, 4 kept"
        );
        // A claim of frames never sent is no position either.
        assert!(o.replay(taken(5, None, None)).is_none());
    }

    #[test]
    fn a_kept_frame_costs_a_session_24_bytes() {
        // The frame itself is shared: one `Arc` per frame, however many members keep it.
        assert_eq!(std::mem::size_of::<Entry>(), 24);
        eprintln!(
            "a kept entry: {} bytes; a frame: {} bytes plus its strings",
            std::mem::size_of::<Entry>(),
            std::mem::size_of::<ServerFrame>()
        );
    }

    #[test]
    fn repeated_requests_are_answered_from_what_was_kept() {
        let mut o = Outbox::default();
        assert_eq!(o.request(OperationId(7)), Repeat::New);
        assert_eq!(o.request(OperationId(7)), Repeat::Pending);
        let n = o.personal(done(7), 100);
        assert!(matches!(o.request(OperationId(7)), Repeat::Answered(a) if a[0].0 == n));
        assert!(o.acknowledge(taken(n, None, None)));
        assert_eq!(o.request(OperationId(7)), Repeat::Acknowledged);
    }

    #[test]
    fn a_resync_sends_again_the_answers_the_client_has_not_seen() {
        let mut o = Outbox::default();
        o.request(OperationId(1));
        o.personal(done(1), 4); // n 1, seen
        o.request(OperationId(2));
        for seq in 1..=10 {
            o.room_event(seq, event("r", seq), 4);
        }
        o.personal(done(2), 4); // n 2, not seen
        let (_, again) = o.resync(taken(1, None, None), 4);
        assert_eq!(again.len(), 1);
        let (n, frame) = &again[0];
        assert_eq!((*n, frame.op()), (3, Some(OperationId(2))));
        // A repeat of op 2 now gets the answer under its new number.
        assert!(matches!(o.request(OperationId(2)), Repeat::Answered(a) if a[0].0 == 3));
    }

    #[test]
    fn a_request_still_being_worked_on_is_not_forgotten() {
        let mut o = Outbox::default();
        o.request(OperationId(0));
        for op in 1..=KEPT_OPS as u64 {
            o.request(OperationId(op));
            o.personal(done(op), 1024);
        }
        assert_eq!(o.request(OperationId(0)), Repeat::Pending);
    }

    #[test]
    fn a_position_without_a_room_after_dropped_events_needs_a_resync() {
        let r = RoomId::from("r");
        let mut o = Outbox::default();
        for seq in 1..=10 {
            o.room_event(seq, event("r", seq), 4);
        }
        // Nothing personal was sent: received 0 is the front, but events 1-6 were dropped.
        assert!(o.replay(taken(0, None, None)).is_none());
        assert!(o.replay(taken(0, Some(&r), Some(3))).is_none());
        // A client that had them all is in place.
        assert!(o.replay(taken(0, Some(&r), Some(10))).is_some());
    }

    #[test]
    fn a_claim_beyond_what_was_sent_gets_every_kept_answer_again() {
        let mut o = Outbox::default();
        o.request(OperationId(1));
        o.personal(done(1), 100); // n 1
        o.request(OperationId(2));
        o.personal(done(2), 100); // n 2
        assert!(o.replay(taken(9, None, None)).is_none());
        let (_, again) = o.resync(taken(9, None, None), 100);
        let ops: Vec<_> = again.iter().map(|(_, f)| f.op()).collect();
        assert_eq!(ops, [Some(OperationId(1)), Some(OperationId(2))]);
    }

    #[test]
    fn a_duplicate_request_refusal_is_not_kept_as_the_answer() {
        let mut o = Outbox::default();
        o.request(OperationId(1));
        let n = o.personal(done(1), 100);
        assert!(o.acknowledge(taken(n, None, None)));
        assert_eq!(o.request(OperationId(1)), Repeat::Acknowledged);
        o.personal(
            Arc::new(
                crate::protocol::Refusal::new(ErrorCode::DuplicateRequest, "again")
                    .into_frame(Some(OperationId(1))),
            ),
            100,
        );
        let (_, again) = o.resync(taken(n, None, None), 100);
        assert!(again.is_empty(), "{again:?}");
    }
}
