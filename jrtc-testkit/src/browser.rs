//! The browser tests' tools: headless Debian Chromium driven by playwright-core and headless
//! Debian Firefox ESR driven by puppeteer-core (a Node.js process, `driver.mjs`, speaking JSON
//! lines, per browser), the test's own network namespace, and a jrtc client in Rust that sends
//! the VP8 fixture.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::support::in_path;
use jrtc::{AccessToken, Call, CallEvent, CallOptions, Grants, ServerHandle};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{Mutex, oneshot};

/// The longest a browser step may take.
pub const WAIT: Duration = Duration::from_secs(60);

/// `tests/browser` of the repository: `driver.mjs`, `harness.js` and `node_modules`.
fn here() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/browser")).to_path_buf()
}

/// Runs test `name` again in a new network namespace holding only `lo` (the browsers then
/// offer loopback candidates only); true when this process is the one inside. Needs root and
/// `unshare` (util-linux), as `.ci/run` has. One such test runs at a time (the browsers, the
/// server and its media share two cores).
///
/// The namespace has a default route through `lo` (from 127.0.0.1): Firefox gathers no ICE
/// candidates at all on a machine without one. `npm ci` runs before, outside (it needs the
/// network).
pub fn in_namespace(name: &str) -> bool {
    if std::env::var_os("JRTC_TEST_IN_NETNS").is_none() {
        npm_ci();
    }
    crate::support::in_namespace(
        name,
        "ip link set lo up && ip route add default dev lo src 127.0.0.1",
    )
}

/// The Debian packages the Firefox tests need.
pub const FIREFOX_PACKAGES: &str = "apt-get install -y firefox-esr xvfb";

fn firefox_path() -> PathBuf {
    std::env::var_os("FIREFOX")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/bin/firefox-esr".into())
}

/// Fails the test at once unless Firefox ESR (and, with `screen`, Xvfb for its screen capture)
/// is installed, with the command that installs them.
pub fn need_firefox(screen: bool) {
    let firefox = firefox_path();
    assert!(
        firefox.is_file(),
        "this test needs Firefox ESR at {} ({FIREFOX_PACKAGES})",
        firefox.display()
    );
    if screen {
        let xvfb = std::env::var("XVFB").unwrap_or_else(|_| "Xvfb".into());
        assert!(
            Path::new(&xvfb).is_file() || in_path(&xvfb),
            "this test needs Xvfb for Firefox's screen capture ({FIREFOX_PACKAGES})"
        );
    }
}

/// A fake device's file made with ffmpeg from a `lavfi` `source` and more `args` (format,
/// length) into `name` in `dir`, once: a later call finds it made.
pub fn ffmpeg_fixture(dir: &Path, name: &str, source: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    if !path.exists() {
        let partial = dir.join(format!("partial-{name}"));
        let out = std::process::Command::new("ffmpeg")
            .args(["-loglevel", "error", "-y", "-f", "lavfi", "-i", source])
            .args(args)
            .arg(&partial)
            .output()
            .expect("ffmpeg runs (Debian package ffmpeg)");
        assert!(out.status.success(), "ffmpeg: {out:?}");
        std::fs::rename(&partial, &path).unwrap();
    }
    path
}

/// A development server on 127.0.0.1 (call page on, dev tokens on).
pub async fn server() -> ServerHandle {
    jrtc::Server::builder()
        .development()
        .start()
        .await
        .expect("the server starts")
}

/// A token with a host's grants for `user`.
pub fn token(server: &ServerHandle, user: &str) -> String {
    let name = format!("{}{}", user[..1].to_uppercase(), &user[1..]);
    server
        .mint(&AccessToken::new(user).name(name).grants(Grants::host()))
        .unwrap()
}

/// A Rust member of a room, with its event stream.
pub struct Member {
    pub call: Call,
    pub events: jrtc::EventStream,
}

impl Member {
    pub async fn join(server: &ServerHandle, user: &str, room: &str) -> Member {
        Self::join_at(&server.url(), token(server, user), room).await
    }

