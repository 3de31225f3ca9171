//! Property-based tests of the sans-IO core: random sequences of joins, leaves, kicks, roles,
//! updates, property changes, messages and lost connections, with a client [`Session`] per
//! connection fed the hub's output. Every member's view must equal the server's room, sequence
//! numbers must be gap-free, and every request must get exactly one outcome.

use std::collections::HashMap;

use proptest::prelude::*;

use super::hub::{ConnId, Hub, Input, Output};
use crate::call::session::Session;
use crate::event::OperationKind;
use crate::model::{ParticipantUpdate, PropertyUpdate, Reason, Role, RoomId, ScreenShare, UserId};
use crate::protocol::{ClientFrame, PROTOCOL_VERSION, ServerFrame};

const USERS: usize = 5;
const ROOMS: [&str; 2] = ["a", "b"];

#[derive(Clone, Debug)]
enum Action {
    Join {
        user: usize,
        room: usize,
    },
    Leave {
        user: usize,
    },
    End {
        user: usize,
    },
    Kick {
        user: usize,
        target: usize,
    },
    SetRole {
        user: usize,
        target: usize,
        host: bool,
    },
    Update {
        user: usize,
        audio: bool,
        state: u8,
    },
    SetCustom {
        user: usize,
        key: u8,
        value: Option<u8>,
    },
    Share {
        user: usize,
        target: usize,
        start: bool,
    },
    Record {
        user: usize,
        on: bool,
    },
    Message {
        user: usize,
        to: Option<usize>,
    },
    /// The connection drops; the user logs in again on a new connection.
    Reconnect {
        user: usize,
    },
}

fn action() -> impl Strategy<Value = Action> {
    let u = 0..USERS;
    prop_oneof![
        4 => (u.clone(), 0..ROOMS.len()).prop_map(|(user, room)| Action::Join { user, room }),
        1 => u.clone().prop_map(|user| Action::Leave { user }),
        1 => u.clone().prop_map(|user| Action::End { user }),
        1 => (u.clone(), u.clone()).prop_map(|(user, target)| Action::Kick { user, target }),
        1 => (u.clone(), u.clone(), any::<bool>()).prop_map(|(user, target, host)| Action::SetRole { user, target, host }),
        2 => (u.clone(), any::<bool>(), 0..3u8).prop_map(|(user, audio, state)| Action::Update { user, audio, state }),
        1 => (u.clone(), 0..3u8, proptest::option::of(0..3u8)).prop_map(|(user, key, value)| Action::SetCustom { user, key, value }),
        1 => (u.clone(), u.clone(), any::<bool>()).prop_map(|(user, target, start)| Action::Share { user, target, start }),
        1 => (u.clone(), any::<bool>()).prop_map(|(user, on)| Action::Record { user, on }),
        2 => (u.clone(), proptest::option::of(u.clone())).prop_map(|(user, to)| Action::Message { user, to }),
        1 => u.prop_map(|user| Action::Reconnect { user }),
    ]
}

fn uid(i: usize) -> UserId {
    UserId(format!("u{i}"))
}

struct World {
    hub: Hub,
    /// Each user's current connection and client session.
    clients: Vec<(ConnId, Session)>,
    next_conn: ConnId,
    /// Outcome events seen per (connection, op).
    outcomes: HashMap<(ConnId, u64), usize>,
    sent: Vec<(ConnId, u64)>,
}

impl World {
    fn new() -> Self {
        let mut w = World {
            hub: Hub::new("gen-".into()),
            clients: Vec::new(),
            next_conn: 0,
            outcomes: HashMap::new(),
            sent: Vec::new(),
        };
        for i in 0..USERS {
            let conn = w.login(i);
            w.clients.push((conn, Session::new(uid(i))));
        }
        w
    }

    fn login(&mut self, i: usize) -> ConnId {
        self.next_conn += 1;
        let conn = self.next_conn;
        let out = self.hub.handle(Input::Frame {
            conn,
            frame: ClientFrame::Hello {
                version: PROTOCOL_VERSION,
                user_id: uid(i),
                display_name: String::new(),
            },
        });
        assert!(matches!(
            &out[..],
            [Output::Send {
                frame: ServerFrame::Welcome { .. },
                ..
            }]
        ));
        conn
    }

    fn deliver(&mut self, outputs: Vec<Output>) {
        for output in outputs {
            let (targets, frame) = match output {
                Output::Send { to, frame } => (vec![to], frame),
                Output::Broadcast { to, frame } => (to, frame),
                Output::Close { .. } => continue,
            };
            for to in targets {
                let Some((conn, session)) = self.clients.iter_mut().find(|(c, _)| *c == to) else {
                    continue;
                };
                for event in session.handle(frame.clone()) {
                    if let Some((op, _)) = event.outcome() {
                        *self.outcomes.entry((*conn, op.0)).or_default() += 1;
                    }
                }
            }
        }
    }

