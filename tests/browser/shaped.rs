//! A receiver behind a really throttled link: Chromium runs in a network namespace of its own,
//! reaching the server over a veth whose server end `tc` limits (a token bucket: 2.5 Mbit/s,
//! then 300 kbit/s, then 2.5 Mbit/s again). A Chromium publisher sends its 1280×720 camera
//! with three simulcast layers. The SFU's bandwidth estimate for the receiver (GCC over its
//! transport-wide feedback) falls with the link, the allocator steps the receiver down to a
//! layer that fits, its video keeps decoding and its audio keeps coming, and it steps back up
//! once the link recovers, without flapping. The same for a Rust receiver, whose sockets are
//! made in that namespace (a thread of its own entered into it, running its own runtime).

use std::collections::BTreeSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;

use crate::simulcast::camera_720p;
use crate::support::{Browser, Member, Page, in_namespace, token, vp8_key_frame_size};

/// The server's end of the veth (the receiver's is .2).
pub(crate) const SERVER: &str = "10.78.0.1";

pub(crate) fn run(command: &str) {
    let status = Command::new("sh").args(["-c", command]).status().unwrap();
    assert!(status.success(), "{command}");
}

/// A namespace `name` for the receiver, behind a veth from this one.
pub(crate) fn receiver_namespace(name: &str) {
    run(&format!(
        "ip netns add {name} && ip link add jv0 type veth peer name jv1 && \
         ip link set jv1 netns {name} && ip addr add {SERVER}/24 dev jv0 && ip link set jv0 up && \
         ip netns exec {name} sh -c 'ip link set lo up && ip addr add 10.78.0.2/24 dev jv1 && \
         ip link set jv1 up && ip route add default via {SERVER}'"
    ));
}

/// A development server for a namespace behind the veth: signaling on every address (pages
/// that open a camera or microphone come from 127.0.0.1, a secure origin; the namespace's
/// members from the veth), media on the veth. The server and its port.
pub(crate) async fn veth_server() -> (jrtc::ServerHandle, String) {
    let server = jrtc::Server::builder()
        .development()
        .bind("0.0.0.0:0")
        .media_addresses(format!("{SERVER}:0").parse().unwrap(), Vec::new())
        .start()
        .await
        .unwrap();
    let port = server.http_url().rsplit(':').next().unwrap().to_owned();
    (server, port)
}

/// Limits what goes from the server to the receiver to `rate` (a token bucket on the server's
/// end of the veth; `add` the first time, `change` after).
fn shape(verb: &str, rate: &str) {
    run(&format!(
        "tc qdisc {verb} dev jv0 root tbf rate {rate} burst 32kb latency 400ms"
    ));
}

/// The receiver's inbound video and audio of the publisher, from its `getStats`.
async fn inbound(browser: &Browser, page: Page) -> Value {
    browser
        .eval(
            page,
            "const pc = T.calls.viewer.peerConnections().subscribe;
             if (!pc) return {};
             const camera = T.calls.viewer.remote('web/camera')?.track?.id;
             const mic = T.calls.viewer.remote('web/microphone')?.track?.id;
             const out = {};
             for (const s of (await pc.getStats()).values()) {
               if (s.type !== 'inbound-rtp') continue;
               if (s.trackIdentifier === camera) out.video = { width: s.frameWidth ?? 0, decoded: s.framesDecoded ?? 0, freezes: s.freezeCount ?? 0, frozen: s.totalFreezesDuration ?? 0 };
               if (s.trackIdentifier === mic) out.audio = { packets: s.packetsReceived ?? 0, lost: s.packetsLost ?? 0 };
             }
             return out;",
        )
        .await
}

/// Plays the receiver's copy of the camera in a hidden video element and records each frame it
/// presents (`requestVideoFrameCallback`): how many, and the width each time it changed.
const WATCH_FRAMES: &str = "
    await T.until('viewer', (e) => e.type === 'media' && e.kind === 'subscribed' && e.publication.id === 'web/camera', 60000);
    const video = document.createElement('video');
    video.muted = true;
    video.srcObject = new MediaStream([T.calls.viewer.remote('web/camera').track]);
    document.body.append(video);
    await video.play();
    window.seen = { frames: 0, width: 0, widths: [], waiters: [] };
    const onFrame = (now, meta) => {
      seen.frames += 1;
      if (meta.width !== seen.width) { seen.width = meta.width; seen.widths.push(meta.width); }
      seen.waiters = seen.waiters.filter((w) => !w());
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);";

