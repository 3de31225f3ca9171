//! A simulated world for testing the sans-IO core: devices with a client [`Session`] each,
//! sending requests to a [`Hub`] and fed its output, with no sockets and a hand-moved clock.
//! Sequences of actions come from the property test (`proptests.rs`) or from fuzzer bytes
//! ([`Action::decode`]). After every step, [`World::check`] asserts:
//! - every member's view equals the server's room; sequence numbers are gap-free;
//! - every request got exactly one outcome;
//! - every device's open invitations are exactly the server's;
//! - every invitation ends at most once per device, and all sides agree on how it ended.

use std::collections::{BTreeSet, HashMap};

use super::sim_media::{FakeSfu, answer_to, publish_offer};
use crate::call::session::Session;
use crate::event::{CallEvent, InviteEvent, OperationKind};
use crate::model::{
    InvitationId, OperationId, ParticipantUpdate, PropertyUpdate, Publication, Reason, Rejection,
    Role, RoomId, ScreenShare, TrackSource, UserId,
};
use crate::protocol::{ClientFrame, ServerFrame};
use crate::server::hub::io::MediaCommand;
use crate::server::hub::sdp::Description;
use crate::server::hub::{ConnId, Hub, HubConfig, Input, Millis, Output, testing};

pub(crate) use super::sim_actions::Action;
use super::sim_actions::{DEVICES, ROOMS};

fn uid(i: usize) -> UserId {
    UserId::from(format!("u{i}"))
}

/// How an invitation ended, as one side saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Accepted,
    /// Declined or busy (`None`: another device of the callee declined; which way is not said).
    Declined(Option<Reason>),
    Expired,
    /// Ended from the caller's side: canceled, or the caller left the call.
    Withdrawn(Reason),
}

impl End {
    fn agrees(self, other: End) -> bool {
        match (self, other) {
            (End::Declined(a), End::Declined(b)) => a.is_none() || b.is_none() || a == b,
            (a, b) => a == b,
        }
    }
}

/// One logged-in device: its session (on the server: `conn`) and its connection now
/// (`transport`), its client session, and what it saw of invitations.
struct Device {
    conn: ConnId,
    transport: ConnId,
    /// Whether its connection carries frames; a cut one (`up: false`) loses every frame sent
    /// either way, and the server may not have noticed yet.
    up: bool,
    resume_key: String,
    /// Numbers this client session (ops count from 1 in each).
    life: u64,
    session: Session,
    /// The sources its publishing connection sends, and the room they were offered in.
    sending: BTreeSet<TrackSource>,
    sending_room: Option<crate::model::RoomId>,
    /// The server's offers it has not answered yet (`Answer` takes one, in any order).
    offers: Vec<(u64, String)>,
    received: HashMap<InvitationId, usize>,
    ends: HashMap<InvitationId, Vec<End>>,
    /// The invitation each of its cancel / accept / reject requests was about.
    answering: HashMap<OperationId, InvitationId>,
    /// The reason each of its reject requests gave.
    rejecting: HashMap<OperationId, Reason>,
}

/// The hub, the devices and what they saw.
pub(crate) struct World {
    hub: Hub,
    sfu: FakeSfu,
    /// The media shell is slow: commands wait in `queued` until released.
    stall: bool,
    queued: Vec<MediaCommand>,
    now: Millis,
    devices: Vec<Option<Device>>,
    next_conn: ConnId,
    /// Outcomes seen per (client session, op), and every request made.
    outcomes: HashMap<(u64, u64), usize>,
    sent: Vec<(u64, u64)>,
    next_life: u64,
    /// Every invitation made: its caller's connection.
    made: HashMap<InvitationId, ConnId>,
    /// How each ended invitation ended, as first seen.
    ended: HashMap<InvitationId, End>,
    /// The application's backend: what the webhooks told it.
    backend: super::sim_backend::Backend,
}

