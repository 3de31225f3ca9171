//! Net status, as every member sees it: a Rust member ("carol") publishing a microphone and a
//! camera from a network namespace of her own, behind a veth, while iptables in her namespace
//! drops 10 % of her UDP both ways (this kernel has no netem; the drop is the same loss), then
//! none; then everything (a black hole), then nothing again. A Rust member and a Chromium one
//! on the server's side, and carol herself, see her go from very good to bad or worse and back
//! to good or better, without flapping, and disconnected and back.

use std::time::{Duration, Instant};

use jrtc::{CallEvent, NetStatus, ParticipantEvent, TrackSource};
use tokio::sync::watch;

use crate::shaped::{SERVER, in_netns, receiver_namespace, run, veth_server};
use crate::support::{Browser, Member, in_namespace, token};

/// Carol: joins through `url`, publishes a speaking microphone and a camera (100 packets a
/// second), and tells `own` her own net status as she sees it until nobody listens.
async fn carol(url: String, token: String, own: watch::Sender<NetStatus>) {
    let mut member = Member::join_at(&url, token, "r").await;
    let mic = member
        .call
        .publish_track(TrackSource::Microphone)
        .await
        .unwrap();
    let speaking = jrtc_testkit::media::speak(mic, 30);
    let camera = member
        .call
        .publish_track(TrackSource::Camera)
        .await
        .unwrap();
    let filming = jrtc_testkit::media::film(camera);
    loop {
        tokio::select! {
            () = own.closed() => break,
            event = futures::StreamExt::next(&mut member.events) => {
                if let Some(CallEvent::Participant(ParticipantEvent::Updated { participant, changes, .. })) = event
                    && changes.net
                    && participant.user_id.as_str() == "carol"
                {
                    own.send_replace(participant.net);
                }
            }
        }
    }
    speaking.abort();
    filming.abort();
    member.call.close().await;
}

/// Waits until `watcher` sees carol's net status satisfy `condition` (each change within
/// `Member::until`'s wait); every status it saw her change to on the way is added to `seen`.
async fn carol_until(
    watcher: &mut Member,
    seen: &mut Vec<NetStatus>,
    condition: impl Fn(NetStatus) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let net = watcher
            .until(|e| match e {
                CallEvent::Participant(ParticipantEvent::Updated {
                    participant,
                    changes,
                    ..
                }) if changes.net && participant.user_id.as_str() == "carol" => {
                    Some(participant.net)
                }
                _ => None,
            })
            .await;
        seen.push(net);
        if condition(net) {
            return start.elapsed();
        }
    }
}

/// Waits until the Chromium member has seen an update of carol's net status to one of
/// `statuses` (after `after` such updates).
async fn browser_sees(browser: &Browser, page: crate::support::Page, statuses: &str, after: usize) {
    browser
        .eval(
            page,
            &format!(
                "await T.poll(async () => {{
                   const nets = T.find('web', (e) => e.type === 'participant' && e.kind === 'updated'
                     && e.changes.net && e.participant.user_id === 'carol').map((e) => e.participant.net ?? 'very_good');
                   return nets.slice({after}).some((n) => {statuses}.includes(n)) ? {{ ok: true }} : {{ nets }};
                 }});"
            ),
        )
        .await;
}

/// Drops a share of carol's UDP both ways (`-A` adds the rules, `-D` deletes them).
fn lossy(netns: &str, verb: &str, probability: &str) {
    for chain in ["INPUT", "OUTPUT"] {
        run(&format!(
            "ip netns exec {netns} iptables {verb} {chain} -p udp -m statistic --mode random \
             --probability {probability} -j DROP"
        ));
    }
}