/// Waits for the first frame the receiver presents for which `condition` (JavaScript over
/// `seen`: `frames`, `width`) holds, up to `limit`; how long that took.
async fn frame_where(browser: &Browser, page: Page, condition: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    let ms = limit.as_millis();
    browser
        .eval(
            page,
            &format!(
                "return await new Promise((resolve, reject) => {{
                   const deadline = setTimeout(() => reject(new Error('not within {ms} ms: ' + JSON.stringify(seen))), {ms});
                   const check = () => {{
                     if (!({condition})) return false;
                     clearTimeout(deadline);
                     resolve(seen.frames);
                     return true;
                   }};
                   if (!check()) seen.waiters.push(check);
                 }});"
            ),
        )
        .await;
    start.elapsed()
}

/// A server whose media is on the veth, a Chromium publisher (the 1280×720 camera with three
/// layers, and its microphone) from 127.0.0.1, and the receiver's namespace behind the link,
/// shaped to 2.5 Mbit/s.
struct Stage {
    netns: String,
    server: jrtc::ServerHandle,
    /// The server's address on the veth, with its port.
    remote: String,
    publisher: Browser,
}

impl Stage {
    async fn new(name: &str) -> Stage {
        let netns = format!("{name}-{}", std::process::id());
        receiver_namespace(&netns);
        shape("add", "2500kbit");
        let (server, port) = veth_server().await;
        let local = format!("127.0.0.1:{port}");
        let publisher = Browser::launch_with_camera(&camera_720p()).await;
        let page = publisher.open_harness(&format!("http://{local}")).await;
        publisher
            .join_call_via(
                page,
                &format!("ws://{local}"),
                &token(&server, "web"),
                "web",
                "r",
                false,
            )
            .await;
        publisher
            .eval(
                page,
                "await T.calls.web.outcome(T.calls.web.publishCamera({ width: 1280, height: 720 }));
                 await T.calls.web.outcome(T.calls.web.publishMicrophone());",
            )
            .await;
        Stage {
            netns,
            server,
            remote: format!("{SERVER}:{port}"),
            publisher,
        }
    }

    async fn end(self) {
        self.publisher.quit().await;
        run(&format!("ip netns del {}", self.netns));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_receiver_steps_down_keeps_decoding_and_comes_back() {
    if !in_namespace("shaped::a_throttled_receiver_steps_down_keeps_decoding_and_comes_back") {
        return;
    }
    let stage = Stage::new("jrtc-slow").await;
    let (netns, server, remote) = (&stage.netns, &stage.server, &stage.remote);
    let browser = Browser::launch_in_netns(netns).await;
    let page = browser.open_harness(&format!("http://{remote}")).await;
    browser
        .join_call_via(
            page,
            &format!("ws://{remote}"),
            &token(server, "viewer"),
            "viewer",
            "r",
            false,
        )
        .await;
    browser.eval(page, WATCH_FRAMES).await;
    // 2.5 Mbit/s: the full size.
    frame_where(
        &browser,
        page,
        "seen.width === 1280",
        Duration::from_secs(60),
    )
    .await;
    let before = inbound(&browser, page).await;
    let changes_before = browser.eval(page, "return seen.widths.length;").await;

    // 300 kbit/s: stepped down to the smallest layer; video and audio go on meanwhile.
    shape("change", "300kbit");
    let took_down = frame_where(
        &browser,
        page,
        "seen.width > 0 && seen.width <= 320",
        Duration::from_secs(30),
    )
    .await;
    let low = inbound(&browser, page).await;
    // 150 more frames (at least 5 s, at 30 frames a second at most): video and audio went on
    // meanwhile (the audio's 50 packets a second would be 250 or more; 150 is asked).
    // (It may have tried a larger layer meanwhile: a step up is a probe, see allocator.rs.)
    let low_frames = browser.eval(page, "return seen.frames;").await;
    frame_where(
        &browser,
        page,
        &format!("seen.frames >= {low_frames} + 150"),
        Duration::from_secs(30),
    )
    .await;
    let still_low = inbound(&browser, page).await;
    assert!(
        still_low["video"]["decoded"].as_u64() > low["video"]["decoded"].as_u64(),
        "video stopped decoding: {low} then {still_low}"
    );
    assert!(
        still_low["audio"]["packets"].as_u64().unwrap()
            >= low["audio"]["packets"].as_u64().unwrap() + 150,
        "audio starved: {low} then {still_low}"
    );

    // 2.5 Mbit/s again: back to the full size.
    shape("change", "2500kbit");
    let took_up = frame_where(
        &browser,
        page,
        "seen.width === 1280",
        Duration::from_secs(90),
    )
    .await;
    let after = inbound(&browser, page).await;
    // No flapping: the width moved down and up a few times at most.
    let widths = browser.eval(page, "return seen.widths;").await;
    let changes = widths.as_array().unwrap().len() as u64 - changes_before.as_u64().unwrap();
    assert!(changes <= 6, "the width flapped: {widths}");
    let frozen = after["video"]["frozen"].as_f64().unwrap_or(0.0)
        - before["video"]["frozen"].as_f64().unwrap_or(0.0);
    eprintln!(
        "shaped link: down in {took_down:?}, up in {took_up:?}, widths {widths}, \
         freezes {} -> {} ({frozen:.1} s frozen)",
        before["video"]["freezes"], after["video"]["freezes"]
    );
    // Measured 13–17 s over the whole low period with its probes (docs/benchmarks.md); the
    // same link without simulcast decodes 14 frames in 30 s.
    assert!(
        frozen < 30.0,
        "frozen for {frozen} s: {before} then {after}"
    );
    browser.quit().await;
    stage.end().await;
}

/// Runs `task` on a thread of its own entered into network namespace `netns` (`ip netns`),
/// on a runtime of its own: every socket it makes (signaling and media) is in the namespace.
pub(crate) fn in_netns<F, T>(
    netns: &str,
    task: impl FnOnce() -> F + Send + 'static,
) -> std::thread::JoinHandle<T>
where
    F: Future<Output = T>,
    T: Send + 'static,
{
    let path = format!("/run/netns/{netns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: setns on a descriptor this thread owns; it moves this thread alone.
        let entered =
            unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) };
        assert_eq!(
            entered,
            0,
            "setns {path}: {}",
            std::io::Error::last_os_error()
        );
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(task())
    })
}