impl World {
    pub(crate) fn new(auto_reject_busy: bool, hold_offline_invitations: bool) -> Self {
        let config = HubConfig {
            auto_reject_busy,
            hold_offline_invitations,
            ..testing::config()
        };
        let mut w = World {
            hub: Hub::new(config),
            sfu: FakeSfu::default(),
            stall: false,
            queued: Vec::new(),
            now: 0,
            devices: (0..DEVICES.len()).map(|_| None).collect(),
            next_conn: 0,
            outcomes: HashMap::new(),
            sent: Vec::new(),
            next_life: 0,
            made: HashMap::new(),
            ended: HashMap::new(),
            backend: Default::default(),
        };
        for dev in 0..DEVICES.len() {
            w.connect(dev);
        }
        w
    }

    fn connect(&mut self, dev: usize) {
        if self.devices[dev].is_some() {
            return;
        }
        self.next_conn += 1;
        let conn = self.next_conn;
        self.next_life += 1;
        self.devices[dev] = Some(Device {
            conn,
            transport: conn,
            up: true,
            resume_key: String::new(),
            life: self.next_life,
            session: Session::new(uid(DEVICES[dev])),
            sending: BTreeSet::new(),
            sending_room: None,
            offers: Vec::new(),
            received: HashMap::new(),
            ends: HashMap::new(),
            answering: HashMap::new(),
            rejecting: HashMap::new(),
        });
        let out = self.hub.handle(
            self.now,
            Input::Frame {
                conn,
                frame: testing::hello(uid(DEVICES[dev]).as_str()),
            },
        );
        let Output::Send {
            frame: ServerFrame::Welcome { resume_key, .. },
            ..
        } = &out[0]
        else {
            panic!("a hello is welcomed: {out:?}");
        };
        if let Some(d) = self.devices[dev].as_mut() {
            d.resume_key = resume_key.clone();
        }
        self.deliver(out);
    }

    /// The device's connection is cut: nothing gets through either way from now on, and the
    /// server does not know yet.
    fn cut(&mut self, dev: usize) {
        if let Some(d) = self.devices[dev].as_mut() {
            d.up = false;
        }
    }

    /// The server notices a cut connection.
    fn notice(&mut self, dev: usize) {
        let Some(d) = self.devices[dev].as_ref().filter(|d| !d.up) else {
            return;
        };
        let conn = d.transport;
        let out = self.hub.handle(
            self.now,
            Input::Disconnected {
                conn,
                reason: Reason::Network,
            },
        );
        self.deliver(out);
    }

    /// A cut device connects again and resumes its session, as `Call` does: `resume`, and, if
    /// the server no longer knows the session, `hello` and a join again; then every unanswered
    /// request is sent again.
    fn resume(&mut self, dev: usize) {
        let Some(d) = self.devices[dev].as_mut().filter(|d| !d.up) else {
            return;
        };
        self.next_conn += 1;
        d.transport = self.next_conn;
        d.up = true;
        let transport = d.transport;
        let taken = d.session.taken();
        let frame = ClientFrame::Resume {
            version: crate::protocol::PROTOCOL_VERSION,
            token: match testing::hello(uid(DEVICES[dev]).as_str()) {
                ClientFrame::Hello { token, .. } => token,
                _ => unreachable!("hello() makes a hello"),
            },
            resume_key: d.resume_key.clone(),
            received: taken.received,
            room: taken.room,
            seq: taken.seq,
        };
        let out = self.hub.handle(
            self.now,
            Input::Frame {
                conn: transport,
                frame,
            },
        );
        let unknown = matches!(
            out.first(),
            Some(Output::Deliver { frame, .. }) if matches!(
                **frame,
                ServerFrame::Error {
                    code: crate::protocol::ErrorCode::UnknownSession,
                    ..
                }
            )
        );
        if !unknown {
            self.deliver(out);
        } else {
            let out = self.hub.handle(
                self.now,
                Input::Frame {
                    conn: transport,
                    frame: testing::hello(uid(DEVICES[dev]).as_str()),
                },
            );
            let d = self.devices[dev].as_mut().expect("checked above");
            let Some(Output::Send {
                frame: ServerFrame::Welcome { resume_key, .. },
                ..
            }) = out.first()
            else {
                panic!("a hello is welcomed: {out:?}");
            };
            d.conn = transport;
            d.resume_key = resume_key.clone();
            // A new session: what the device knew of invitations starts over.
            d.received.clear();
            d.ends.clear();
            d.sending.clear();
            d.offers.clear();
            let (handled, rejoin) = d.session.lost();
            for (op, _) in &handled.outcomes {
                *self.outcomes.entry((d.life, op.0)).or_default() += 1;
            }
            if let Some(rejoin) = rejoin {
                d.session
                    .request(OperationKind::Rejoin, None, |op| rejoin.frame(op));
            }
            self.deliver(out);
        }
        let Some(d) = self.devices[dev].as_mut() else {
            return;
        };
        for (_, text) in d.session.unanswered() {
            let frame = crate::protocol::decode_client(&text).expect("our own frames decode");
            let out = self.hub.handle(
                self.now,
                Input::Frame {
                    conn: transport,
                    frame,
                },
            );
            self.deliver(out);
        }
    }