    fn request(
        &mut self,
        user: usize,
        kind: OperationKind,
        frame: impl FnOnce(crate::model::OperationId) -> ClientFrame,
    ) {
        let (conn, session) = &mut self.clients[user];
        let conn = *conn;
        let (op, frame) = session.request(kind, frame);
        self.sent.push((conn, op.0));
        let out = self.hub.handle(Input::Frame { conn, frame });
        self.deliver(out);
    }

    fn apply(&mut self, action: Action) {
        match action {
            Action::Join { user, room } => {
                self.request(user, OperationKind::Join, |op| ClientFrame::Join {
                    op,
                    room: Some(RoomId::from(ROOMS[room])),
                    display_name: None,
                    audio: false,
                    video: false,
                    state: String::new(),
                })
            }
            Action::Leave { user } => {
                self.request(user, OperationKind::Leave, |op| ClientFrame::Leave { op })
            }
            Action::End { user } => {
                self.request(user, OperationKind::End, |op| ClientFrame::End { op })
            }
            Action::Kick { user, target } => {
                self.request(user, OperationKind::Kick, |op| ClientFrame::Kick {
                    op,
                    user_id: uid(target),
                })
            }
            Action::SetRole { user, target, host } => {
                self.request(user, OperationKind::SetRole, |op| ClientFrame::SetRole {
                    op,
                    user_id: uid(target),
                    role: if host { Role::Host } else { Role::Guest },
                })
            }
            Action::Update { user, audio, state } => {
                self.request(user, OperationKind::Update, |op| ClientFrame::Update {
                    op,
                    update: ParticipantUpdate {
                        audio: Some(audio),
                        state: Some(format!("s{state}")),
                        ..Default::default()
                    },
                })
            }
            Action::SetCustom { user, key, value } => {
                self.request(user, OperationKind::SetProperties, |op| {
                    let mut update = PropertyUpdate::default();
                    update
                        .custom
                        .insert(format!("k{key}"), value.map(|v| format!("v{v}")));
                    ClientFrame::SetProperties { op, update }
                })
            }
            Action::Share {
                user,
                target,
                start,
            } => self.request(user, OperationKind::SetProperties, |op| {
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
            }),
            Action::Record { user, on } => self.request(user, OperationKind::SetProperties, |op| {
                ClientFrame::SetProperties {
                    op,
                    update: PropertyUpdate {
                        recording: Some(on),
                        ..Default::default()
                    },
                }
            }),
            Action::Message { user, to } => self.request(user, OperationKind::SendMessage, |op| {
                ClientFrame::SendMessage {
                    op,
                    to: to.map(uid),
                    content_type: "text/plain".into(),
                    content: "hi".into(),
                }
            }),
            Action::Reconnect { user } => {
                let old = self.clients[user].0;
                let was_in_room = self.hub.room_of(old).is_some();
                let out = self.hub.handle(Input::Disconnected {
                    conn: old,
                    reason: Reason::Network,
                });
                // The old session is gone with its connection: it receives nothing more, and
                // tells its application it left the room it was in.
                let left = self.clients[user].1.closed(Reason::Network);
                assert_eq!(left.is_some(), was_in_room);
                self.deliver(out);
                let conn = self.login(user);
                self.clients[user] = (conn, Session::new(uid(user)));
            }
        }
    }

    fn check(&self) {
        for (i, (conn, session)) in self.clients.iter().enumerate() {
            assert_eq!(session.seq_faults(), 0, "u{i} saw a sequence gap");
            assert_eq!(
                session.pending().count(),
                0,
                "u{i} has a request without an answer"
            );
            match (self.hub.room_of(*conn), session.room()) {
                (None, None) => {}
                (Some(id), Some(view)) => {
                    let room = self.hub.room(&id).expect("a member's room exists");
                    assert_eq!(view.room, id);
                    assert_eq!(view.seq, room.seq(), "u{i}'s sequence number");
                    assert_eq!(view.participants, room.participants(), "u{i}'s roster");
                    assert_eq!(&view.properties, room.properties(), "u{i}'s properties");
                    assert!(
                        room.participants().iter().any(|p| p.role == Role::Host),
                        "a room keeps a host"
                    );
                }
                (server, client) => panic!(
                    "u{i}: server says {server:?}, client says {:?}",
                    client.map(|c| &c.room)
                ),
            }
        }
        for key in &self.sent {
            assert_eq!(
                self.outcomes.get(key),
                Some(&1),
                "exactly one outcome for {key:?}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_view_matches_the_server(actions in proptest::collection::vec(action(), 1..120)) {
        let mut world = World::new();
        for action in actions {
            world.apply(action);
            world.check();
        }
    }
}
