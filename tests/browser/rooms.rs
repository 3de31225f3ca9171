//! Rooms with browsers in them: two browsers and a Rust client all see and receive each other,
//! and a browser's call ends cleanly when a host removes it or ends the call.

use jrtc::CallEvent;
use serde_json::{Value, json};

use crate::media::publish_fixture;
use crate::support::{Browser, Member, Page, in_namespace, server, token, vp8_frames};

/// Waits until `name` in `page` has decoded at least `frames` frames of each publication.
async fn decodes(browser: &Browser, page: Page, name: &str, publications: &[&str], frames: u32) {
    let code = format!(
        "return await T.poll(async () => {{
           const got = {{}};
           for (const id of {ids}) {{
             const v = (await T.inbound({name}, id)).find((s) => s.kind === 'video');
             got[id] = v ? v.framesDecoded : 0;
           }}
           return {{ ok: Object.values(got).every((n) => n >= {frames}), got }};
         }});",
        ids = json!(publications),
        name = json!(name),
    );
    let got = browser.eval(page, &code).await;
    assert_eq!(got["ok"], json!(true), "{got}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_and_a_rust_client_see_and_receive_each_other() {
    if !in_namespace("rooms::two_browsers_and_a_rust_client_see_and_receive_each_other") {
        return;
    }
    let server = server().await;
    let mut rust = Member::join(&server, "rust", "trio").await;
    let (sending, _) = publish_fixture(&rust, false).await;

    let browser = Browser::launch().await;
    let amy = browser.open_harness(&server.http_url()).await;
    let bea = browser.open_harness(&server.http_url()).await;
    browser.join_call(amy, &server, "amy", "trio", true).await;
    browser.join_call(bea, &server, "bea", "trio", true).await;

    // Everyone sees everyone…
    for (page, name) in [(amy, "amy"), (bea, "bea")] {
        let code = format!(
            "return await T.poll(async () => {{
               const ids = T.calls[{name}].room().participants.map((p) => p.user_id).sort();
               return {{ ok: ids.length === 3, ids }};
             }});",
            name = json!(name)
        );
        assert_eq!(
            browser.eval(page, &code).await["ids"],
            json!(["amy", "bea", "rust"])
        );
    }
    let mut roster: Vec<String> = rust
        .call
        .room()
        .unwrap()
        .participants
        .iter()
        .map(|p| p.user_id.to_string())
        .collect();
    roster.sort();
    assert_eq!(roster, ["amy", "bea", "rust"]);

    // … and receives everyone else's video.
    decodes(&browser, amy, "amy", &["bea/camera", "rust/camera"], 20).await;
    decodes(&browser, bea, "bea", &["amy/camera", "rust/camera"], 20).await;
    for id in ["amy/camera", "bea/camera"] {
        let track = rust.remote(id).await;
        assert!(vp8_frames(&track, 20).await >= 20, "{id}");
    }
    let audio = browser
        .eval(
            amy,
            "return await T.poll(async () => {
               const a = (await T.inbound('amy', 'bea/microphone')).find((s) => s.kind === 'audio');
               return { ok: a && a.packets >= 20, a };
             });",
        )
        .await;
    assert_eq!(audio["ok"], json!(true), "{audio}");

    sending.abort();
    browser.quit().await;
}