/// What the Rust receiver got so far.
#[derive(Clone, Debug, Default)]
struct Received {
    /// The size of the last video key frame (its width), and each width it changed to.
    width: u16,
    widths: Vec<u16>,
    /// Video frames complete since their key frame (every packet from it on arrived, if late
    /// then as a retransmission): what a decoder would show.
    frames: u64,
    /// Key frames asked for (as a decoder does when a packet stays missing).
    asked: u64,
    /// Audio packets.
    audio: u64,
}

/// A packet missing this long (its retransmission did not come) breaks the picture until the
/// next key frame, which the receiver then asks for, as a decoder does.
const GIVE_UP_ON_MISSING: Duration = Duration::from_millis(500);

/// The Rust receiver: joins through `url`, then reads the publisher's camera and microphone
/// into `seen` until nobody watches any more. It does what a decoder would: counts the frames
/// it could show, and asks for a key frame when a packet stays missing.
async fn receive(url: String, token: String, seen: watch::Sender<Received>) {
    let mut member = Member::join_at(&url, token, "r").await;
    let video = member.remote("web/camera").await;
    let audio = member.remote("web/microphone").await;
    // The sequence numbers missing since the last key frame, and the highest seen.
    let mut missing = BTreeSet::new();
    let mut highest: Option<u16> = None;
    // Since when something is missing, and when a key frame was last asked for.
    let mut missing_since: Option<Instant> = None;
    let mut asked_at: Option<Instant> = None;
    loop {
        tokio::select! {
            () = seen.closed() => break,
            packet = audio.next_packet() => {
                packet.expect("the microphone is live");
                seen.send_modify(|r| r.audio += 1);
            }
            packet = video.next_packet() => {
                let packet = packet.expect("the camera is live");
                let seq = packet.header.sequence_number;
                // A late packet (a retransmission) only fills a gap: an old key frame's resend
                // is no new picture.
                let late = highest.is_some_and(|h| seq.wrapping_sub(h) >= 0x8000);
                let key = vp8_key_frame_size(&packet.payload).filter(|_| !late);
                if key.is_some() {
                    missing.clear();
                }
                match highest {
                    Some(h) if !late => {
                        if key.is_none() {
                            missing.extend((1..seq.wrapping_sub(h)).map(|d| h.wrapping_add(d)));
                        }
                        highest = Some(seq);
                    }
                    Some(_) => {
                        missing.remove(&seq);
                    }
                    None => highest = Some(seq),
                }
                let now = Instant::now();
                if missing.is_empty() {
                    missing_since = None;
                } else if missing_since.is_none() {
                    missing_since = Some(now);
                }
                let give_up = missing_since.is_some_and(|t| now - t >= GIVE_UP_ON_MISSING)
                    && asked_at.is_none_or(|t| now - t >= Duration::from_secs(1));
                if give_up {
                    asked_at = Some(now);
                    let _ = video.request_keyframe().await;
                }
                seen.send_modify(|r| {
                    r.asked += u64::from(give_up);
                    if let Some((width, _)) = key
                        && width != r.width
                    {
                        r.width = width;
                        r.widths.push(width);
                    }
                    if packet.header.marker && missing.is_empty() && r.width > 0 {
                        r.frames += 1;
                    }
                });
            }
        }
    }
    member.call.close().await;
}

