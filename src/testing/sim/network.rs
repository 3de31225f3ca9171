//! The simulated network: devices connecting, cut connections the server may or may not notice,
//! frames both ways in the order they were sent, each device's client core fed what reaches it
//! and its outputs carried out (frames to the server, new connections, its peer connections'
//! model), and the hub's media commands to the SFU model (held while it is stalled).

use std::collections::{BTreeSet, HashMap};

use super::super::sim_actions::DEVICES;
use super::super::sim_media::publish_offer;
use super::{Device, End, World, client_core, uid};
use crate::call::core::{
    Input as ClientInput, OfferJob, Output as ClientOutput, PeerAction, PeerInput,
};
use crate::event::{CallEvent, InviteEvent};
use crate::model::Reason;
use crate::protocol::ServerFrame;
use crate::server::hub::io::MediaCommand;
use crate::server::hub::{Input, Output, testing};

impl World {
    /// Device `dev` logs in (as `Call::connect` does, before its core runs).
    pub(super) fn connect(&mut self, dev: usize) {
        if self.devices[dev].is_some() {
            return;
        }
        self.next_conn += 1;
        let conn = self.next_conn;
        self.next_life += 1;
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
        let core = client_core(
            uid(DEVICES[dev]),
            resume_key.clone(),
            dev as u64 + 1,
            self.client_now(),
        );
        self.devices[dev] = Some(Device {
            conn,
            transport: conn,
            up: true,
            life: self.next_life,
            core,
            sending: BTreeSet::new(),
            offering: HashMap::new(),
            published: BTreeSet::new(),
            republish: None,
            offers: Vec::new(),
            received: HashMap::new(),
            ends: HashMap::new(),
            answering: HashMap::new(),
            rejecting: HashMap::new(),
            closed: false,
            relogging: false,
        });
        self.deliver(out[1..].to_vec());
    }

    /// The device's connection is cut: nothing gets through either way from now on, and
    /// neither side knows yet.
    pub(super) fn cut(&mut self, dev: usize) {
        if let Some(d) = self.devices[dev].as_mut() {
            d.up = false;
        }
    }