/// The kinds of `name`'s events from index `from` on.
async fn kinds(browser: &Browser, page: Page, name: &str) -> Vec<Value> {
    let code = format!(
        "return T.find({name}, () => true).map((e) => [e.type, e.kind ?? e.reason ?? null]);",
        name = json!(name)
    );
    browser.eval(page, &code).await.as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_call_ends_cleanly_when_kicked_and_when_the_call_ends() {
    if !in_namespace("rooms::a_browser_call_ends_cleanly_when_kicked_and_when_the_call_ends") {
        return;
    }
    let server = server().await;
    let host = Member::join(&server, "host", "k").await;
    let browser = Browser::launch().await;
    let page = browser.open_harness(&server.http_url()).await;
    browser.join_call(page, &server, "web", "k", true).await;

    // Unpublishing stops the camera the call captured.
    let got = browser
        .eval(
            page,
            "const call = T.calls.web;
             const camera = call.localTrack('camera');
             await T.until('web', (e) => e.type === 'media' && e.kind === 'published' && e.publication.id === 'web/camera');
             await call.outcome(call.unpublish('camera'));
             return [camera.readyState, call.localTrack('camera')];",
        )
        .await;
    assert_eq!(got, json!(["ended", null]));

    let op = host.call.kick("web").await.unwrap();
    host.call.outcome(op).await.unwrap();
    let got = browser
        .eval(
            page,
            "const left = await T.until('web', (e) => e.type === 'left');
             const call = T.calls.web;
             const pcs = call.peerConnections();
             return [left.reason, call.room(), pcs.publish, pcs.subscribe, call.remotes().length, call.localTrack('camera')];",
        )
        .await;
    assert_eq!(got, json!(["kicked", null, null, null, 0, null]));

    // Back in, with media again; then the host ends the call.
    browser
        .eval(
            page,
            "const call = T.calls.web;
             T.logs.web.length = 0;
             await call.outcome(call.join('k'));
             await call.outcome(call.publishCamera());",
        )
        .await;
    let op = host.call.end().await.unwrap();
    host.call.outcome(op).await.unwrap();
    let got = browser
        .eval(
            page,
            "const left = await T.until('web', (e) => e.type === 'left');
             const call = T.calls.web;
             return [left.reason, left.by, call.room(), call.peerConnections().publish];",
        )
        .await;
    assert_eq!(got, json!(["over", "host", null, null]));

    // Closing the call ends every stream with `closed`, and nothing comes after it.
    let got = browser
        .eval(
            page,
            "const call = T.calls.web;
             const media = call.media();
             call.close();
             const seen = [];
             for await (const ev of media) seen.push(ev.type);
             await new Promise((r) => setTimeout(r, 300));
             const last = T.logs.web[T.logs.web.length - 1];
             return [seen, last.type, last.reason, call.state];",
        )
        .await;
    assert_eq!(got, json!([["closed"], "closed", "quit", "closed"]));
    let kinds = kinds(&browser, page, "web").await;
    assert_eq!(
        kinds.iter().filter(|k| k[0] == "closed").count(),
        1,
        "{kinds:?}"
    );
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_in_a_call_accepts_an_invitation_to_another() {
    if !in_namespace("rooms::a_browser_in_a_call_accepts_an_invitation_to_another") {
        return;
    }
    let server = server().await;
    let mut rust = Member::join(&server, "rust", "elsewhere").await;
    let browser = Browser::launch().await;
    let page = browser.open_harness(&server.http_url()).await;
    browser.join_call(page, &server, "web", "first", true).await;

    let op = rust
        .call
        .invite(&["web"], Default::default())
        .await
        .unwrap();
    rust.call.outcome(op).await.unwrap();
    let got = browser
        .eval(
            page,
            "const call = T.calls.web;
             const inv = await T.until('web', (e) => e.type === 'invite' && e.kind === 'received');
             const camera = call.localTrack('camera');
             const start = T.logs.web.length;
             const room = await call.outcome(call.acceptInvite(inv.invitation.id));
             // The log's reader takes the events in turn: up to the acceptance's own.
             await T.until('web', (e) => e.type === 'invite' && e.kind === 'accept_result');
             // (Dynacast's layers_wanted may come at any time after the camera's publish.)
             // Events of the first call (a net status, a statistic) may come before it is left.
             const after = T.find('web', () => true).slice(start - T.logs.web.length)
               .filter((e) => !(e.type === 'media' && e.kind === 'layers_wanted'));
             const left = after.findIndex((e) => e.type === 'left');
             const seen = after.slice(left === -1 ? 0 : left)
               .map((e) => [e.type, e.room ?? e.snapshot?.room ?? e.kind]);
             return { room: room.room, seen, camera: camera.readyState, pcs: call.peerConnections() };",
        )
        .await;
    assert_eq!(got["room"], json!("elsewhere"), "{got}");
    // The first call is left (its media with it) before the second is joined.
    assert_eq!(
        got["seen"],
        json!([
            ["left", "first"],
            ["joined", "elsewhere"],
            ["invite", "accept_result"]
        ]),
        "{got}"
    );
    assert_eq!(got["camera"], json!("ended"));
    assert_eq!(got["pcs"], json!({"publish": null, "subscribe": null}));
    // Media works in the new call.
    browser
        .eval(
            page,
            "await T.calls.web.outcome(T.calls.web.publishCamera());",
        )
        .await;
    let video = rust.remote("web/camera").await;
    assert!(vp8_frames(&video, 20).await >= 20);
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_host_invites_sets_properties_bans_and_ends_the_call() {
    if !in_namespace("rooms::a_browser_host_invites_sets_properties_bans_and_ends_the_call") {
        return;
    }
    let server = server().await;
    let browser = Browser::launch().await;
    let page = browser.open_harness(&server.http_url()).await;
    browser
        .join_call(page, &server, "web", "hosted", false)
        .await;
    let role = browser
        .eval(page, "return T.calls.web.room().participants[0].role;")
        .await;
    assert_eq!(role, json!("host"));

    // The browser invites a Rust user who is in no call; it accepts.
    let guest = jrtc::Call::connect(&server.url(), token(&server, "guest"))
        .await
        .unwrap();
    let mut guest_events = guest.events();
    let report = browser
        .eval(
            page,
            "const call = T.calls.web;
             return await call.outcome(call.invite(['guest'], { extra: 'come in', video: true }));",
        )
        .await;
    assert_eq!(
        report["invitations"][0]["callee"],
        json!("guest"),
        "{report}"
    );
    let invitation = crate::support::next_matching(&mut guest_events, |ev| match ev {
        CallEvent::Invite(jrtc::InviteEvent::Received(invitation)) => Some(invitation.clone()),
        _ => None,
    })
    .await;
    assert_eq!(invitation.extra.as_str(), "come in");
    let op = guest.accept_invite(invitation.id, false).await.unwrap();
    guest.outcome(op).await.unwrap();
    browser
        .eval(
            page,
            "await T.until('web', (e) => e.type === 'invite' && e.kind === 'accepted');
             await T.until('web', (e) => e.type === 'participant' && e.kind === 'joined' && e.participant.user_id === 'guest');",
        )
        .await;

    // Call properties set by the browser reach the guest.
    browser
        .eval(
            page,
            "const call = T.calls.web;
             await call.outcome(call.setProperties({ custom: { topic: 'launch' } }));",
        )
        .await;
    let topic = crate::support::next_matching(&mut guest_events, |ev| match ev {
        CallEvent::Property(jrtc::PropertyEvent::Changed { properties, .. }) => {
            properties.custom.get("topic").map(|t| t.to_string())
        }
        _ => None,
    })
    .await;
    assert_eq!(topic, "launch");

    // Kicked with a ban: the guest is out and cannot come back until unbanned.
    browser
        .eval(
            page,
            "const call = T.calls.web;
             await call.outcome(call.kick('guest', true));",
        )
        .await;
    let reason = crate::support::next_matching(&mut guest_events, |ev| match ev {
        CallEvent::Left { reason, .. } => Some(*reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, jrtc::Reason::Kicked);
    let op = guest.join("hosted", Default::default()).await.unwrap();
    assert!(guest.outcome(op).await.is_err(), "a banned user is refused");
    let bans = browser
        .eval(
            page,
            "const call = T.calls.web;
             const bans = await call.outcome(call.listBans());
             await call.outcome(call.unban('guest'));
             return bans.map((b) => b.user_id);",
        )
        .await;
    assert_eq!(bans, json!(["guest"]));
    let op = guest.join("hosted", Default::default()).await.unwrap();
    guest.outcome(op).await.unwrap();

    // The browser ends the call: both are out.
    let got = browser
        .eval(
            page,
            "const call = T.calls.web;
             await call.outcome(call.end());
             const left = await T.until('web', (e) => e.type === 'left');
             return [left.reason, call.room()];",
        )
        .await;
    assert_eq!(got, json!(["over", null]));
    let reason = crate::support::next_matching(&mut guest_events, |ev| match ev {
        CallEvent::Left { reason, .. } => Some(*reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, jrtc::Reason::Over);
    browser.quit().await;
}
