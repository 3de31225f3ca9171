//! The signaling tests' helpers (also the browser tests'): a development server, tokens, a
//! logged-in [`User`] with its event stream, outcomes awaited in time, and a test run again in a
//! network namespace of its own.

use std::time::Duration;

use futures::StreamExt;
use jrtc::{
    AccessToken, Call, CallEvent, EventStream, Grants, JoinOptions, OperationId, Outcome,
    RoomSnapshot, Server, ServerHandle,
};

/// How long a test waits for an event that must come.
pub const WAIT: Duration = Duration::from_secs(5);

pub async fn server() -> ServerHandle {
    builder().start().await.expect("server starts")
}

/// A development server whose request rate limit is out of the tests' way (the rate limit has
/// tests of its own).
pub fn builder() -> jrtc::ServerBuilder {
    Server::builder().development().limits(unlimited())
}

/// Default limits but the request rate.
pub fn unlimited() -> jrtc::Limits {
    jrtc::Limits::default()
        .requests_per_second(1_000_000)
        .request_burst(1_000_000)
}

/// A token for `id` (display name: `id` in capitals) with every grant.
pub fn token(server: &ServerHandle, id: &str) -> String {
    server
        .mint(
            &AccessToken::new(id)
                .name(id.to_uppercase())
                .grants(Grants::all()),
        )
        .expect("a valid token")
}

/// Adds (`-A`) or deletes (`-D`) an iptables rule that drops a share (`probability`, 0 to 1)
/// of the UDP packets sent on loopback, at random: a lossy link for a test that runs in a
/// network namespace of its own (this kernel has no netem; the drop is the same loss).
pub fn lossy_loopback(verb: &str, probability: &str) {
    let status = std::process::Command::new("iptables")
        .args([verb, "OUTPUT", "-o", "lo", "-p", "udp"])
        .args([
            "-m",
            "statistic",
            "--mode",
            "random",
            "--probability",
            probability,
        ])
        .args(["-j", "DROP"])
        .status()
        .expect("iptables runs (Debian package iptables; scripts/test installs it)");
    assert!(status.success(), "iptables {verb}");
}

/// A server API client acting as user `backend` (an admin token).
pub fn server_api(server: &ServerHandle) -> jrtc::ServerApi {
    let token = server
        .mint(&AccessToken::new("backend").grants(Grants::none().admin(true)))
        .expect("a valid token");
    jrtc::ServerApi::new(&server.http_url(), token).expect("the server's URL")
}

/// A logged-in user with a stream subscribed from the start.
pub struct User {
    pub call: Call,
    pub events: EventStream,
}

impl User {
    pub async fn connect(server: &ServerHandle, id: &str) -> User {
        Self::connect_url(&server.url(), token(server, id)).await
    }

    pub async fn connect_url(url: &str, token: String) -> User {
        Self::connect_with(url, token, jrtc::CallOptions::default()).await
    }

    pub async fn connect_with(url: &str, token: String, options: jrtc::CallOptions) -> User {
        let call = Call::connect_with(url, token, options)
            .await
            .expect("login");
        let events = call.events();
        User { call, events }
    }

    /// A user whose call does not reconnect: a lost connection ends it.
    pub async fn connect_once(url: &str, token: String) -> User {
        let options = jrtc::CallOptions::default().reconnect(jrtc::ReconnectPolicy::never());
        Self::connect_with(url, token, options).await
    }

    /// The next event, which must be another member's connection going (`Reconnecting`) or
    /// coming back.
    pub async fn connection_of(&mut self) -> (String, jrtc::ConnectionState) {
        match self.next().await {
            CallEvent::Participant(jrtc::ParticipantEvent::Updated {
                participant,
                changes,
                ..
            }) if changes.connection => (participant.user_id.to_string(), participant.connection),
            other => panic!(
                "{}: expected a connection change, got {other:?}",
                self.call.user_id()
            ),
        }
    }

    /// The next event; fails the test if none comes in time.
    pub async fn next(&mut self) -> CallEvent {
        next(&mut self.events).await
    }

    /// Joins `room` and returns the snapshot, checking the outcome event carries the op id.
    pub async fn join(&mut self, room: &str) -> RoomSnapshot {
        let op = self
            .call
            .join(room, JoinOptions::default())
            .await
            .expect("send join");
        match self.next().await {
            CallEvent::Joined {
                op: got,
                result: Ok(snapshot),
            } if got == op => snapshot,
            other => panic!(
                "{}: expected Joined for {op}, got {other:?}",
                self.call.user_id()
            ),
        }
    }