    /// [`Member::join`] through the server at `url` (another address of it), with `token`.
    pub async fn join_at(url: &str, token: String, room: &str) -> Member {
        let call = Call::connect_with(url, token, CallOptions::default())
            .await
            .expect("the Rust client connects");
        let events = call.events();
        let op = call.join(room, Default::default()).await.unwrap();
        tokio::time::timeout(WAIT, call.outcome(op))
            .await
            .expect("joined in time")
            .expect("the join succeeds");
        Member { call, events }
    }

    /// Sends a text message (to one member, or with `to` None to the room) and waits for its
    /// outcome, which must be a success.
    pub async fn say(&self, to: Option<&str>, content: &str) {
        let op = self
            .call
            .send_message(to, "text/plain", content)
            .await
            .unwrap();
        tokio::time::timeout(WAIT, self.call.outcome(op))
            .await
            .expect("the message is answered in time")
            .expect("the message is sent");
    }

    /// The next event that `pick` takes, skipping the others.
    pub async fn until<T>(&mut self, pick: impl FnMut(&CallEvent) -> Option<T>) -> T {
        next_matching(&mut self.events, pick).await
    }

    /// Waits until the room's screen is shared; by whom.
    pub async fn screen_sharer(&mut self) -> String {
        self.until(|ev| match ev {
            CallEvent::Property(jrtc::PropertyEvent::Changed { properties, .. }) => properties
                .screen_share
                .as_ref()
                .map(|share| share.user_id.to_string()),
            _ => None,
        })
        .await
    }

    /// Waits until this member receives publication `id`; its remote track.
    pub async fn remote(&mut self, id: &str) -> jrtc::RemoteTrack {
        if let Some(track) = self.call.remote_track(id) {
            return track;
        }
        let id = id.to_owned();
        self.until(|ev| match ev {
            CallEvent::Media(jrtc::MediaEvent::Subscribed { publication })
                if publication.id == id =>
            {
                Some(())
            }
            _ => None,
        })
        .await;
        self.call.remote_track(&id).expect("the remote track")
    }
}

/// The next event of `events` that `pick` takes, skipping the others.
pub async fn next_matching<T>(
    events: &mut jrtc::EventStream,
    mut pick: impl FnMut(&CallEvent) -> Option<T>,
) -> T {
    use futures::StreamExt;
    let end = tokio::time::Instant::now() + WAIT;
    loop {
        let ev = tokio::time::timeout_at(end, events.next())
            .await
            .expect("the event in time")
            .expect("the stream goes on");
        if let Some(t) = pick(&ev) {
            return t;
        }
    }
}

/// VP8 frames reassembled from the RTP of `track` until `want` complete ones arrived (a frame
/// counts once its marker packet came and every packet of it was in order).
pub async fn vp8_frames(track: &jrtc::RemoteTrack, want: usize) -> usize {
    use jrtc::media::rtc::rtp::codec::vp8::Vp8Packet;
    use jrtc::media::rtc::rtp::packetizer::Depacketizer;
    let mut depacketizer = Vp8Packet::default();
    let mut frame = Vec::new();
    let mut last_seq: Option<u16> = None;
    let mut whole = false;
    let mut frames = 0;
    while frames < want {
        let packet = tokio::time::timeout(WAIT, track.next_packet())
            .await
            .expect("a video packet in time")
            .expect("the track is live");
        let seq = packet.header.sequence_number;
        if last_seq.is_some_and(|last| seq != last.wrapping_add(1)) {
            whole = false; // a packet missing: drop the frame being built
        }
        last_seq = Some(seq);
        let Ok(part) = depacketizer.depacketize(&packet.payload) else {
            whole = false;
            continue;
        };
        if depacketizer.is_partition_head(&packet.payload) {
            frame.clear();
            whole = true;
        }
        frame.extend_from_slice(&part);
        if packet.header.marker {
            if whole && !frame.is_empty() {
                frames += 1;
            }
            frame.clear();
            whole = false;
        }
    }
    frames
}