/// Waits until what the Rust receiver got satisfies `condition`, up to `limit`; how long it
/// took.
async fn received_where(
    seen: &mut watch::Receiver<Received>,
    limit: Duration,
    condition: impl FnMut(&Received) -> bool,
) -> Duration {
    let start = Instant::now();
    let met = tokio::time::timeout(limit, seen.wait_for(condition))
        .await
        .is_ok();
    assert!(met, "not within {limit:?}: {:?}", *seen.borrow());
    start.elapsed()
}

/// The link's steps as a receiver reporting to `seen` goes through them: the full size at
/// 2.5 Mbit/s; at 300 kbit/s the smallest layer, whose frames (60 more) keep coming with the
/// audio (150 more packets); back to the full size at 2.5 Mbit/s, without flapping. The step
/// down is given `down_within` (a receiver's own REMB estimate comes down more slowly than
/// the server's: measured 15–26 s against 5–9 s).
async fn down_and_up(seen: &mut watch::Receiver<Received>, receiver: &str, down_within: Duration) {
    received_where(seen, Duration::from_secs(60), |r| r.width == 1280).await;
    let changes_before = seen.borrow().widths.len();

    shape("change", "300kbit");
    let took_down = received_where(seen, down_within, |r| r.width > 0 && r.width <= 320).await;
    let low = seen.borrow().clone();
    received_where(seen, Duration::from_secs(30), |r| {
        r.frames >= low.frames + 60 && r.audio >= low.audio + 150
    })
    .await;

    shape("change", "2500kbit");
    let took_up = received_where(seen, Duration::from_secs(90), |r| r.width == 1280).await;
    let end = seen.borrow().clone();
    let changes = end.widths.len() - changes_before;
    eprintln!(
        "shaped link, {receiver} receiver: down in {took_down:?}, up in {took_up:?}, \
         widths {:?}, {} frames, {} key frames asked for",
        end.widths, end.frames, end.asked
    );
    assert!(changes <= 6, "the width flapped: {:?}", end.widths);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_rust_receiver_steps_down_keeps_receiving_and_comes_back() {
    if !in_namespace("shaped::a_throttled_rust_receiver_steps_down_keeps_receiving_and_comes_back")
    {
        return;
    }
    let stage = Stage::new("jrtc-slow-rust").await;
    let url = format!("ws://{}", stage.remote);
    let token = token(&stage.server, "rust");
    let (sender, mut seen) = watch::channel(Received::default());
    let receiver = in_netns(&stage.netns, move || receive(url, token, sender));

    down_and_up(&mut seen, "Rust", Duration::from_secs(30)).await;
    drop(seen);
    receiver.join().unwrap();
    stage.end().await;
}

/// The aiortc virtual environment's Python (`scripts/test` makes it in the target directory).
fn aiortc_python() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("../aiortc-venv/bin/python")
}

/// The same link for a receiver that only sends REMB: aiortc (`tests/aiortc/receiver.py`, run
/// in the namespace) estimates its bandwidth from the send times the server stamps and reports
/// it; the server steps it down and back up on that estimate alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_remb_receiver_steps_down_and_comes_back() {
    if !in_namespace("shaped::a_throttled_remb_receiver_steps_down_and_comes_back") {
        return;
    }
    let python = aiortc_python();
    assert!(
        python.is_file(),
        "this test needs aiortc at {} (scripts/test installs it)",
        python.display()
    );
    let stage = Stage::new("jrtc-slow-py").await;
    let mut child = tokio::process::Command::new("ip")
        .args(["netns", "exec", &stage.netns])
        .arg(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/aiortc/receiver.py"
        ))
        .arg(format!("ws://{}", stage.remote))
        .arg(token(&stage.server, "py"))
        .args(["r", "10.78.0.2"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the aiortc receiver starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (sender, mut seen) = watch::channel(Received::default());
    let reader = tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let report: Value = serde_json::from_str(&line).expect("a JSON line");
            let field = |name: &str| report[name].as_u64().unwrap_or(0);
            sender.send_modify(|r| {
                let width = field("width") as u16;
                if width != r.width {
                    r.width = width;
                    r.widths.push(width);
                }
                r.frames = field("frames");
                r.audio = field("audio");
            });
        }
    });
    down_and_up(&mut seen, "aiortc (REMB)", Duration::from_secs(60)).await;
    child.kill().await.unwrap();
    reader.await.unwrap();
    stage.end().await;
}
