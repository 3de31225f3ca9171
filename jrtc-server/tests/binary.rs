//! The standalone `jrtc-server` binary: starts, serves real clients, stops on SIGINT.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use futures::StreamExt;
use jrtc::{Call, CallEvent, JoinOptions, Outcome};

/// Starts `jrtc-server serve` on a free loopback port with `extra` flags; the child and the URL
/// it prints.
fn serve(secret: &str, extra: &[&str]) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_jrtc-server"))
        .args(["serve", "--bind", "127.0.0.1:0", "--log-level", "warn"])
        .args(extra)
        .env("JRTC_SECRET", secret)
        .stdout(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_owned();
    (child, url)
}

#[tokio::test]
async fn the_standalone_server_serves_clients_and_stops_on_sigint() {
    let secret = "a test secret that is long enough to be accepted";
    let (child, url) = serve(secret, &[]);
    assert!(url.starts_with("ws://127.0.0.1:"), "{url}");

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

    interrupt(&child);
    // The server says goodbye: the call's stream ends with the shutdown reason.
    assert_eq!(closed(&mut events).await, jrtc::Reason::ServerShutdown);
    exits_cleanly(child).await;
}

/// Sends SIGINT to the server.
fn interrupt(child: &std::process::Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the server to exit, which must be with status 0.
async fn exits_cleanly(mut child: std::process::Child) {
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}

/// Reads `events` until `Closed`; its reason.
async fn closed(events: &mut jrtc::EventStream) -> jrtc::Reason {
    let wait = std::time::Duration::from_secs(5);
    loop {
        let event = tokio::time::timeout(wait, events.next())
            .await
            .expect("an event in time")
            .expect("the stream ends after Closed");
        if let CallEvent::Closed { reason } = event {
            return reason;
        }
    }
}

/// Runs `jrtc-server` with `args` and the secret; its stdout, which must be a success.
fn cli(secret: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_jrtc-server"))
        .args(args)
        .env("JRTC_SECRET", secret)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn serve_with_tls_mint_with_new_grants_and_revoke_from_the_command_line() {
    let secret = "another test secret, long enough to be accepted";
    let dir = std::env::temp_dir().join(format!("jrtc-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let (cert_arg, key_arg) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let (child, url) = serve(secret, &["--tls-cert", cert_arg, "--tls-key", key_arg]);
    assert!(url.starts_with("wss://127.0.0.1:"), "{url}");
    let options = jrtc::CallOptions::default()
        .tls(jrtc::TlsRoots::pem(made.cert.pem()))
        .reconnect(jrtc::ReconnectPolicy::never());

    // The host-of claim and the create grant, minted by the CLI; a guest without `create`.
    let hana = cli(
        secret,
        &[
            "token",
            "--user",
            "hana",
            "--grants",
            "publish,message,create,moderate",
            "--host-of",
            "r",
            "--id",
            "hana-1",
        ],
    );
    let hana = Call::connect_with(&url, hana, options.clone())
        .await
        .unwrap();
    let op = hana.join("r", JoinOptions::default()).await.unwrap();
    assert!(matches!(hana.outcome(op).await, Ok(Outcome::Joined(_))));
    let gus = cli(secret, &["token", "--user", "gus", "--id", "gus-1"]);
    let gus = Call::connect_with(&url, gus, options.clone())
        .await
        .unwrap();
    let mut gus_events = gus.events();
    let op = gus.join("elsewhere", JoinOptions::default()).await.unwrap();
    match gus.outcome(op).await {
        Err(jrtc::CallError::Refused { error, .. }) => {
            assert_eq!(error.code, jrtc::ErrorCode::NoSuchRoom)
        }
        other => panic!("{other:?}"),
    }
    let op = gus.join("r", JoinOptions::default()).await.unwrap();
    assert!(matches!(gus.outcome(op).await, Ok(Outcome::Joined(_))));

    // `jrtc-server revoke` ends gus's session and keeps the token out.
    let ca = cert.to_str().unwrap();
    assert_eq!(
        cli(
            secret,
            &["revoke", "--url", &url, "--ca", ca, "--jti", "gus-1"]
        ),
        "revoked"
    );
    assert_eq!(closed(&mut gus_events).await, jrtc::Reason::TokenRevoked);
    assert!(hana.closed_reason().is_none());
    interrupt(&child);
    exits_cleanly(child).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// `jrtc-server ARGS` against the server at `http`, signing with `secret`: (exit ok, stdout,
/// stderr).
fn api_cli(secret: &str, http: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_jrtc-server"))
        .args(args)
        .args(["--url", http])
        .env("JRTC_SECRET", secret)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test]
async fn the_cli_wraps_the_server_api() {
    let secret = "a test secret that is long enough to be accepted";
    let (child, url) = serve(secret, &["--drain-delay", "0"]);
    let http = url.replacen("ws://", "http://", 1);

    let (ok, out, err) = api_cli(
        secret,
        &http,
        &["rooms", "create", "standup", "--max-participants", "4"],
    );
    assert!(ok, "{err}");
    let made: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(made["options"]["max_participants"], 4);
    let (ok, out, _) = api_cli(secret, &http, &["rooms", "list"]);
    assert!(ok);
    let rooms: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rooms[0]["room"], "standup");

    // A member joins; the CLI sees and removes them.
    let token = jrtc::AccessToken::new("alice")
        .grants(jrtc::Grants::host())
        .sign(secret.as_bytes())
        .unwrap();
    let once = jrtc::CallOptions::default().reconnect(jrtc::ReconnectPolicy::never());
    let alice = Call::connect_with(&url, token, once).await.expect("login");
    let mut events = alice.events();
    let op = alice.join("standup", JoinOptions::default()).await.unwrap();
    assert!(matches!(alice.outcome(op).await, Ok(Outcome::Joined(_))));
    let (ok, out, _) = api_cli(secret, &http, &["rooms", "show", "standup"]);
    assert!(ok);
    let room: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(room["participants"][0]["user_id"], "alice");
    let (ok, _, err) = api_cli(
        secret,
        &http,
        &["participants", "remove", "standup", "nobody"],
    );
    assert!(!ok);
    assert!(err.contains("no_such_participant"), "{err}");
    let (ok, out, err) = api_cli(
        secret,
        &http,
        &[
            "participants",
            "remove",
            "standup",
            "alice",
            "--ban-secs",
            "60",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("banned alice"), "{out}");
    assert_eq!(closed_or_left(&mut events).await, jrtc::Reason::Kicked);

    // A wrong secret is refused by the server, not by the CLI.
    let (ok, _, err) = api_cli(
        "another secret, also long enough to be used here",
        &http,
        &["rooms", "end", "standup"],
    );
    assert!(!ok);
    assert!(err.contains("bad_signature"), "{err}");
    let (ok, out, _) = api_cli(secret, &http, &["rooms", "end", "standup"]);
    assert!(ok && out.contains("ended standup"), "{out}");
    let (ok, _, err) = api_cli(secret, &http, &["rooms", "show", "standup"]);
    assert!(!ok && err.contains("no_such_room"), "{err}");

    interrupt(&child);
    exits_cleanly(child).await;
}

/// Reads `events` until the call is left (or closed); why.
async fn closed_or_left(events: &mut jrtc::EventStream) -> jrtc::Reason {
    let wait = std::time::Duration::from_secs(5);
    loop {
        match tokio::time::timeout(wait, events.next()).await {
            Ok(Some(CallEvent::Left { reason, .. })) => return reason,
            Ok(Some(CallEvent::Closed { reason })) => return reason,
            Ok(Some(_)) => {}
            other => panic!("expected the call to be left, got {other:?}"),
        }
    }
}