    /// Delivers frames to the devices, then hands media commands to the media model, whose
    /// reports go back to the core (as the shells do: frames are queued as they are made, the
    /// SFU's reports come later).
    fn deliver(&mut self, outputs: Vec<Output>) {
        let mut commands = Vec::new();
        self.deliver_frames(outputs, &mut commands);
        self.run_commands(commands);
    }

    /// Carries out media commands (or queues them while the shell is stalled); their reports go
    /// back to the core, whose new commands are carried out in turn.
    fn run_commands(&mut self, mut commands: Vec<MediaCommand>) {
        while !commands.is_empty() {
            if self.stall {
                self.queued.append(&mut commands);
                return;
            }
            for command in std::mem::take(&mut commands) {
                for report in self.sfu.command(command) {
                    let out = self.hub.handle(self.now, Input::Media(report));
                    self.deliver_frames(out, &mut commands);
                }
            }
        }
    }

    /// Carries out the oldest queued command of the membership the `pick`-th queued command is
    /// for (a membership's commands keep their order, as one actor takes them).
    fn release(&mut self, pick: usize) {
        if self.queued.is_empty() {
            return;
        }
        let media = self.queued[pick % self.queued.len()].to.media;
        let at = self
            .queued
            .iter()
            .position(|c| c.to.media == media)
            .expect("found above");
        let command = self.queued.remove(at);
        let mut commands = Vec::new();
        for report in self.sfu.command(command) {
            let out = self.hub.handle(self.now, Input::Media(report));
            self.deliver_frames(out, &mut commands);
        }
        self.queued.append(&mut commands);
    }

