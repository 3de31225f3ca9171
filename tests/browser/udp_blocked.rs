//! Members whose network blocks UDP get media anyway, through ICE over TCP on the server's one
//! TCP media port: a Rust member ("carol", publishing and receiving) and Chromium (receiving)
//! in a network namespace behind a veth whose iptables drop every UDP packet both ways. A Rust
//! member on the server's side ("alice") publishes and receives over UDP meanwhile, through the
//! server's UDP media port. Each side's statistics name the port and the protocol it used.

use jrtc::TrackSource;
use jrtc_testkit::media::speak;

use crate::shaped::{SERVER, in_netns, receiver_namespace, run};
use crate::support::{Browser, Member, in_namespace, packets, token};

/// Carol, in the namespace: joins through `url`, speaks, receives 100 packets of alice's
/// camera, and once `done` says alice heard her, returns her statistics.
async fn carol(
    url: String,
    token: String,
    done: tokio::sync::oneshot::Receiver<()>,
) -> jrtc::CallStatistics {
    let mut member = Member::join_at(&url, token, "r").await;
    let mic = member
        .call
        .publish_track(TrackSource::Microphone)
        .await
        .unwrap();
    let speaking = speak(mic, 30);
    let camera = member.remote("alice/camera").await;
    assert_eq!(packets(&camera, 100).await, 100);
    let _ = done.await;
    let statistics = member.call.statistics().await;
    speaking.abort();
    member.call.close().await;
    statistics
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_behind_a_udp_block_get_media_over_tcp() {
    if !in_namespace("udp_blocked::members_behind_a_udp_block_get_media_over_tcp") {
        return;
    }
    let netns = format!("jrtc-noudp-{}", std::process::id());
    receiver_namespace(&netns);
    for chain in ["INPUT", "OUTPUT"] {
        run(&format!(
            "ip netns exec {netns} iptables -A {chain} -p udp -j DROP"
        ));
    }
    let server = jrtc::Server::builder()
        .development()
        .bind("0.0.0.0:0")
        .media_addresses(format!("{SERVER}:0").parse().unwrap(), Vec::new())
        .media_tcp_bind(Some(format!("{SERVER}:0").parse().unwrap()))
        .start()
        .await
        .unwrap();
    let (udp, tcp) = (server.media_udp_addrs(), server.media_tcp_addr().unwrap());
    let port = server.http_url().rsplit(':').next().unwrap().to_owned();
    let remote = format!("{SERVER}:{port}");

    let mut alice = Member::join_at(&format!("ws://{remote}"), token(&server, "alice"), "r").await;
    let camera = alice.call.publish_track(TrackSource::Camera).await.unwrap();
    let filming = jrtc_testkit::media::film(camera);

    let (done_tx, done) = tokio::sync::oneshot::channel();
    let (url, carol_token) = (format!("ws://{remote}"), token(&server, "carol"));
    let carol = in_netns(&netns, move || carol(url, carol_token, done));
    let heard = alice.remote("carol/microphone").await;
    assert_eq!(packets(&heard, 100).await, 100, "alice hears carol");
    done_tx.send(()).unwrap();
    let statistics = tokio::task::spawn_blocking(move || carol.join().unwrap())
        .await
        .unwrap();
    assert_eq!(statistics.connections.len(), 2, "{statistics:?}");
    for connection in &statistics.connections {
        assert_eq!(
            connection.protocol.as_deref(),
            Some("tcp"),
            "{connection:?}"
        );
        assert_eq!(
            connection.remote_address,
            Some(tcp.to_string()),
            "{connection:?}"
        );
    }
    let alice_statistics = alice.call.statistics().await;
    for connection in &alice_statistics.connections {
        assert_eq!(
            connection.protocol.as_deref(),
            Some("udp"),
            "{connection:?}"
        );
        let address = connection.remote_address.as_deref().unwrap_or_default();
        assert!(
            udp.iter().any(|a| a.to_string() == address),
            "{connection:?} reaches none of {udp:?}"
        );
    }

    // Chromium behind the same block receives alice's camera over TCP.
    let browser = Browser::launch_in_netns(&netns).await;
    let page = browser.open_harness(&format!("http://{remote}")).await;
    browser
        .join_call_via(
            page,
            &format!("ws://{remote}"),
            &token(&server, "web"),
            "web",
            "r",
            false,
        )
        .await;
    let stats = browser
        .eval(
            page,
            "return await T.poll(async () => {
               const s = await T.calls.web.statistics();
               const t = s.received.find((t) => t.publication === 'alice/camera');
               return t && t.packets >= 100 ? { ok: true, s } : { s };
             });",
        )
        .await;
    let connection = stats["s"]["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["connection"] == "subscribe")
        .unwrap_or_else(|| panic!("no subscribe connection: {stats}"))
        .clone();
    assert_eq!(connection["protocol"], "tcp", "{connection}");
    assert_eq!(
        connection["remote_address"],
        tcp.to_string(),
        "{connection}"
    );

    filming.abort();
    browser.quit().await;
    alice.call.close().await;
    run(&format!("ip netns del {netns}"));
}
