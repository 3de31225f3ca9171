//! The driver: each [`Action`] of the property test or the fuzzer, carried out as a device's
//! requests (through its client session), the backend's, the clock's, or the network's.

use super::super::sim_actions::ROOMS;
use super::super::sim_media::answer_to;
use super::{Action, World, uid};
use crate::event::OperationKind;
use crate::model::{
    InvitationId, OperationId, ParticipantUpdate, PropertyUpdate, Publication, Rejection, Role,
    RoomId, ScreenShare,
};
use crate::protocol::ClientFrame;
use crate::server::hub::sdp::Description;
use crate::server::hub::{Input, testing};

impl World {
    /// A request of device `dev`'s application, through its client core (which sends it now,
    /// or holds it while the connection is down).
    fn request(
        &mut self,
        dev: usize,
        kind: OperationKind,
        invitation: Option<InvitationId>,
        frame: impl FnOnce(OperationId) -> ClientFrame,
    ) {
        let Some(device) = self.devices[dev].as_mut() else {
            return;
        };
        let mut reason = None;
        let Ok(op) = device.core.request(kind, invitation, |op| {
            let frame = frame(op);
            if let ClientFrame::RejectInvite { reason: r, .. } = &frame {
                reason = Some(r.reason());
            }
            frame
        }) else {
            // Refused at once (too many waiting offline): no frame, no outcome.
            return;
        };
        if let Some(id) = invitation {
            device.answering.insert(op, id);
        }
        if let Some(reason) = reason {
            device.rejecting.insert(op, reason);
        }
        self.sent.push((device.life, op.0));
        self.react_and_flow(dev);
    }

    /// Carries out what the core said after a request, and delivers what follows.
    fn react_and_flow(&mut self, dev: usize) {
        self.react(dev);
        self.flow();
    }

    /// The `pick`-th open invitation the device knows of: received ones, or sent ones.
    fn pick(&self, dev: usize, pick: usize, sent: bool) -> Option<InvitationId> {
        let session = self.devices[dev].as_ref()?.core.session();
        let list: Vec<_> = if sent {
            session.sent_invitations().map(|i| i.id).collect()
        } else {
            session.received_invitations().map(|i| i.id).collect()
        };
        list.get(pick % list.len().max(1)).copied()
    }

