//! Options out of range are refused with a typed error before anything starts (never clamped
//! silently).

use std::time::Duration;

use jrtc::{Call, CallError, CallOptions, Server, ServerError};

use crate::support::{server, token};

#[tokio::test]
async fn server_options_out_of_range_are_refused_at_start() {
    for builder in [
        Server::builder().development().outbound_queue(0),
        Server::builder()
            .development()
            .invite_timeout(Duration::from_secs(3600)),
        Server::builder()
            .development()
            .invite_timeout(Duration::ZERO),
        Server::builder()
            .development()
            .limits(jrtc::Limits::default().requests_per_second(0)),
        Server::builder()
            .development()
            .speakers(128, Duration::from_millis(500)),
        Server::builder()
            .development()
            .speakers(35, Duration::from_millis(50)),
    ] {
        match builder.start().await {
            Err(ServerError::InvalidOption { option, rule }) => {
                assert!(!option.is_empty() && !rule.is_empty())
            }
            other => panic!("expected InvalidOption, got {other:?}"),
        }
    }
    // The whole options struct is accepted by the builder too.
    let options = jrtc::ServerOptions::default();
    let started = Server::builder()
        .options(options)
        .development()
        .start()
        .await;
    started.expect("the defaults are valid").shutdown().await;
}

#[tokio::test]
async fn call_options_out_of_range_are_refused_before_connecting() {
    let server = server().await;
    for options in [
        CallOptions::default().event_capacity(0),
        CallOptions::default().keepalive(Duration::ZERO),
        CallOptions::default()
            .keepalive(Duration::from_secs(90))
            .idle_timeout(Duration::from_secs(60)),
    ] {
        let result = Call::connect_with(&server.url(), token(&server, "alice"), options).await;
        assert!(
            matches!(result, Err(CallError::InvalidParam { .. })),
            "{result:?}"
        );
    }
    assert_eq!(server.connection_count(), 0, "nothing was sent");
}