/// What [`key_frame_size`] saw of a track's packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Numbering {
    /// Packets read.
    pub packets: u64,
    /// The largest step forward between two consecutive packets' sequence numbers (1 when
    /// none is missing; a packet that comes late does not count).
    pub largest_step: u16,
}

/// Reads `track` until a VP8 key frame whose size (width, height, from its frame header)
/// `wanted` takes; its size, and how the packets up to it were numbered. `last` carries the
/// sequence number from an earlier call, so a whole run of calls is checked as one.
pub async fn key_frame_size(
    track: &jrtc::RemoteTrack,
    last: &mut Option<u16>,
    mut wanted: impl FnMut((u16, u16)) -> bool,
) -> ((u16, u16), Numbering) {
    let mut numbering = Numbering {
        packets: 0,
        largest_step: 0,
    };
    loop {
        let packet = tokio::time::timeout(WAIT, track.next_packet())
            .await
            .expect("a video packet in time")
            .expect("the track is live");
        numbering.packets += 1;
        let seq = packet.header.sequence_number;
        if let Some(before) = *last {
            let step = seq.wrapping_sub(before);
            if step < 0x8000 {
                numbering.largest_step = numbering.largest_step.max(step);
                *last = Some(seq);
            }
        } else {
            *last = Some(seq);
        }
        if let Some(size) = vp8_key_frame_size(&packet.payload)
            && wanted(size)
        {
            return (size, numbering);
        }
    }
}

/// The size of the VP8 key frame `payload` starts (RFC 7741 payload descriptor, then the frame
/// header of RFC 6386 section 9.1), if it starts one.
pub fn vp8_key_frame_size(payload: &[u8]) -> Option<(u16, u16)> {
    let first = *payload.first()?;
    if first & 0x10 == 0 || first & 0x07 != 0 {
        return None; // not the start of partition 0
    }
    let mut at = 1;
    if first & 0x80 != 0 {
        let flags = *payload.get(1)?;
        at = 2;
        if flags & 0x80 != 0 {
            at += if *payload.get(at)? & 0x80 != 0 { 2 } else { 1 };
        }
        if flags & 0x40 != 0 {
            at += 1;
        }
        if flags & 0x30 != 0 {
            at += 1;
        }
    }
    let header = payload.get(at..at + 10)?;
    if header[0] & 0x01 != 0 || header[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let side = |lo: u8, hi: u8| u16::from_le_bytes([lo, hi]) & 0x3fff;
    Some((side(header[6], header[7]), side(header[8], header[9])))
}

/// Packets of `track` until `want` came.
pub async fn packets(track: &jrtc::RemoteTrack, want: usize) -> usize {
    let mut n = 0;
    while n < want {
        tokio::time::timeout(WAIT, track.next_packet())
            .await
            .expect("a packet in time")
            .expect("the track is live");
        n += 1;
    }
    n
}

/// The driver's answers waited for, by command id.
type Waiting = Arc<std::sync::Mutex<HashMap<u64, oneshot::Sender<Result<Value, String>>>>>;

/// A headless browser (Chromium or Firefox), driven through `driver.mjs`.
pub struct Browser {
    child: Child,
    stdin: Mutex<ChildStdin>,
    waiting: Waiting,
    next: AtomicU64,
}

/// A page (a tab) of the browser.
#[derive(Clone, Copy, Debug)]
pub struct Page(u64);

/// Installs playwright-core and puppeteer-core (from `package-lock.json`: neither downloads a
/// browser) when they are not there yet.
fn npm_ci() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let modules = here().join("node_modules");
        if modules.join("playwright-core").exists() && modules.join("puppeteer-core").exists() {
            return;
        }
        assert!(
            in_path("node") && in_path("npm"),
            "the browser tests need Node.js: apt-get install -y nodejs npm (or run scripts/test)"
        );
        let status = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(here())
            .status()
            .expect("npm runs");
        assert!(
            status.success(),
            "npm ci in tests/browser failed (it needs the npm registry; scripts/test runs it)"
        );
    });
}

