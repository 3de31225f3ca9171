//! `wss://` end to end: a server with a certificate made at test time (rcgen), clients that
//! trust it (a given CA) and one that does not (the platform's roots).

use jrtc::{CallError, CallEvent, CallOptions, MessageEvent, TlsIdentity, TlsRoots};

use crate::support::{User, builder, done, token};

/// A self-signed certificate for 127.0.0.1 and localhost: (certificate PEM, key PEM).
pub fn self_signed() -> (String, String) {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("a certificate");
    (made.cert.pem(), made.signing_key.serialize_pem())
}

#[tokio::test]
async fn calls_and_messages_go_over_wss_with_a_generated_certificate() {
    let (cert, key) = self_signed();
    let server = builder()
        .tls(TlsIdentity::from_pem(cert.clone(), key))
        .start()
        .await
        .unwrap();
    let url = server.url();
    assert!(url.starts_with("wss://127.0.0.1:"), "{url}");
    let trusting = CallOptions::default().tls(TlsRoots::pem(cert.clone()));
    let mut alice = User::connect_with(&url, token(&server, "alice"), trusting.clone()).await;
    let mut bob = User::connect_with(&url, token(&server, "bob"), trusting).await;
    alice.join("r").await;
    bob.join("r").await;
    let op = alice
        .call
        .send_message(None, "text/plain", "over TLS")
        .await
        .unwrap();
    done(&alice.call, op).await;
    loop {
        if let CallEvent::Message(MessageEvent::Received(m)) = bob.next().await {
            assert_eq!(m.content, "over TLS");
            break;
        }
    }

    // The platform's roots do not know this certificate: refused, with the reason.
    match jrtc::Call::connect(&url, token(&server, "carol")).await {
        Err(CallError::Connect { message, .. }) => {
            assert!(message.to_lowercase().contains("certificate"), "{message}")
        }
        other => panic!("expected a refused certificate, got {other:?}"),
    }
    // Plain WebSocket to a TLS server gets nowhere either.
    let plain = url.replacen("wss://", "ws://", 1);
    assert!(
        jrtc::Call::connect(&plain, token(&server, "carol"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn an_unusable_certificate_or_ca_is_a_typed_error() {
    let err = builder()
        .tls(TlsIdentity::from_pem("not pem", "nor this"))
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, jrtc::ServerError::Tls { .. }), "{err:?}");
    let server = builder().start().await.unwrap();
    let options = CallOptions::default().tls(TlsRoots::pem("no certificate here"));
    let err = jrtc::Call::connect_with(&server.url(), token(&server, "alice"), options)
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::InvalidParam { .. }), "{err:?}");
}