/// Drops everything of carol's both ways (`-A`), or stops (`-D`).
fn black_hole(netns: &str, verb: &str) {
    for chain in ["INPUT", "OUTPUT"] {
        run(&format!(
            "ip netns exec {netns} iptables {verb} {chain} -j DROP"
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lossy_member_is_bad_everywhere_then_good_and_a_black_holed_one_disconnected() {
    if !in_namespace(
        "net_status::a_lossy_member_is_bad_everywhere_then_good_and_a_black_holed_one_disconnected",
    ) {
        return;
    }
    let netns = format!("jrtc-lossy-{}", std::process::id());
    receiver_namespace(&netns);
    let (server, port) = veth_server().await;
    let local = format!("127.0.0.1:{port}");
    let mut watcher =
        Member::join_at(&format!("ws://{local}"), token(&server, "watcher"), "r").await;
    let browser = Browser::launch().await;
    let page = browser.open_harness(&format!("http://{local}")).await;
    browser
        .join_call_via(
            page,
            &format!("ws://{local}"),
            &token(&server, "web"),
            "web",
            "r",
            false,
        )
        .await;
    // The call page too, as a person would see the call.
    let app = crate::page::join_page(&browser, &format!("http://{local}/?room=r"), "Viewer").await;
    let (own_tx, mut own) = watch::channel(NetStatus::VeryGood);
    let carol_url = format!("ws://{SERVER}:{port}");
    let carol_token = token(&server, "carol");
    let carol = in_netns(&netns, move || carol(carol_url, carol_token, own_tx));
    // Her media flows before the link goes bad.
    watcher
        .until(|e| match e {
            CallEvent::Media(jrtc::MediaEvent::Subscribed { publication })
                if publication.id == "carol/camera" =>
            {
                Some(())
            }
            _ => None,
        })
        .await;

    let mut seen = Vec::new();
    lossy(&netns, "-A", "0.1");
    let took_down = carol_until(&mut watcher, &mut seen, |n| n <= NetStatus::Bad).await;
    browser_sees(&browser, page, "['bad', 'very_bad']", 0).await;
    // The call page shows it: two bars or fewer on carol's tile, the speaking ring (her
    // microphone is loud), four or five bars on the others'.
    browser
        .wait_for(
            app,
            "['bad', 'very_bad'].includes(document.querySelector('.tile[data-user=\"carol\"] .bars')?.dataset.net)
             && document.querySelector('.tile[data-user=\"carol\"]').classList.contains('speaking')
             && ['good', 'very_good'].includes(document.querySelector('.tile[data-user=\"watcher\"] .bars').dataset.net)",
        )
        .await;
    if let Ok(dir) = std::env::var("JRTC_SCREENSHOTS") {
        let path = std::path::Path::new(&dir).join("call-page-net-status.png");
        browser
            .eval(app, "document.querySelector('#toasts').replaceChildren();")
            .await;
        browser.screenshot(app, &path, 1280, 800).await;
    }
    tokio::time::timeout(
        Duration::from_secs(20),
        own.wait_for(|n| *n <= NetStatus::Bad),
    )
    .await
    .expect("carol sees her own link go bad")
    .unwrap();
    let bad_updates = seen.len();

    lossy(&netns, "-D", "0.1");
    let took_up = carol_until(&mut watcher, &mut seen, |n| n >= NetStatus::Good).await;
    browser_sees(&browser, page, "['good', 'very_good']", bad_updates).await;
    eprintln!("net status: bad in {took_down:?}, good again in {took_up:?}, went {seen:?}");
    // No flapping: down in a step or two (perhaps a level further meanwhile), back up in a
    // step or two.
    assert!(seen.len() <= 5, "it flapped: {seen:?}");
    // The others' links were fine all along: what carol's link lost before the server is not
    // theirs (the numbers their legs never carried are taken out of their reported loss), so
    // none of them goes bad. (A loaded machine may dip a bandwidth estimate below what the
    // sizes asked need, which reads as `good` at most; and a resend of carol's that fills a
    // gap after a receiver's report counted it lost is, when the server reads that report, a
    // number its leg did carry: on a loaded machine that reads as a few percent of the
    // receiver's own loss, `normal` for a step (docs/architecture.md, "Open work on media").
    // Both allowed.)
    let others = browser
        .eval(
            page,
            "return T.find('web', (e) => e.type === 'participant' && e.kind === 'updated'
               && e.changes.net && e.participant.user_id !== 'carol'
               && !['normal', 'good', 'very_good', undefined].includes(e.participant.net))
               .map((e) => [e.participant.user_id, e.participant.net]);",
        )
        .await;
    assert_eq!(
        others,
        serde_json::json!([]),
        "the others' links went bad with carol's"
    );

    black_hole(&netns, "-A");
    let took_dark = carol_until(&mut watcher, &mut seen, |n| n == NetStatus::Disconnected).await;
    browser_sees(&browser, page, "['disconnected']", 0).await;
    black_hole(&netns, "-D");
    let took_back = carol_until(&mut watcher, &mut seen, |n| n >= NetStatus::Good).await;
    eprintln!("net status: disconnected in {took_dark:?}, back in {took_back:?}, went {seen:?}");

    drop(own);
    carol.join().unwrap();
    browser.quit().await;
    run(&format!("ip netns del {netns}"));
}