impl Browser {
    /// Starts Chromium (Debian's, at /usr/bin/chromium, or `$CHROMIUM`).
    pub async fn launch() -> Browser {
        Self::launch_chromium(None, None, None).await
    }

    /// Starts Chromium as [`launch`](Self::launch) does, its fake camera playing `y4m` (a
    /// file in the YUV4MPEG2 format, looped) instead of the built-in 640×480 pattern.
    pub async fn launch_with_camera(y4m: &Path) -> Browser {
        Self::launch_chromium(Some(y4m), None, None).await
    }

    /// Starts Chromium inside network namespace `netns` (made with `ip netns add`), so that its
    /// traffic takes that namespace's links (a shaped veth, say).
    pub async fn launch_in_netns(netns: &str) -> Browser {
        Self::launch_chromium(None, None, Some(netns)).await
    }

    /// Starts Chromium as [`launch`](Self::launch) does, its fake microphone playing `wav` (a
    /// WAV file, looped) instead of the built-in beep.
    pub async fn launch_with_microphone(wav: &Path) -> Browser {
        Self::launch_chromium(None, Some(wav), None).await
    }

    async fn launch_chromium(
        camera: Option<&Path>,
        microphone: Option<&Path>,
        netns: Option<&str>,
    ) -> Browser {
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        assert!(
            Path::new(&chromium).exists(),
            "the browser tests need Chromium at {chromium} (apt-get install -y chromium)"
        );
        Self::start("chromium", false, camera, microphone, netns).await
    }

    /// Starts Firefox ESR (Debian's, at /usr/bin/firefox-esr, or `$FIREFOX`), headless; with
    /// `screen`, on an Xvfb display of its own that its getDisplayMedia captures.
    pub async fn launch_firefox(screen: bool) -> Browser {
        need_firefox(screen);
        Self::start("firefox", screen, None, None, None).await
    }

