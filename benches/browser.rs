//! Browser measurements (not a pass/fail test): `cargo bench --bench browser` (`JOINS=10`,
//! `CPU_SECONDS=10` by default; `.ci/run` runs a short smoke).
//!
//! Runs in a network namespace of its own holding only `lo` (needs root, as the browser tests
//! do), with headless Chromium driven by `tests/browser/driver.mjs` and the server in this
//! process.
//!
//! 1. **Join → first remote frame.** A browser publishes its fake camera; another browser call
//!    connects, joins, and waits for the first frame of that camera decoded (`framesDecoded`
//!    above 0 in `getStats`, polled every 10 ms): `JOINS` times, p50 and max, from `join()`
//!    (and from `Call.connect`). Baseline in the same run: a Rust client joining the same room, from
//!    `join` to the first RTP packet of the camera.
//! 2. **Server CPU per browser participant.** N browser calls (N = 1, 2, 3) in one room, each
//!    publishing camera and microphone and receiving the others': the CPU time of this process
//!    (the server; the driver's share is a few JSON lines) over `CPU_SECONDS`, per participant.
//!    Baseline: the same server idle over the same window.

use std::time::{Duration, Instant};

use jrtc_testkit::browser::{Browser, Member, Page, in_namespace, server, token};
use serde_json::json;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds this process has used (user + system).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    if !in_namespace("browser") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let joins = env("JOINS", 10) as usize;
    let seconds = env("CPU_SECONDS", 10);
    let server = server().await;
    let browser = Browser::launch().await;

    // 1. Join → first remote frame.
    let publisher = browser.open_harness(&server.http_url()).await;
    browser
        .join_call(publisher, &server, "pub", "bench", true)
        .await;
    let mut rust_ms = Vec::new();
    for i in 0..joins {
        let started = Instant::now();
        let mut member = Member::join(&server, &format!("rust{i}"), "bench").await;
        let track = member.remote("pub/camera").await;
        tokio::time::timeout(jrtc_testkit::browser::WAIT, track.next_packet())
            .await
            .unwrap()
            .unwrap();
        rust_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        member.call.close().await;
    }
    let joiner = browser.open_harness(&server.http_url()).await;
    let (mut join_ms, mut connect_ms) = (Vec::new(), Vec::new());
    // From join(): the first subscribe offer taken, the remote track, the receiving
    // connection connected, the first RTP packet counted.
    let mut stages: [Vec<f64>; 7] = Default::default();
    for i in 0..joins {
        let name = format!("j{i}");
        let code = format!(
            "const t0 = performance.now();
             await T.connect({name}, {url}, {token});
             const call = T.calls[{name}];
             const t1 = performance.now();
             call.join('bench');
             const at = {{}};
             for (;;) {{
               const now = performance.now() - t1;
               if (at.offer == null && call.peerConnections().subscribe) at.offer = now;
               if (at.track == null && call.remote('pub/camera')) at.track = now;
               const pc = call.peerConnections().subscribe;
               if (at.ice == null && pc && pc.iceConnectionState === 'connected') at.ice = now;
               if (at.connected == null && pc && pc.connectionState === 'connected') at.connected = now;
               const v = (await T.inbound({name}, 'pub/camera')).find((s) => s.kind === 'video');
               if (at.packet == null && v && v.packets > 0) at.packet = now;
               if (at.frame == null && v && v.framesReceived > 0) at.frame = now;
               if (v && v.framesDecoded > 0) at.pli = v.pliSent;
               if (v && v.framesDecoded > 0) break;
               if (now > 30000) throw new Error('no frame in 30 s');
               await new Promise((r) => setTimeout(r, 10));
             }}
             const t2 = performance.now();
             call.close();
             return [t2 - t0, t2 - t1, at.offer, at.track, at.ice, at.connected, at.packet, at.frame, at.pli];",
            name = json!(name),
            url = json!(server.url()),
            token = json!(token(&server, &name)),
        );
        let times = browser.eval(joiner, &code).await;
        connect_ms.push(times[0].as_f64().unwrap());
        join_ms.push(times[1].as_f64().unwrap());
        for (k, stage) in stages.iter_mut().enumerate() {
            stage.push(times[2 + k].as_f64().unwrap_or(f64::NAN));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    println!("browser join -> first remote frame decoded, {joins} joins:");
    println!(
        "  from join():         p50 {:.0} ms, max {:.0} ms",
        percentile(&mut join_ms, 0.5),
        percentile(&mut join_ms, 1.0)
    );
    println!(
        "  from Call.connect(): p50 {:.0} ms, max {:.0} ms",
        percentile(&mut connect_ms, 0.5),
        percentile(&mut connect_ms, 1.0)
    );
    for (name, stage) in [
        "the first offer",
        "the remote track",
        "ICE connected",
        "DTLS connected",
        "the first packet",
        "the first frame received",
    ]
    .iter()
    .zip(stages.iter_mut())
    {
        println!("    until {name}: p50 {:.0} ms", percentile(stage, 0.5));
    }
    println!(
        "    loss reports (PLI) the browser sent before its first frame: p50 {:.0}",
        percentile(&mut stages[6], 0.5)
    );
    println!(
        "  baseline, a Rust client from join to the first RTP packet: p50 {:.0} ms, max {:.0} ms",
        percentile(&mut rust_ms, 0.5),
        percentile(&mut rust_ms, 1.0)
    );
    browser.eval(publisher, "T.calls.pub.close();").await;

    // 2. Server CPU per browser participant.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let window = Duration::from_secs(seconds);
    let before = cpu_seconds();
    tokio::time::sleep(window).await;
    let idle = (cpu_seconds() - before) / window.as_secs_f64() * 100.0;
    println!("server CPU, {seconds} s windows (100% = one core):");
    println!("  baseline, idle: {idle:.1}%");
    for n in 1..=3usize {
        let room = format!("cpu{n}");
        let mut pages = Vec::new();
        for i in 0..n {
            let page = browser.open_harness(&server.http_url()).await;
            browser
                .join_call(page, &server, &format!("p{n}x{i}"), &room, true)
                .await;
            pages.push(page);
        }
        // Everyone decodes everyone else's camera before the window opens.
        for (i, page) in pages.iter().enumerate() {
            let others: Vec<String> = (0..n)
                .filter(|j| *j != i)
                .map(|j| format!("p{n}x{j}/camera"))
                .collect();
            let code = format!(
                "return await T.poll(async () => {{
                   let ok = true;
                   for (const id of {others}) {{
                     const v = (await T.inbound({name}, id)).find((s) => s.kind === 'video');
                     ok = ok && v && v.framesDecoded > 0;
                   }}
                   return {{ ok }};
                 }});",
                others = json!(others),
                name = json!(format!("p{n}x{i}")),
            );
            browser.eval(*page, &code).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let frames = |pages: Vec<Page>, n: usize| {
            let browser = &browser;
            async move {
                let mut total = 0u64;
                for (i, page) in pages.iter().enumerate() {
                    let code = format!(
                        "const s = await T.calls[{name}].mediaStats();
                         return s.inbound.filter((x) => x.kind === 'video').reduce((a, x) => a + x.framesDecoded, 0);",
                        name = json!(format!("p{n}x{i}"))
                    );
                    total += browser.eval(*page, &code).await.as_u64().unwrap();
                }
                total
            }
        };
        let frames_before = frames(pages.clone(), n).await;
        let before = cpu_seconds();
        tokio::time::sleep(window).await;
        let cpu = (cpu_seconds() - before) / window.as_secs_f64() * 100.0;
        let fps = (frames(pages.clone(), n).await - frames_before) as f64 / window.as_secs_f64();
        println!(
            "  {n} browser(s), {} video streams forwarded at {fps:.0} decoded frames/s in all: {cpu:.1}% ({:.1}% per participant, {:.1}% over idle per participant)",
            n * (n - 1),
            cpu / n as f64,
            (cpu - idle) / n as f64
        );
        for (i, page) in pages.iter().enumerate() {
            browser
                .eval(
                    *page,
                    &format!("T.calls[{}].close();", json!(format!("p{n}x{i}"))),
                )
                .await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    browser.quit().await;
}
