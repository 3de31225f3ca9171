//! Invitation frames: the report of an invite, and invitations to and from this call.

use crate::event::{CallEvent, InviteEvent, InviteReport, Outcome};
use crate::protocol::ServerFrame;

use super::{Handled, Session};

impl Session {
    /// Takes `frame` if it is one of this area's: `None` then, else the frame back.
    pub(super) fn invite_frame(
        &mut self,
        frame: ServerFrame,
        out: &mut Handled,
    ) -> Option<ServerFrame> {
        match frame {
            ServerFrame::Invited {
                op,
                room,
                invitations,
                failed,
            } => {
                if self.pending.remove(&op).is_none() {
                    // An answer to no request changes nothing (transcript 08).
                    tracing::warn!(%op, "an invited for an operation this call did not send");
                    return None;
                }
                for invitation in &invitations {
                    self.sent.insert(invitation.id, invitation.clone());
                }
                let report = InviteReport {
                    room,
                    invitations,
                    failed,
                };
                out.events.push(CallEvent::Invite(InviteEvent::Sent {
                    op,
                    result: Ok(report.clone()),
                }));
                out.outcomes.push((op, Ok(Outcome::Invited(report))));
            }
            ServerFrame::InviteReceived { invitation } => {
                self.received.insert(invitation.id, invitation.clone());
                out.events
                    .push(CallEvent::Invite(InviteEvent::Received(invitation)));
            }
            ServerFrame::InviteCanceled { invitation, reason } => {
                self.received.remove(&invitation.id);
                self.sent.remove(&invitation.id);
                out.events.push(CallEvent::Invite(InviteEvent::Canceled {
                    invitation,
                    reason,
                }));
            }
            ServerFrame::InviteAccepted { invitation } => {
                self.sent.remove(&invitation.id);
                out.events
                    .push(CallEvent::Invite(InviteEvent::Accepted { invitation }));
            }
            ServerFrame::InviteRejected { invitation, reason } => {
                self.sent.remove(&invitation.id);
                out.events.push(CallEvent::Invite(InviteEvent::Rejected {
                    invitation,
                    reason,
                }));
            }
            other => return Some(other),
        }
        None
    }
}