    async fn start(
        which: &str,
        xvfb: bool,
        camera: Option<&Path>,
        microphone: Option<&Path>,
        netns: Option<&str>,
    ) -> Browser {
        npm_ci();
        let mut command = match netns {
            Some(netns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", netns, "node"]);
                command
            }
            None => Command::new("node"),
        };
        command
            .arg(here().join("driver.mjs"))
            .env("JRTC_BROWSER", which)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if xvfb {
            command.env("JRTC_XVFB", "1");
        }
        if let Some(camera) = camera {
            command.env("JRTC_FAKE_VIDEO", camera);
        }
        if let Some(microphone) = microphone {
            command.env("JRTC_FAKE_AUDIO", microphone);
        }
        // Not killed with this handle: the driver exits when its input closes (this handle
        // dropped, or the test process gone) and stops its browser (and Xvfb) and removes the
        // profile; killed, it would leave them behind.
        command.kill_on_drop(false);
        let mut child = command.spawn().expect("node runs");
        let stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let waiting: Waiting = Arc::default();
        let (ready_tx, ready_rx) = oneshot::channel();
        let table = waiting.clone();
        tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(reply) = serde_json::from_str::<Value>(&line) else {
                    eprintln!("driver: {line}");
                    continue;
                };
                let id = reply["id"].as_u64().unwrap_or(u64::MAX);
                if id == 0 {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(());
                    }
                    continue;
                }
                let result = if reply["ok"] == json!(true) {
                    Ok(reply["value"].clone())
                } else {
                    Err(reply["error"].as_str().unwrap_or("?").to_owned())
                };
                if let Some(tx) = table.lock().unwrap().remove(&id) {
                    let _ = tx.send(result);
                }
            }
        });
        tokio::time::timeout(WAIT, ready_rx)
            .await
            .expect("the browser starts in time")
            .expect("the driver starts (see its error above)");
        Browser {
            child,
            stdin: Mutex::new(stdin),
            waiting,
            next: AtomicU64::new(1),
        }
    }

    async fn command(&self, mut command: Value) -> Result<Value, String> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        command["id"] = json!(id);
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().unwrap().insert(id, tx);
        let mut line = command.to_string();
        line.push('\n');
        self.stdin
            .lock()
            .await
            .write_all(line.as_bytes())
            .await
            .expect("the driver reads");
        tokio::time::timeout(WAIT * 2, rx)
            .await
            .map_err(|_| format!("no answer to {command}"))?
            .map_err(|_| "the driver exited".to_owned())?
    }

    /// Opens `url` in a new tab.
    pub async fn open(&self, url: &str) -> Page {
        let id = self
            .command(json!({"cmd": "open", "url": url}))
            .await
            .expect("the page opens");
        Page(id.as_u64().unwrap())
    }

    /// Opens `url` and loads the test harness (`harness.js`: `jrtc` and `T`) into it.
    pub async fn open_harness(&self, url: &str) -> Page {
        let page = self.open(url).await;
        self.eval(page, include_str!("../../tests/browser/harness.js"))
            .await;
        page
    }

    /// Connects a call `name` (also its user id, with a host's grants) in `page` to `server`,
    /// joins `room`, and with `publish` publishes the camera and the microphone.
    pub async fn join_call(
        &self,
        page: Page,
        server: &ServerHandle,
        name: &str,
        room: &str,
        publish: bool,
    ) {
        self.join_call_via(
            page,
            &server.url(),
            &token(server, name),
            name,
            room,
            publish,
        )
        .await;
    }

    /// [`join_call`](Self::join_call) through signaling URL `url` with `token`.
    pub async fn join_call_via(
        &self,
        page: Page,
        url: &str,
        token: &str,
        name: &str,
        room: &str,
        publish: bool,
    ) {
        let code = format!(
            "await T.connect({name}, {url}, {token});
             const call = T.calls[{name}];
             await call.outcome(call.join({room}));
             if ({publish}) {{
               await call.outcome(call.publishCamera());
               await call.outcome(call.publishMicrophone());
             }}",
            name = json!(name),
            url = json!(url),
            token = json!(token),
            room = json!(room),
        );
        self.eval(page, &code).await;
    }

    /// Runs `code` (the body of an async function) in `page`; its return value. Panics if it
    /// throws.
    pub async fn eval(&self, page: Page, code: &str) -> Value {
        match self.try_eval(page, code).await {
            Ok(value) => value,
            Err(e) => panic!("the page failed: {e}\nin: {code}"),
        }
    }

    /// Runs `code` in `page`: its return value, or what it threw.
    pub async fn try_eval(&self, page: Page, code: &str) -> Result<Value, String> {
        self.command(json!({"cmd": "eval", "page": page.0, "code": code}))
            .await
    }

    /// Types `value` into the element `selector`.
    pub async fn fill(&self, page: Page, selector: &str, value: &str) {
        self.command(json!({"cmd": "fill", "page": page.0, "selector": selector, "value": value}))
            .await
            .expect("the field takes the text");
    }

    /// Clicks the element `selector`.
    pub async fn click(&self, page: Page, selector: &str) {
        self.command(json!({"cmd": "click", "page": page.0, "selector": selector}))
            .await
            .expect("the click lands");
    }

    /// Waits until the expression `code` is true in `page`.
    pub async fn wait_for(&self, page: Page, code: &str) {
        if let Err(e) = self
            .command(json!({"cmd": "wait", "page": page.0, "code": code, "timeout": 45000}))
            .await
        {
            panic!("waiting for {code}: {e}");
        }
    }

    /// A PNG of `page` at `width`×`height`, written to `path`.
    pub async fn screenshot(&self, page: Page, path: &Path, width: u32, height: u32) {
        self.command(json!({"cmd": "screenshot", "page": page.0, "path": path, "width": width, "height": height}))
            .await
            .expect("the screenshot is taken");
    }

    /// Closes the browser.
    pub async fn quit(mut self) {
        // The driver exits without answering; closing its input is the same order.
        drop(self.stdin);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}
