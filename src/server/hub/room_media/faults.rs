//! A room's peer connections that fail: interrupted (kept for the grace period while ICE is
//! restarted), restored (video starts again from key frames), or expired (what the connection
//! carried ends). The hub keeps the deadlines (`interruptions.rs`); this decides what each
//! means for the room.

use crate::model::{Reason, TrackSource};
use crate::protocol::{ErrorCode, MediaConnection, ServerFrame};

use super::super::io::{Emit, MediaAction, MediaId, Millis, SessionId};
use super::super::negotiation::{command, op_failed};
use super::super::room::Room;
use super::request_keyframe;

impl Room {
    /// One of membership `media`'s peer connections failed (the media shell saw it, or the
    /// member said so): media on it stopped. What it carries is kept until `until`, the end of
    /// the grace period. The member hears it (`media_interrupted`, `grace_ms`) and restarts ICE
    /// on its publishing connection with a new offer; the server offers the receiving one again
    /// with an ICE restart (again after every failure). Returns whether the connection was not
    /// interrupted already, i.e. whether `until` is a new deadline to keep.
    pub(crate) fn media_interrupted(
        &mut self,
        media: MediaId,
        connection: MediaConnection,
        until: Millis,
        grace_ms: Millis,
        out: &mut Vec<Emit>,
    ) -> bool {
        let Some(i) = self.members.iter().position(|m| m.key.media == media) else {
            return false;
        };
        let member = &mut self.members[i];
        let fresh = match connection {
            MediaConnection::Publish => {
                member.publishing.negotiated() && member.publishing.interrupted.start(until)
            }
            MediaConnection::Subscribe => {
                if !member.receiving.negotiated() {
                    return false;
                }
                self.offers_due = true;
                member.receiving.interrupt(until)
            }
        };
        if fresh {
            out.push(Emit::Send {
                to: member.conn,
                frame: ServerFrame::MediaInterrupted {
                    connection,
                    grace_ms,
                },
            });
        }
        fresh
    }

    /// One of a member's connections is up (again): its video starts from a key frame. A
    /// publishing connection that had been interrupted: its tracks, for everyone receiving
    /// them; a receiving connection (first connected, or restored): every publisher whose track
    /// it carries.
    pub(super) fn media_restored(
        &mut self,
        i: usize,
        connection: MediaConnection,
        out: &mut Vec<Emit>,
    ) {
        let conn = self.members[i].conn;
        match connection {
            MediaConnection::Publish => {
                if !self.members[i].publishing.interrupted.end() {
                    return;
                }
                let key = self.members[i].key.clone();
                for (_, publication) in self.publications.iter().filter(|(c, _)| *c == conn) {
                    request_keyframe(&key, publication, out);
                }
            }
            MediaConnection::Subscribe => {
                // Connected for the first time, or again: either way the legs' key frames
                // asked for when their answer was applied may have been sent before the
                // connection could carry them, so the receiver could decode nothing until
                // its own loss report reached the publisher (~300 ms with a browser).
                self.members[i].receiving.interrupted.end();
                let ids: Vec<String> = self.members[i]
                    .receiving
                    .started_legs()
                    .map(str::to_owned)
                    .collect();
                for id in ids {
                    if let (Some(publisher), Some((_, publication))) =
                        (self.publisher_key(&id), self.publication_by_id(&id))
                    {
                        request_keyframe(&publisher, &publication, out);
                    }
                }
            }
        }
    }

    /// The grace period of an interruption that began with deadline `until` is over. If the
    /// connection is still down, what it carried ends: the member's publications end with
    /// reason `network` (publishing), or its legs are dropped and offered again on a new
    /// connection (receiving); the shell closes its side and the member hears `media_lost`.
    pub(crate) fn media_expired(
        &mut self,
        media: MediaId,
        connection: MediaConnection,
        until: Millis,
        out: &mut Vec<Emit>,
    ) {
        let Some(i) = self.members.iter().position(|m| m.key.media == media) else {
            return;
        };
        let conn = self.members[i].conn;
        let key = self.members[i].key.clone();
        match connection {
            MediaConnection::Publish => {
                if self.members[i].publishing.interrupted.until() != Some(until) {
                    return;
                }
                let sources: Vec<TrackSource> = self
                    .publications
                    .iter()
                    .filter(|(c, _)| *c == conn)
                    .map(|(_, p)| p.source)
                    .collect();
                for source in sources {
                    let _ = self.end_publication(conn, source, Reason::Network, out);
                }
                if let Some(op) = self.members[i].publishing.failed() {
                    out.push(op_failed(
                        conn,
                        op,
                        ErrorCode::MediaFailed,
                        "the publishing connection failed",
                    ));
                }
                out.push(command(&key, MediaAction::ClosePublishing));
            }
            MediaConnection::Subscribe => {
                if self.members[i].receiving.interrupted.until() != Some(until) {
                    return;
                }
                if let Some(op) = self.members[i].receiving.failed() {
                    out.push(op_failed(
                        conn,
                        op,
                        ErrorCode::MediaFailed,
                        "the receiving connection failed",
                    ));
                }
                let take = |set: &mut std::collections::BTreeSet<(SessionId, String)>| {
                    let (mine, others) = std::mem::take(set)
                        .into_iter()
                        .partition::<std::collections::BTreeSet<_>, _>(|(c, _)| *c == conn);
                    *set = others;
                    mine.into_iter().map(|(_, id)| id).collect::<Vec<String>>()
                };
                let running = take(&mut self.subscriptions);
                let paused = take(&mut self.paused);
                out.push(command(&key, MediaAction::CloseReceiving));
                // What it received is offered again, on a new connection.
                for id in running.iter().chain(&paused) {
                    if let Some((_, publication)) = self.publication_by_id(id) {
                        self.start_subscription(conn, publication, out);
                    }
                }
                for id in &paused {
                    if let Some((_, publication)) = self.publication_by_id(id) {
                        self.end_subscription(conn, &publication, true, out);
                    }
                }
            }
        }
        out.push(Emit::Send {
            to: conn,
            frame: ServerFrame::MediaLost {
                connection,
                message: format!(
                    "the {} connection failed and was not restored in time",
                    connection.as_str()
                ),
            },
        });
    }
}
