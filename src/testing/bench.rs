//! Entry points for the core benchmarks in `benches/core.rs`. Not part of the public API:
//! compiled with the `internals` feature only.

use crate::call::EventStream;
use crate::event::CallEvent;
use crate::model::{MessageScope, OperationId, RoomId};
use crate::protocol::{ClientFrame, ServerFrame};
use crate::server::hub::{ConnId, Hub, Input, Output, testing};

/// The call's event fan-out, as a `Call` uses it: a publisher and its subscribers' streams.
pub struct EventSource {
    tx: crate::call::ring::Sender<CallEvent>,
}

impl EventSource {
    /// A fan-out holding `capacity` events per subscriber.
    pub fn new(capacity: usize) -> Self {
        EventSource {
            tx: crate::call::ring::channel(capacity).0,
        }
    }

    /// A new subscriber.
    pub fn subscribe(&self) -> EventStream {
        EventStream::new(self.tx.subscribe())
    }

    /// Publishes one event to every subscriber.
    pub fn publish(&self, event: CallEvent) {
        self.tx.send(event);
    }
}

/// A typical event: a group message received.
pub fn message_event(i: u64) -> CallEvent {
    CallEvent::Message(crate::event::MessageEvent::Received(
        crate::event::ReceivedMessage {
            room: RoomId::from("standup"),
            seq: Some(i),
            from: "alice".into(),
            scope: MessageScope::Group,
            content_type: "text/plain".into(),
            content: "hello, everyone".into(),
        },
    ))
}

/// The server core with one room of `members` logged-in members.
pub struct Core {
    hub: Hub,
    members: Vec<ConnId>,
    next_op: u64,
    now: u64,
}

impl Core {
    /// A core whose room "r" has `members` members (conns 1..=members).
    pub fn with_room(members: usize) -> Self {
        let mut hub = Hub::new(testing::config());
        let members: Vec<ConnId> = (1..=members as ConnId).collect();
        for &conn in &members {
            hub.handle(
                0,
                Input::Frame {
                    conn,
                    frame: testing::hello(&format!("u{conn}")),
                },
            );
            hub.handle(
                0,
                Input::Frame {
                    conn,
                    frame: join_r(OperationId(1)),
                },
            );
        }
        Core {
            hub,
            members,
            next_op: 1,
            now: 0,
        }
    }

    fn request(&mut self, conn: ConnId, frame: impl FnOnce(OperationId) -> ClientFrame) -> usize {
        self.next_op += 1;
        self.now += 1;
        let outputs = self.hub.handle(
            self.now,
            Input::Frame {
                conn,
                frame: frame(OperationId(self.next_op)),
            },
        );
        frames_sent(&outputs)
    }

    /// The first member sends a group message; returns the frames the core sends out.
    pub fn group_message(&mut self) -> usize {
        let conn = self.members[0];
        self.request(conn, |op| ClientFrame::SendMessage {
            op,
            to: None,
            content_type: "text/plain".into(),
            content: "hello, everyone".into(),
        })
    }

    /// [`Core::group_message`] in a room whose members acknowledge everything every 64
    /// messages (as pinging clients do), so their outboxes stay short.
    pub fn group_message_acknowledged(&mut self) -> usize {
        if self.next_op % 64 == 0 {
            self.hub.acknowledge_all();
        }
        self.group_message()
    }

    /// The host sets a custom property (to a new value each time).
    pub fn property_change(&mut self) -> usize {
        let conn = self.members[0];
        let value = self.next_op.to_string();
        self.request(conn, |op| {
            let mut update = crate::model::PropertyUpdate::default();
            update.custom.insert("topic".into(), Some(value));
            ClientFrame::SetProperties { op, update }
        })
    }

    /// The last member leaves and joins again.
    pub fn rejoin(&mut self) -> usize {
        let conn = *self.members.last().expect("a member");
        let left = self.request(conn, |op| ClientFrame::Leave { op });
        left + self.request(conn, join_r)
    }
}