    fn deliver_frames(&mut self, outputs: Vec<Output>, commands: &mut Vec<MediaCommand>) {
        for output in outputs {
            let (targets, frame, n) = match output {
                Output::Send { to, frame } => (vec![to], frame, None),
                Output::Broadcast { to, frame } => (to, (*frame).clone(), None),
                Output::Deliver { to, n, frame } => (vec![to], (*frame).clone(), n),
                Output::Media(command) => {
                    commands.push(command);
                    continue;
                }
                Output::Notice(event) => {
                    self.backend.notice(&event);
                    continue;
                }
                Output::Close { .. } | Output::StartRecorder => continue,
            };
            for to in targets {
                let Some(dev) = self
                    .devices
                    .iter_mut()
                    .flatten()
                    .find(|d| d.transport == to && d.up)
                else {
                    continue;
                };
                if let ServerFrame::PublishAnswer { op, .. } = &frame {
                    // The client finishes a publish itself once it applied the answer.
                    dev.session.forget(*op);
                }
                if let ServerFrame::Joined { .. } = &frame {
                    // A new membership: its offers count from 1 again.
                    dev.offers.clear();
                }
                if let ServerFrame::SubscribeOffer { negotiation, sdp } = &frame {
                    if let Some((last, _)) = dev.offers.last() {
                        assert!(negotiation > last, "offers are numbered in order");
                    }
                    dev.offers.push((*negotiation, sdp.clone()));
                }
                let handled = dev.session.handle(frame.clone(), n);
                for (op, _) in &handled.outcomes {
                    *self.outcomes.entry((dev.life, op.0)).or_default() += 1;
                }
                for event in handled.events {
                    let CallEvent::Invite(event) = event else {
                        continue;
                    };
                    let end = match event {
                        InviteEvent::Sent {
                            result: Ok(report), ..
                        } => {
                            for inv in report.invitations {
                                assert!(
                                    self.made.insert(inv.id, dev.conn).is_none(),
                                    "ids are unique"
                                );
                            }
                            continue;
                        }
                        InviteEvent::Received(inv) => {
                            *dev.received.entry(inv.id).or_default() += 1;
                            continue;
                        }
                        InviteEvent::Accepted { invitation } => {
                            Some((invitation.id, End::Accepted))
                        }
                        InviteEvent::Rejected { invitation, reason } => Some((
                            invitation.id,
                            if reason == Reason::NoResponse {
                                End::Expired
                            } else {
                                End::Declined(Some(reason))
                            },
                        )),
                        InviteEvent::Canceled { invitation, reason } => Some((
                            invitation.id,
                            match reason {
                                Reason::AcceptedElsewhere => End::Accepted,
                                Reason::RejectedElsewhere => End::Declined(None),
                                Reason::NoResponse => End::Expired,
                                other => End::Withdrawn(other),
                            },
                        )),
                        InviteEvent::CancelResult { op, result: Ok(()) } => {
                            Some((dev.answering[&op], End::Withdrawn(Reason::Canceled)))
                        }
                        InviteEvent::AcceptResult { op, result: Ok(()) } => {
                            Some((dev.answering[&op], End::Accepted))
                        }
                        InviteEvent::RejectResult { op, result: Ok(()) } => Some((
                            dev.answering[&op],
                            End::Declined(dev.rejecting.get(&op).copied()),
                        )),
                        _ => None,
                    };
                    if let Some((id, end)) = end {
                        dev.ends.entry(id).or_default().push(end);
                        let first = *self.ended.entry(id).or_insert(end);
                        assert!(
                            first.agrees(end),
                            "{id}: one side saw {first:?}, another {end:?}"
                        );
                    }
                }
            }
        }
    }

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
        let conn = device.transport;
        let (op, text) = device.session.request(kind, invitation, frame);
        let frame = crate::protocol::decode_client(&text).expect("our own frames decode");
        if let Some(id) = invitation {
            device.answering.insert(op, id);
        }
        if let ClientFrame::RejectInvite { reason, .. } = &frame {
            device.rejecting.insert(op, reason.reason());
        }
        self.sent.push((device.life, op.0));
        if !device.up {
            // Held by the session; sent again on resume.
            return;
        }
        let out = self.hub.handle(self.now, Input::Frame { conn, frame });
        self.deliver(out);
    }

    /// Sends a request whose answer is not an outcome the application awaits.
    fn send_internal(
        &mut self,
        dev: usize,
        kind: OperationKind,
        frame: impl FnOnce(OperationId) -> ClientFrame,
    ) {
        let Some(device) = self.devices[dev].as_mut() else {
            return;
        };
        let conn = device.transport;
        let (_, text) = device.session.request(kind, None, frame);
        if !device.up {
            return;
        }
        let frame = crate::protocol::decode_client(&text).expect("our own frames decode");
        let out = self.hub.handle(self.now, Input::Frame { conn, frame });
        self.deliver(out);
    }

    /// The `pick`-th open invitation the device knows of: received ones, or sent ones.
    fn pick(&self, dev: usize, pick: usize, sent: bool) -> Option<InvitationId> {
        let session = &self.devices[dev].as_ref()?.session;
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
                let request = super::sim_backend::request(ROOMS[room], kind, uid(user));
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
                self.now += u64::from(seconds) * 1000;
                let out = self.hub.handle(self.now, Input::Tick);
                self.deliver(out);
            }
            Action::Disconnect { dev } => {
                if let Some(device) = self.devices[dev].take() {
                    // Gone for good: its unanswered requests are moot.
                    let outcomes = &self.outcomes;
                    self.sent
                        .retain(|key| key.0 != device.life || outcomes.contains_key(key));
                    let out = self.hub.handle(
                        self.now,
                        Input::Disconnected {
                            conn: device.transport,
                            reason: Reason::Network,
                        },
                    );
                    self.deliver(out);
                }
            }
            Action::Connect { dev } => self.connect(dev),
            Action::Cut { dev } => self.cut(dev),
            Action::Notice { dev } => self.notice(dev),
            Action::Resume { dev } => self.resume(dev),
            Action::Publish { dev, source } => {
                let Some(device) = self.devices[dev].as_mut() else {
                    return;
                };
                let room = device.session.room().map(|r| r.room.clone());
                if room != device.sending_room {
                    // A new room, or none: the client's media starts over.
                    device.sending.clear();
                    device.sending_room = room;
                }
                device.sending.insert(source);
                let sdp = publish_offer(&device.sending);
                // Its answer goes to the publishing call (`publish_answer`), not to an outcome.
                self.send_internal(dev, OperationKind::Publish, |op| {
                    ClientFrame::PublishOffer {
                        op,
                        sdp,
                        source: Some(source),
                    }
                });
            }
            Action::Answer { dev, pick, lose } => {
                let Some(device) = self.devices[dev].as_mut() else {
                    return;
                };
                if device.offers.is_empty() {
                    return;
                }
                let (negotiation, offer) = device.offers.remove(pick % device.offers.len());
                if lose {
                    return;
                }
                let sdp = answer_to(&Description::parse(&offer));
                // Negotiation ops are internal: the session keeps no outcome for them.
                self.send_internal(dev, OperationKind::Negotiate, |op| {
                    ClientFrame::SubscribeAnswer {
                        op,
                        negotiation,
                        sdp,
                    }
                });
            }
            Action::Stall { on } => {
                self.stall = on;
                if !on {
                    let queued = std::mem::take(&mut self.queued);
                    self.run_commands(queued);
                }
            }
            Action::Release { pick } => self.release(pick),
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
                if back {
                    let report = crate::server::hub::io::MediaReport {
                        from: key,
                        fact: crate::server::hub::io::MediaFact::PeerConnected { connection },
                    };
                    let out = self.hub.handle(self.now, Input::Media(report));
                    self.deliver(out);
                }
            }
            Action::Unpublish { dev, source } => {
                self.request(dev, OperationKind::Unpublish, None, |op| {
                    ClientFrame::Unpublish { op, source }
                })
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

    pub(crate) fn check(&self) {
        self.sfu.check(!self.stall && self.queued.is_empty());
        self.backend.check(&self.hub);
        assert_eq!(self.hub.banned_members(), 0, "a banned user is in the room");
        let open = self.hub.open_invitations();
        for (dev, device) in self.devices.iter().enumerate() {
            let Some(Device {
                conn,
                session,
                received,
                ends,
                up: true,
                ..
            }) = device
            else {
                // A cut device's view is out of date until it resumes.
                continue;
            };
            assert_eq!(session.seq_faults(), 0, "device {dev} saw a sequence gap");
            assert_eq!(
                session.duplicates(),
                0,
                "device {dev} was sent a frame twice"
            );
            // With media commands waiting in the shell, media requests wait too.
            let settled = !self.stall && self.queued.is_empty();
            assert!(
                !settled || session.pending().count() == 0,
                "device {dev} has a request without an answer"
            );
            match (self.hub.room_of(*conn), session.room()) {
                (None, None) => {}
                (Some(id), Some(view)) => {
                    let room = self.hub.room(&id).expect("a member's room exists");
                    assert_eq!(view.room, id);
                    assert_eq!(view.seq, room.seq(), "device {dev}'s sequence number");
                    assert_eq!(
                        view.participants,
                        room.participants(),
                        "device {dev}'s roster"
                    );
                    assert_eq!(
                        &view.properties,
                        room.properties(),
                        "device {dev}'s properties"
                    );
                    assert_eq!(
                        view.publications,
                        room.publication_list(),
                        "device {dev}'s publications"
                    );
                    room.check_subscriptions();
                    // What the room shows as muted is what the media shell withholds.
                    for (media, publication) in room.publications_by_media() {
                        assert!(
                            !settled
                                || self.sfu.is_muted(media, publication.source)
                                    == publication.muted,
                            "{}: muted {} in the room, but not so in the media shell",
                            publication.id,
                            publication.muted
                        );
                    }
                    let (media, legs) = room.legs_of(*conn);
                    assert!(
                        !settled || self.sfu.legs_of(media) == legs,
                        "device {dev}: the media shell's legs are the core's"
                    );
                    assert!(
                        room.participants().iter().any(|p| p.role == Role::Host),
                        "a room keeps a host"
                    );
                }
                (server, client) => panic!(
                    "device {dev}: server says {server:?}, client says {:?}",
                    client.map(|c| &c.room)
                ),
            }
            // Open invitations: the device's lists are exactly the server's.
            let user = uid(DEVICES[dev]);
            let to_me: BTreeSet<_> = open
                .iter()
                .filter(|(i, _)| i.callee == user)
                .map(|(i, _)| i.id)
                .collect();
            let by_me: BTreeSet<_> = open
                .iter()
                .filter(|(_, c)| c == conn)
                .map(|(i, _)| i.id)
                .collect();
            assert_eq!(
                session
                    .received_invitations()
                    .map(|i| i.id)
                    .collect::<BTreeSet<_>>(),
                to_me,
                "device {dev}: invitations to it"
            );
            assert_eq!(
                session
                    .sent_invitations()
                    .map(|i| i.id)
                    .collect::<BTreeSet<_>>(),
                by_me,
                "device {dev}: invitations by it"
            );
            // Each invitation reaches a device once and ends for it at most once.
            for (id, n) in received {
                assert_eq!(*n, 1, "device {dev} received {id} {n} times");
                let n_ends = ends.get(id).map_or(0, Vec::len);
                if to_me.contains(id) {
                    assert_eq!(n_ends, 0, "device {dev}: {id} is open but ended");
                } else {
                    assert_eq!(n_ends, 1, "device {dev}: {id} ended {n_ends} times");
                }
            }
        }
        // A caller still connected heard exactly once how each of its invitations ended.
        for (id, caller) in &self.made {
            if open.iter().any(|(i, _)| i.id == *id) {
                assert!(
                    !self.ended.contains_key(id),
                    "{id} is open but was seen to end"
                );
                continue;
            }
            if let Some(device) = self
                .devices
                .iter()
                .flatten()
                .find(|d| d.conn == *caller && d.up)
            {
                let n = device.ends.get(id).map_or(0, Vec::len);
                assert_eq!(n, 1, "the caller heard {n} ends of {id}");
            }
        }
        let cut: BTreeSet<u64> = self
            .devices
            .iter()
            .flatten()
            .filter(|d| !d.up)
            .map(|d| d.life)
            .collect();
        for key in &self.sent {
            if cut.contains(&key.0) {
                assert!(self.outcomes.get(key).is_none_or(|n| *n <= 1));
                continue;
            }
            assert_eq!(
                self.outcomes.get(key),
                Some(&1),
                "exactly one outcome for {key:?}"
            );
        }
    }
}
