//! The simulated network: devices connecting, cut connections the server may or may not notice,
//! resumes as `Call` makes them, and the delivery of the core's outputs (frames to the devices'
//! sessions, in order; media commands to the SFU model, held while it is stalled).

use std::collections::{BTreeSet, HashMap};

use super::super::sim_actions::DEVICES;
use super::{Device, End, World, uid};
use crate::call::policy::link::LinkOutput;
use crate::call::session::Session;
use crate::event::{CallEvent, InviteEvent, OperationKind};
use crate::model::Reason;
use crate::protocol::{ClientFrame, ServerFrame};
use crate::server::hub::io::MediaCommand;
use crate::server::hub::{Input, Output, testing};

impl World {
    pub(super) fn connect(&mut self, dev: usize) {
        if self.devices[dev].is_some() {
            return;
        }
        self.next_conn += 1;
        let conn = self.next_conn;
        self.next_life += 1;
        let link = self.new_link(dev);
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
            link,
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

    /// A cut device connects again and resumes its session, as `Call` does: `resume`, and, if
    /// the server no longer knows the session, `hello` and a join again; then every unanswered
    /// request is sent again.
    pub(super) fn resume(&mut self, dev: usize) {
        let Some(d) = self.devices[dev].as_mut().filter(|d| !d.up) else {
            return;
        };
        self.next_conn += 1;
        d.transport = self.next_conn;
        d.up = true;
        let transport = d.transport;
        let link = self.new_link(dev);
        let d = self.devices[dev].as_mut().expect("checked above");
        d.link = link;
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

    /// Time passed: each device's connection policy does what is due, as a `Call`'s driver
    /// does. A ping on a working connection is answered at once; on a cut one nothing comes
    /// back, so after the idle timeout the connection counts as lost and the policy attempts
    /// again: a new connection gets through (a cut is of the old path), and the device resumes
    /// (or logs in again and rejoins) at the world's time. A policy that gives up ends the
    /// device's call.
    pub(super) fn follow_links(&mut self, from: std::time::Instant) {
        let to = self.instant();
        for dev in 0..self.devices.len() {
            let mut at = from;
            while let Some(d) = self.devices[dev].as_mut() {
                let Some(due) = d.link.next_deadline().filter(|due| *due <= to) else {
                    break;
                };
                at = at.max(due);
                let up = d.up;
                let outputs = d.link.tick(at);
                for output in outputs {
                    match output {
                        LinkOutput::Ping if up => {
                            if let Some(d) = self.devices[dev].as_mut() {
                                d.link.heard(at);
                            }
                        }
                        LinkOutput::Attempt => {
                            self.resume(dev);
                            // `resume` gave the device a new policy, online from now.
                        }
                        LinkOutput::Finish(_) => {
                            self.drop_device(dev);
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    /// The device's call is over (its application closed it, or its policy gave up): its
    /// unanswered requests are moot, and the server hears the connection go.
    pub(super) fn drop_device(&mut self, dev: usize) {
        if let Some(device) = self.devices[dev].take() {
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

    /// Delivers frames to the devices, then hands media commands to the media model, whose
    /// reports go back to the core (as the shells do: frames are queued as they are made, the
    /// SFU's reports come later).
    pub(super) fn deliver(&mut self, outputs: Vec<Output>) {
        let mut commands = Vec::new();
        self.deliver_frames(outputs, &mut commands);
        self.run_commands(commands);
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
}
