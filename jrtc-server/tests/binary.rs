//! The standalone `jrtc-server` binary: starts, serves real clients, stops on SIGINT.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use futures::StreamExt;
use jrtc::{Call, CallEvent, JoinOptions, Outcome};

#[tokio::test]
async fn the_standalone_server_serves_clients_and_stops_on_sigint() {
    let secret = "a test secret that is long enough to be accepted";
    let mut child = Command::new(env!("CARGO_BIN_EXE_jrtc-server"))
        .args(["serve", "--bind", "127.0.0.1:0", "--log-level", "warn"])
        .env("JRTC_SECRET", secret)
        .stdout(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(url.starts_with("ws://127.0.0.1:"), "{line}");

    // A token minted by the binary's own `token` command logs in.
    let minted = Command::new(env!("CARGO_BIN_EXE_jrtc-server"))
        .args([
            "token", "--user", "alice", "--name", "Alice", "--room", "r", "--grants", "all",
        ])
        .env("JRTC_SECRET", secret)
        .output()
        .unwrap();
    assert!(minted.status.success(), "{minted:?}");
    let token = String::from_utf8(minted.stdout).unwrap().trim().to_owned();
    // A call that does not reconnect: the goodbye (which says the server may come back) ends it.
    let once = jrtc::CallOptions::default().reconnect(jrtc::ReconnectPolicy::never());
    let alice = Call::connect_with(&url, token, once).await.expect("login");
    let mut events = alice.events();
    let op = alice.join("r", JoinOptions::default()).await.unwrap();
    let Ok(Outcome::Joined(snap)) = alice.outcome(op).await else {
        panic!("alice joins");
    };
    assert_eq!(snap.participants.len(), 1);

    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // The server says goodbye: the call's stream ends with the shutdown reason.
    let wait = std::time::Duration::from_secs(5);
    loop {
        let event = tokio::time::timeout(wait, events.next())
            .await
            .expect("an event in time")
            .expect("the stream ends after Closed");
        if let CallEvent::Closed { reason } = event {
            assert_eq!(reason, jrtc::Reason::ServerShutdown);
            break;
        }
    }
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}