    pub(crate) fn apply(&mut self, action: Action) {
        match action {
            Action::Backend { room, kind, user } => {
                let request = super::super::sim_backend::request(ROOMS[room], kind, uid(user));
                let token = testing::token("backend", crate::auth::Grants::none().admin(true));
                let (_, out) = self.hub.admin(self.now, &token, request);
                self.deliver(out);
            }
            Action::Join { dev, room } => {
                self.request(dev, OperationKind::Join, None, |op| ClientFrame::Join {
                    op,
                    room: Some(RoomId::from(ROOMS[room])),
                    display_name: None,
                    audio: false,
                    video: false,
                    state: String::new(),
                    auto_subscribe: true,
                })
            }
            Action::Leave { dev } => self.request(dev, OperationKind::Leave, None, |op| {
                ClientFrame::Leave { op }
            }),
            Action::End { dev } => {
                self.request(dev, OperationKind::End, None, |op| ClientFrame::End { op })
            }
            Action::Kick { dev, target, ban } => {
                let (kind, ban) = match ban {
                    0 => (OperationKind::Kick, None),
                    1 => (OperationKind::Ban, Some(crate::model::BanTerm::room())),
                    _ => (
                        OperationKind::Ban,
                        Some(crate::model::BanTerm::lasting(
                            std::time::Duration::from_secs(10),
                        )),
                    ),
                };
                self.request(dev, kind, None, |op| ClientFrame::Kick {
                    op,
                    user_id: uid(target),
                    ban,
                })
            }
            Action::SetRole { dev, target, host } => {
                self.request(dev, OperationKind::SetRole, None, |op| {
                    ClientFrame::SetRole {
                        op,
                        user_id: uid(target),
                        role: if host { Role::Host } else { Role::Guest },
                    }
                })
            }
            Action::Update { dev, audio, state } => {
                self.request(dev, OperationKind::Update, None, |op| ClientFrame::Update {
                    op,
                    update: ParticipantUpdate {
                        audio: Some(audio),
                        state: Some(format!("s{state}")),
                        ..Default::default()
                    },
                })
            }
            Action::SetCustom { dev, key, value } => {
                self.request(dev, OperationKind::SetProperties, None, |op| {
                    let mut update = PropertyUpdate::default();
                    update
                        .custom
                        .insert(format!("k{key}"), value.map(|v| format!("v{v}")));
                    ClientFrame::SetProperties { op, update }
                })
            }
            Action::Share { dev, target, start } => {
                self.request(dev, OperationKind::SetProperties, None, |op| {
                    ClientFrame::SetProperties {
                        op,
                        update: PropertyUpdate {
                            screen_share: Some(start.then(|| ScreenShare {
                                user_id: uid(target),
                                stream_id: "s".into(),
                            })),
                            ..Default::default()
                        },
                    }
                })
            }
            Action::Record { dev, on } => {
                self.request(dev, OperationKind::SetProperties, None, |op| {
                    ClientFrame::SetProperties {
                        op,
                        update: PropertyUpdate {
                            recording: Some(on),
                            ..Default::default()
                        },
                    }
                })
            }
            Action::Message { dev, to } => {
                self.request(dev, OperationKind::SendMessage, None, |op| {
                    ClientFrame::SendMessage {
                        op,
                        to: to.map(uid),
                        content_type: "text/plain".into(),
                        content: "hi".into(),
                    }
                })
            }
            Action::Invite {
                dev,
                callees,
                timeout_s,
            } => self.request(dev, OperationKind::Invite, None, |op| ClientFrame::Invite {
                op,
                callees: callees.into_iter().map(uid).collect(),
                video: false,
                extra: String::new(),
                timeout_ms: timeout_s.map(|s| u64::from(s) * 1000),
            }),
            Action::Accept { dev, pick } => {
                if let Some(id) = self.pick(dev, pick, false) {
                    self.request(dev, OperationKind::AcceptInvite, Some(id), |op| {
                        ClientFrame::AcceptInvite {
                            op,
                            invitation: id,
                            video: false,
                        }
                    });
                }
            }
            Action::Reject { dev, pick, busy } => {
                if let Some(id) = self.pick(dev, pick, false) {
                    let reason = if busy {
                        Rejection::Busy
                    } else {
                        Rejection::Declined
                    };
                    self.request(dev, OperationKind::RejectInvite, Some(id), |op| {
                        ClientFrame::RejectInvite {
                            op,
                            invitation: id,
                            reason,
                        }
                    });
                }
            }
            Action::Cancel { dev, pick } => {
                if let Some(id) = self.pick(dev, pick, true) {
                    self.request(dev, OperationKind::CancelInvite, Some(id), |op| {
                        ClientFrame::CancelInvite { op, invitation: id }
                    });
                }
            }
            Action::AcceptAny { dev, id } => {
                let id = InvitationId(id);
                self.request(dev, OperationKind::AcceptInvite, Some(id), |op| {
                    ClientFrame::AcceptInvite {
                        op,
                        invitation: id,
                        video: true,
                    }
                });
            }
            Action::Wait { seconds } => {
                let from = self.now;
                self.now += u64::from(seconds) * 1000;
                let out = self.hub.handle(self.now, Input::Tick);
                self.deliver(out);
                self.follow_links(from);
            }
            // Gone for good: its unanswered requests are moot.
            Action::Disconnect { dev } => self.drop_device(dev),
            Action::Connect { dev } => self.connect(dev),
            Action::Cut { dev } => self.cut(dev),
            Action::Notice { dev } => self.notice(dev),
            Action::Resume { dev } => self.resume(dev),
            Action::Publish { dev, source } => {
                let now = self.client_now();
                let Some(device) = self.devices[dev].as_mut() else {
                    return;
                };
                // Refused at once when it is published already.
                if let Ok(op) = device.core.publish(now, source) {
                    self.sent.push((device.life, op.0));
                }
                self.react_and_flow(dev);
            }
            Action::Answer { dev, pick, lose } => {
                let Some(device) = self.devices[dev].as_mut() else {
                    return;
                };
                if device.offers.is_empty() {
                    return;
                }
                let (negotiation, offer, generation) =
                    device.offers.remove(pick % device.offers.len());
                if lose {
                    return;
                }
                let sdp = answer_to(&Description::parse(&offer));
                self.feed_client(
                    dev,
                    crate::call::core::Input::Peer(crate::call::core::PeerInput::Answered {
                        negotiation,
                        generation,
                        sdp,
                    }),
                );
                self.flow();
            }
            Action::Stall { on } => {
                self.stall = on;
                if !on {
                    let queued = std::mem::take(&mut self.queued);
                    self.run_commands(queued);
                    self.flow();
                }
            }
            Action::Release { pick } => self.release(pick),
            Action::Restart => self.restart(),
            Action::PeerFail {
                dev,
                publishing,
                back,
            } => {
                let Some(device) = &self.devices[dev] else {
                    return;
                };
                let Some(key) = self
                    .hub
                    .media_of(device.conn)
                    .and_then(|m| self.sfu.key_of(m))
                else {
                    return;
                };
                let connection = if publishing {
                    crate::model::MediaConnection::Publish
                } else {
                    crate::model::MediaConnection::Subscribe
                };
                let report = crate::server::hub::io::MediaReport {
                    from: key.clone(),
                    fact: crate::server::hub::io::MediaFact::PeerFailed { connection },
                };
                let out = self.hub.handle(self.now, Input::Media(report));
                self.deliver(out);
                // The client's side of that connection fails too, and comes back with it.
                let generation = self.devices[dev]
                    .as_ref()
                    .and_then(|d| d.core.generation(connection))
                    .unwrap_or(0);
                let state = |connected| {
                    crate::call::core::Input::Peer(crate::call::core::PeerInput::State {
                        connection,
                        generation,
                        connected,
                    })
                };
                self.feed_client(dev, state(false));
                self.flow();
                if back {
                    self.feed_client(dev, state(true));
                    let report = crate::server::hub::io::MediaReport {
                        from: key,
                        fact: crate::server::hub::io::MediaFact::PeerConnected { connection },
                    };
                    let out = self.hub.handle(self.now, Input::Media(report));
                    self.deliver(out);
                }
            }
            Action::Unpublish { dev, source } => {
                let Some(device) = self.devices[dev].as_mut() else {
                    return;
                };
                device.published.remove(&source);
                if let Ok(op) = device.core.unpublish(source) {
                    self.sent.push((device.life, op.0));
                }
                self.react_and_flow(dev);
            }
            Action::Mute {
                dev,
                source,
                muted,
                user,
            } => {
                let user_id = user.map(uid);
                self.request(dev, OperationKind::Mute, None, |op| ClientFrame::Mute {
                    op,
                    source,
                    muted,
                    user_id,
                })
            }
            Action::Receive {
                dev,
                user,
                source,
                on,
            } => {
                let publication = Publication::new(uid(user), source).id;
                if on {
                    self.request(dev, OperationKind::SubscribeTrack, None, |op| {
                        ClientFrame::Subscribe { op, publication }
                    })
                } else {
                    self.request(dev, OperationKind::UnsubscribeTrack, None, |op| {
                        ClientFrame::Unsubscribe { op, publication }
                    })
                }
            }
        }
    }
}
