//! `serve --config`: the example round-trips, and a flag beats its environment variable, which
//! beats the file, which beats the default; bad files are refused without echoing them.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_jrtc-server"))
}

fn dir(test: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("jrtc-config-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Starts `serve` with `args` (and `env`); the URL it listens on. The server is stopped.
fn listening_url(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = bin();
    cmd.arg("serve")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    cmd.env_remove("JRTC_SECRET");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    // Log lines may come first (they go to standard output too).
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 && !line.contains("listening on") {
        line.clear();
    }
    let _ = child.kill();
    let _ = child.wait();
    line.trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn the_example_round_trips_and_layers_go_flag_env_file_default() {
    let d = dir("layers");
    let out = bin().args(["config", "example"]).output().unwrap();
    assert!(out.status.success());
    let example = d.join("example.toml");
    std::fs::write(&example, &out.stdout).unwrap();
    let check = bin()
        .args(["config", "check"])
        .arg(&example)
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");

    // The example's bind (7600) is beaten by the flag.
    let url = listening_url(
        &[
            "--config",
            example.to_str().unwrap(),
            "--bind",
            "127.0.0.1:0",
            "--dev",
        ],
        &[],
    );
    assert!(
        url.starts_with("ws://127.0.0.1:") && !url.ends_with(":7600"),
        "{url}"
    );

    // The file beats the default (7600), and names the secret's file relative to itself.
    std::fs::write(d.join("secret"), "a secret from a file, 32 bytes or more\n").unwrap();
    let own = d.join("own.toml");
    std::fs::write(&own, "bind = \"127.0.0.1:0\"\nsecret_file = \"secret\"\n").unwrap();
    let url = listening_url(&["--config", own.to_str().unwrap()], &[]);
    assert!(
        url.starts_with("ws://127.0.0.1:") && !url.ends_with(":7600"),
        "{url}"
    );

    // The environment beats the file: the file's bind cannot be bound.
    let bad_bind = d.join("bad-bind.toml");
    std::fs::write(&bad_bind, "bind = \"no such address\"\ndev = true\n").unwrap();
    let url = listening_url(
        &["--config", bad_bind.to_str().unwrap()],
        &[("JRTC_BIND", "127.0.0.1:0")],
    );
    assert!(url.starts_with("ws://127.0.0.1:"), "{url}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn bad_files_are_refused_without_echoing_them() {
    let d = dir("bad");
    let typo = d.join("typo.toml");
    std::fs::write(&typo, "dev = true\nbnid = \"127.0.0.1:0\"\n").unwrap();
    let out = bin()
        .args(["serve", "--config"])
        .arg(&typo)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("typo.toml:2") && err.contains("bnid"), "{err}");

    let secret = d.join("secret.toml");
    std::fs::write(
        &secret,
        "secret = \"hunter2 hunter2 hunter2 hunter2 hunter2\"\n",
    )
    .unwrap();
    let out = bin()
        .args(["serve", "--config"])
        .arg(&secret)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("secret") && !err.contains("hunter2"), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn json_logs_are_one_object_per_line() {
    let mut child = bin()
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--dev",
            "--log-format",
            "json",
        ])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let mut objects = Vec::new();
    while reader.read_line(&mut line).unwrap() > 0 && !line.contains("listening on") {
        objects.push(serde_json::from_str::<serde_json::Value>(&line).expect(&line));
        line.clear();
    }
    let _ = child.kill();
    let _ = child.wait();
    let listening = objects
        .iter()
        .find(|o| o["fields"]["message"] == "jrtc server listening")
        .expect("the listening event, as JSON");
    assert_eq!(listening["level"], "INFO");
    assert!(
        listening["fields"]["addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
}

#[tokio::test]
async fn log_lines_name_the_connection_user_room_and_http_request() {
    let secret = "a test secret that is long enough to be accepted";
    let mut child = bin()
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--log-level",
            "debug",
        ])
        .env("JRTC_SECRET", secret)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let url = loop {
        let line = lines.recv().unwrap();
        if line.contains("listening on") && !line.starts_with('{') {
            break line.trim().rsplit(' ').next().unwrap().to_owned();
        }
    };
    let token = jrtc::AccessToken::new("alice")
        .grants(jrtc::Grants::host())
        .sign(secret.as_bytes())
        .unwrap();
    let once = jrtc::CallOptions::default().reconnect(jrtc::ReconnectPolicy::never());
    let alice = jrtc::Call::connect_with(&url, token, once).await.unwrap();
    let op = alice
        .join("logged", jrtc::JoinOptions::default())
        .await
        .unwrap();
    alice.outcome(op).await.unwrap();
    alice.close().await;
    // An HTTP request names itself with the client's request id, and the answer says it too.
    let http = url.replacen("ws://", "http://", 1);
    let answer = reqwest::Client::new()
        .get(format!("{http}/healthz"))
        .header("x-request-id", "probe-42")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.headers()["x-request-id"], "probe-42");

    let (mut user_seen, mut request_seen) = (false, false);
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !(user_seen && request_seen) && std::time::Instant::now() < end {
        let Ok(line) = lines.recv_timeout(std::time::Duration::from_secs(1)) else {
            continue;
        };
        let Ok(object) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        // The event's spans, outermost first, and the one it names as its own.
        let mut spans = object["spans"].as_array().cloned().unwrap_or_default();
        spans.push(object["span"].clone());
        user_seen |= spans
            .iter()
            .any(|s| s["name"] == "connection" && s["user"] == "alice" && s["room"] == "logged");
        request_seen |= spans
            .iter()
            .any(|s| s["name"] == "http" && s["request"] == "probe-42" && s["path"] == "/healthz");
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(user_seen, "no log line named alice's connection and room");
    assert!(request_seen, "no log line named the HTTP request");
}
