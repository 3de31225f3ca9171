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
    let mut child = Command::new(env!("CARGO_BIN_EXE_jrtc-server"))
        .args(["serve", "--bind", "127.0.0.1:0", "--log-level", "warn"])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .env("JRTC_SECRET", secret)
        .stdout(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(url.starts_with("wss://127.0.0.1:"), "{line}");
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
    let wait = std::time::Duration::from_secs(5);
    loop {
        let event = tokio::time::timeout(wait, gus_events.next())
            .await
            .expect("an event in time")
            .expect("the stream ends after Closed");
        if let CallEvent::Closed { reason } = event {
            assert_eq!(reason, jrtc::Reason::TokenRevoked);
            break;
        }
    }
    assert!(hana.closed_reason().is_none());
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