    /// Asserts that nothing arrives for a short while.
    pub async fn assert_quiet(&mut self) {
        if let Ok(Some(ev)) =
            tokio::time::timeout(Duration::from_millis(150), self.events.next()).await
        {
            panic!("{}: unexpected event {ev:?}", self.call.user_id());
        }
    }
}

pub async fn next(events: &mut EventStream) -> CallEvent {
    tokio::time::timeout(WAIT, events.next())
        .await
        .expect("an event in time")
        .expect("the stream is open")
}

/// Connects `ids` and makes them join `room` in order; returns them with their streams drained
/// of the joins that happened after each one's own.
pub async fn room_of(server: &ServerHandle, room: &str, ids: &[&str]) -> Vec<User> {
    let mut users: Vec<User> = Vec::new();
    for id in ids {
        let mut user = User::connect(server, id).await;
        user.join(room).await;
        for earlier in users.iter_mut() {
            match earlier.next().await {
                CallEvent::Participant(jrtc::ParticipantEvent::Joined { participant, .. })
                    if participant.user_id == *id => {}
                other => panic!("expected {id} to join, got {other:?}"),
            }
        }
        users.push(user);
    }
    users
}

/// A group message from `from` is sent and reaches `to` (next in its stream).
pub async fn message_reaches(from: &User, to: &mut User) {
    let op = from
        .call
        .send_message(None, "text/plain", "hi")
        .await
        .expect("send the message");
    done(&from.call, op).await;
    assert!(matches!(to.next().await, CallEvent::Message(_)));
}

/// The awaited outcome of `op`, which must succeed.
pub async fn done(call: &Call, op: OperationId) -> Outcome {
    tokio::time::timeout(WAIT, call.outcome(op))
        .await
        .expect("an outcome in time")
        .expect("the operation succeeds")
}

impl User {
    /// The next event, which must be another member leaving: who and why.
    pub async fn participant_left(&mut self) -> (String, jrtc::Reason) {
        match self.next().await {
            CallEvent::Participant(jrtc::ParticipantEvent::Left {
                participant,
                reason,
                ..
            }) => (participant.user_id.to_string(), reason),
            other => panic!(
                "{}: expected a departure, got {other:?}",
                self.call.user_id()
            ),
        }
    }
}

/// The error code of `op`, which must be refused.
pub async fn refused(call: &Call, op: OperationId) -> jrtc::ErrorCode {
    match tokio::time::timeout(WAIT, call.outcome(op))
        .await
        .expect("an outcome in time")
    {
        Err(jrtc::CallError::Refused { error, .. }) => error.code,
        other => panic!("expected {op} to be refused, got {other:?}"),
    }
}

/// Runs test `name` (a path like `floods::a_test`) again in a new network namespace, where
/// `setup` (shell commands) runs first; true when this process is the one inside, which then
/// runs the body. The namespace needs root (as `.ci/run` has) and `unshare` (util-linux).
pub fn in_namespace(name: &str, setup: &str) -> bool {
    const INSIDE: &str = "JRTC_TEST_IN_NETNS";
    if std::env::var_os(INSIDE).is_some() {
        return true;
    }
    // One namespace test at a time: each is timing-sensitive (media paths dying and coming
    // back, latencies measured), and two at once on two cores disturb each other.
    let _turn = heavy();
    assert!(
        is_root(),
        "this test makes a network namespace (unshare -n): run it as root (scripts/test)"
    );
    for (program, package) in [("unshare", "util-linux"), ("ip", "iproute2")] {
        assert!(
            in_path(program),
            "this test needs `{program}`: apt-get install -y {package} (or run scripts/test)"
        );
    }
    let exe = std::env::current_exe().unwrap();
    let script = format!("{setup} && exec \"$0\" \"$@\"");
    let status = std::process::Command::new("unshare")
        .args(["-n", "sh", "-c", &script])
        .arg(&exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(INSIDE, "1")
        .status()
        .expect("unshare runs (util-linux)");
    assert!(status.success(), "the test inside the namespace failed");
    false
}

/// Whether this process runs as root (effective uid 0, from /proc/self/status).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

/// Whether `program` is an executable file in `$PATH`.
pub fn in_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Held by the tests that are timing-sensitive or load the machine (the namespace tests, the
/// recording tests with real media), so that on two cores they do not run together.
pub fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}