    /// The server notices a cut connection.
    pub(super) fn notice(&mut self, dev: usize) {
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

    /// The server restarts: a new hub with the same configuration, nothing of the old one's
    /// state (the media shell's included), and every connection closed, which each device
    /// hears at once; each core then connects again and finds its session unknown. The
    /// backend's view and what was known of invitations start over with the new server.
    pub(super) fn restart(&mut self) {
        self.hub = crate::server::hub::Hub::new(self.config.clone());
        self.sfu = Default::default();
        self.queued.clear();
        self.stall = false;
        self.backend = Default::default();
        self.made.clear();
        self.ended.clear();
        self.to_clients.clear();
        self.to_server.clear();
        for dev in 0..self.devices.len() {
            let Some(d) = self.devices[dev].as_mut() else {
                continue;
            };
            d.up = false;
            self.resume(dev);
        }
    }

    /// The device hears that its cut connection is gone (the system reports the socket
    /// reset): its core connects again at once and resumes (or logs in again and rejoins).
    pub(super) fn resume(&mut self, dev: usize) {
        if self.devices[dev].as_ref().is_none_or(|d| d.up) {
            return;
        }
        self.feed_client(dev, ClientInput::SocketLost);
        self.feed_client(dev, ClientInput::Tick);
        self.flow();
    }

    /// Time passed from `from` (world milliseconds): each device's core is woken at each of
    /// its deadlines up to now, in order, as a `Call`'s driver wakes it. A ping on a working
    /// connection is answered; on a cut one nothing comes back, so after the idle timeout the
    /// core counts the connection as lost and connects again (a cut is of the old path: a new
    /// connection gets through). A core that gives up ends the device's call.
    pub(super) fn follow_links(&mut self, from: u64) {
        let to = self.client_now();
        for dev in 0..self.devices.len() {
            let mut at = self.epoch + std::time::Duration::from_millis(from);
            while let Some(d) = self.devices[dev].as_mut() {
                let Some(due) = d.core.next_deadline().filter(|due| *due <= to.at) else {
                    break;
                };
                at = at.max(due);
                let now = crate::call::core::Now { at, unix: to.unix };
                d.core.handle(now, ClientInput::Tick);
                self.react(dev);
                self.flow();
            }
        }
    }

    /// The device's call is over (its application closed it, or its core gave up): its
    /// unanswered requests are moot, and the server hears the connection go.
    pub(super) fn drop_device(&mut self, dev: usize) {
        if let Some(device) = self.devices[dev].take() {
            let outcomes = &self.outcomes;
            self.sent
                .retain(|key| key.0 != device.life || outcomes.contains_key(key));
            if device.up {
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
    }

    /// Feeds device `dev`'s core one input and carries out what it says.
    pub(super) fn feed_client(&mut self, dev: usize, input: ClientInput<'_>) {
        let now = self.client_now();
        if let Some(d) = self.devices[dev].as_mut() {
            d.core.handle(now, input);
            self.react(dev);
        }
    }

    /// Carries out what device `dev`'s core said: frames onto the network, a new connection,
    /// its peer connections' work (whose reports go back at once), and what it tells the
    /// application (counted and checked).
    pub(super) fn react(&mut self, dev: usize) {
        let now = self.client_now();
        let me = uid(DEVICES[dev]);
        let mut finished = false;
        loop {
            let Some(d) = self.devices[dev].as_mut() else {
                return;
            };
            let outputs: Vec<ClientOutput> = d.core.drain().collect();
            if outputs.is_empty() {
                break;
            }
            let mut inputs = Vec::new();
            let mut dropped = None;
            for output in outputs {
                let Some(d) = self.devices[dev].as_mut() else {
                    return;
                };
                assert!(
                    !d.closed || matches!(output, ClientOutput::Finished(_)),
                    "device {dev}: {output:?} after Closed"
                );
                match output {
                    ClientOutput::Send(text) => {
                        if d.up {
                            let frame = crate::protocol::decode_client(&text)
                                .expect("a client's frames decode");
                            self.to_server.push_back((d.transport, frame));
                        }
                    }
                    ClientOutput::Connect => {
                        // A new path: it gets through whatever cut the old one.
                        self.next_conn += 1;
                        d.transport = self.next_conn;
                        d.up = true;
                        inputs.push(ClientInput::Opened);
                    }
                    ClientOutput::Disconnect => {
                        if std::mem::replace(&mut d.up, false) {
                            dropped = Some(d.transport);
                        }
                    }
                    ClientOutput::Peer(action) => {
                        if let Some(input) = peer_model(d, action) {
                            inputs.push(ClientInput::Peer(input));
                        }
                    }
                    ClientOutput::Outcome(op, _) => {
                        *self.outcomes.entry((d.life, op.0)).or_default() += 1;
                    }
                    ClientOutput::Event(event) => {
                        if matches!(event, CallEvent::Closed { .. }) {
                            d.closed = true;
                        }
                        if !(d.relogging && matches!(event, CallEvent::Invite(_))) {
                            follow_event(d, &me, event, &mut self.made, &mut self.ended);
                        }
                    }
                    ClientOutput::Finished(_) => finished = true,
                    ClientOutput::Local(_)
                    | ClientOutput::EndRemote(_)
                    | ClientOutput::WantToken => {}
                }
            }
            if let Some(conn) = dropped {
                // The client closed a working connection: the server hears it.
                let out = self.hub.handle(
                    self.now,
                    Input::Disconnected {
                        conn,
                        reason: Reason::Network,
                    },
                );
                let mut commands = Vec::new();
                self.deliver_frames(out, &mut commands);
                self.run_commands(commands);
            }
            let Some(d) = self.devices[dev].as_mut() else {
                return;
            };
            for input in inputs {
                d.core.handle(now, input);
            }
        }
        if finished {
            self.drop_device(dev);
        }
    }

    /// Delivers frames (to devices and to the server, each in the order sent) until none is
    /// on its way.
    pub(super) fn flow(&mut self) {
        loop {
            if let Some((to, text, welcome)) = self.to_clients.pop_front() {
                let Some(dev) = self
                    .devices
                    .iter()
                    .position(|d| d.as_ref().is_some_and(|d| d.transport == to && d.up))
                else {
                    continue;
                };
                if let Some(d) = self.devices[dev].as_mut() {
                    d.relogging = welcome;
                }
                self.feed_client(dev, ClientInput::Text(&text));
                if welcome && let Some(d) = self.devices[dev].as_mut() {
                    d.relogging = false;
                    d.received.clear();
                    d.ends.clear();
                }
            } else if let Some((conn, frame)) = self.to_server.pop_front() {
                let out = self.hub.handle(self.now, Input::Frame { conn, frame });
                let mut commands = Vec::new();
                self.deliver_frames(out, &mut commands);
                self.run_commands(commands);
            } else {
                break;
            }
        }
    }

    /// Hands the hub's outputs on: frames onto the network, media commands to the media model
    /// (whose reports go back to the core), then delivers everything on its way.
    pub(super) fn deliver(&mut self, outputs: Vec<Output>) {
        let mut commands = Vec::new();
        self.deliver_frames(outputs, &mut commands);
        self.run_commands(commands);
        self.flow();
    }

    /// Carries out media commands (or queues them while the shell is stalled); their reports go
    /// back to the core, whose new commands are carried out in turn.
    pub(super) fn run_commands(&mut self, mut commands: Vec<MediaCommand>) {
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
    pub(super) fn release(&mut self, pick: usize) {
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
        self.flow();
    }

    /// Puts the hub's frames on the network (encoded as the server's shell encodes them, with
    /// a personal frame's number last), and collects its media commands.
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
            let text = crate::protocol::encode(&frame);
            let text = match n {
                Some(n) => crate::protocol::with_number(text, n),
                None => text,
            };
            for to in targets {
                let Some(d) = self
                    .devices
                    .iter_mut()
                    .flatten()
                    .find(|d| d.transport == to && d.up)
                else {
                    continue;
                };
                if let ServerFrame::Welcome { .. } = &frame {
                    // A new session (the server had lost the old one).
                    d.conn = to;
                }
                if let ServerFrame::Joined { .. } = &frame {
                    // A new membership: its offers count from 1 again.
                    d.offers.clear();
                }
                let welcome = matches!(frame, ServerFrame::Welcome { .. });
                self.to_clients.push_back((to, text.clone(), welcome));
            }
        }
    }
}

/// The device's peer connections, as a model: offers and answers are made and applied at once;
/// the server's offers wait for an `Answer` action (or are lost).
fn peer_model(d: &mut Device, action: PeerAction) -> Option<PeerInput> {
    match action {
        PeerAction::Offer { op, job, .. } => {
            let mut sending = d.sending.clone();
            match &job {
                OfferJob::Publish(source) => {
                    sending.insert(*source);
                }
                OfferJob::Restart => {}
                OfferJob::Republish(sources) => {
                    // After a rejoin: exactly what was published before it.
                    let sources: BTreeSet<_> = sources.iter().copied().collect();
                    if let Some(want) = d.republish.take() {
                        assert_eq!(sources, want, "a rejoin publishes every track again");
                    }
                    sending = sources;
                }
            }
            d.offering.insert(op, job);
            Some(PeerInput::Offered {
                op,
                sdp: publish_offer(&sending),
            })
        }
        PeerAction::ApplyAnswer { op, .. } => {
            match d.offering.remove(&op) {
                Some(OfferJob::Publish(source)) => {
                    d.sending.insert(source);
                    d.published.insert(source);
                }
                Some(OfferJob::Republish(sources)) => d.sending = sources.into_iter().collect(),
                Some(OfferJob::Restart) => {}
                None => {
                    // As the shell: the connection the offer was made on is closed.
                    return Some(PeerInput::Applied {
                        op,
                        result: Err("the publishing connection is gone".into()),
                    });
                }
            }
            Some(PeerInput::Applied { op, result: Ok(()) })
        }
        PeerAction::CancelOffer { op } => {
            d.offering.remove(&op);
            None
        }
        PeerAction::AnswerOffer {
            negotiation,
            generation,
            sdp,
        } => {
            if let Some((last, _, _)) = d.offers.last() {
                assert!(negotiation > *last, "offers are numbered in order");
            }
            d.offers.push((negotiation, sdp, generation));
            None
        }
        PeerAction::ClosePublisher => {
            d.sending.clear();
            d.offering.clear();
            None
        }
        PeerAction::AddCandidate { .. } | PeerAction::CloseSubscriber => None,
    }
}

/// What the application of device `d` hears: invitations followed (each reaches it once and
/// ends once, and every side agrees how), rejoins and departures for the tracks it publishes.
fn follow_event(
    d: &mut Device,
    me: &crate::model::UserId,
    event: CallEvent,
    made: &mut HashMap<crate::model::InvitationId, crate::server::hub::ConnId>,
    ended: &mut HashMap<crate::model::InvitationId, End>,
) {
    let event = match event {
        CallEvent::Rejoined { .. } => {
            d.republish = (!d.published.is_empty()).then(|| d.published.clone());
            return;
        }
        CallEvent::Left { .. } | CallEvent::Joined { result: Ok(_), .. } => {
            // Out of the room, or in a new one: nothing is published.
            d.published.clear();
            return;
        }
        CallEvent::Media(crate::event::MediaEvent::Unpublished { publication, .. })
            if publication.participant == *me =>
        {
            d.published.remove(&publication.source);
            return;
        }
        // The server gave the publishing connection up: its tracks are gone.
        CallEvent::Media(crate::event::MediaEvent::Failed {
            connection: crate::model::MediaConnection::Publish,
            publication: None,
            ..
        }) => {
            d.published.clear();
            return;
        }
        CallEvent::Invite(event) => event,
        _ => return,
    };
    let end = match event {
        InviteEvent::Sent {
            result: Ok(report), ..
        } => {
            for inv in report.invitations {
                assert!(made.insert(inv.id, d.conn).is_none(), "ids are unique");
            }
            return;
        }
        InviteEvent::Received(inv) => {
            *d.received.entry(inv.id).or_default() += 1;
            return;
        }
        InviteEvent::Accepted { invitation } => Some((invitation.id, End::Accepted)),
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
            Some((d.answering[&op], End::Withdrawn(Reason::Canceled)))
        }
        InviteEvent::AcceptResult { op, result: Ok(()) } => Some((d.answering[&op], End::Accepted)),
        InviteEvent::RejectResult { op, result: Ok(()) } => Some((
            d.answering[&op],
            End::Declined(d.rejecting.get(&op).copied()),
        )),
        _ => None,
    };
    if let Some((id, end)) = end {
        d.ends.entry(id).or_default().push(end);
        let first = *ended.entry(id).or_insert(end);
        assert!(
            first.agrees(end),
            "{id}: one side saw {first:?}, another {end:?}"
        );
    }
}