/// A request to join room "r" with the defaults.
fn join_r(op: OperationId) -> ClientFrame {
    crate::server::hub::testing::join("r", op)
}

fn frames_sent(outputs: &[Output]) -> usize {
    outputs
        .iter()
        .map(|o| match o {
            Output::Send { .. } | Output::Deliver { .. } => 1,
            Output::Broadcast { to, .. } => to.len(),
            _ => 0,
        })
        .sum()
}

/// A typical client frame, as text.
pub fn client_frame_text() -> String {
    crate::protocol::encode(&ClientFrame::SendMessage {
        op: OperationId(42),
        to: None,
        content_type: "text/plain".into(),
        content: "hello, everyone".into(),
    })
}

/// A typical server frame.
pub fn server_frame() -> ServerFrame {
    ServerFrame::Message {
        room: RoomId::from("standup"),
        seq: Some(7),
        from: "alice".into(),
        scope: MessageScope::Group,
        content_type: "text/plain".into(),
        content: "hello, everyone".into(),
    }
}

/// A client in room "standup" and `count` of its room's group messages as they arrive (text,
/// each with its personal number): fed through the session alone (parse, then
/// `Session::handle`: the work a `Call`'s driver did per frame before the client core) or
/// through the [`ClientCore`](crate::call::core::ClientCore) a `Call` runs now (parse, session,
/// outputs).
pub struct ClientFeed {
    frames: Vec<String>,
}

impl ClientFeed {
    /// `count` messages, numbered from 1 after the join's snapshot.
    pub fn new(count: u64) -> Self {
        let frames = (1..=count)
            .map(|i| {
                let frame = ServerFrame::Message {
                    room: RoomId::from("standup"),
                    seq: Some(i + 1),
                    from: "alice".into(),
                    scope: MessageScope::Group,
                    content_type: "text/plain".into(),
                    content: "hello, everyone".into(),
                };
                crate::protocol::with_number(crate::protocol::encode(&frame), i + 1)
            })
            .collect();
        ClientFeed { frames }
    }

    fn joined_frame() -> String {
        let frame = ServerFrame::Joined {
            op: OperationId(1),
            room: RoomId::from("standup"),
            seq: 1,
            participants: vec![crate::model::Participant {
                user_id: "ada".into(),
                display_name: "Ada".into(),
                role: crate::model::Role::Host,
                audio: false,
                video: false,
                state: String::new(),
                connection: Default::default(),
                volume: Default::default(),
                net: Default::default(),
                streams: Vec::new(),
            }],
            properties: Default::default(),
            publications: Vec::new(),
        };
        crate::protocol::with_number(crate::protocol::encode(&frame), 1)
    }

    fn join(op: OperationId) -> ClientFrame {
        testing::join("standup", op)
    }

    /// Through a new session: the events made.
    pub fn through_session(&self) -> usize {
        use crate::call::session::Session;
        let mut session = Session::new("ada".into());
        session.request(crate::event::OperationKind::Join, None, Self::join);
        let mut events = 0;
        for text in std::iter::once(&Self::joined_frame()).chain(&self.frames) {
            let frame: ServerFrame = serde_json::from_str(text).expect("a frame");
            let handled = session.handle(frame, crate::protocol::frame_number(text));
            events += handled.events.len();
        }
        events
    }

    /// Through a new client core: the events made.
    pub fn through_core(&self) -> usize {
        use crate::call::core::{ClientCore, Input, Now, Output, Start};
        let now = Now {
            at: std::time::Instant::now(),
            unix: 0,
        };
        let start = Start::new(
            "ada".into(),
            String::new(),
            String::new(),
            &crate::call::CallOptions::default(),
        );
        let mut core = ClientCore::new(start, now);
        core.request(crate::event::OperationKind::Join, None, Self::join)
            .expect("open");
        let mut events = 0;
        let joined = Self::joined_frame();
        for text in std::iter::once(&joined).chain(&self.frames) {
            core.handle(now, Input::Text(text));
            events += core
                .drain()
                .filter(|o| matches!(o, Output::Event(_)))
                .count();
        }
        events
    }
}
