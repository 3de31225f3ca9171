//! `jrtc-server load-test`: N rooms × M users over real WebSocket connections, against an embedded
//! server (default) or a running one. Phases: connect, join (all at once), a group-message storm,
//! leave. Beside it, the same burst of joins and the same storm through a minimal raw WebSocket
//! room server (`raw.rs`), so the report can say how jrtc compares with the plain transport on this
//! machine, in this run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use futures::StreamExt;
use hdrhistogram::Histogram;
use jrtc::{AccessToken, Call, CallEvent, Grants, JoinOptions, MessageEvent};
use serde::Serialize;
use tokio::sync::Semaphore;

/// Options of the load test.
#[derive(Clone, Debug, Args)]
pub struct LoadTest {
    /// Rooms.
    #[arg(long, default_value_t = 10)]
    rooms: usize,
    /// Users per room.
    #[arg(long, default_value_t = 10)]
    users: usize,
    /// Group messages each user sends in the storm.
    #[arg(long, default_value_t = 20)]
    messages: usize,
    /// Offer the storm at this many messages per second in all (each user sending at its
    /// share, the users' sends spread evenly), to jrtc and the raw baseline alike; default: as
    /// fast as each client can send. Deliveries per server CPU-second depend on the offered
    /// rate (a denser storm batches more frames per write), so comparing two servers' CPU per
    /// delivery takes the same rate for both.
    #[arg(long)]
    storm_rate: Option<f64>,
    /// A running server's URL (its secret in JRTC_SECRET); default: an embedded server.
    #[arg(long)]
    url: Option<String>,
    /// The running server's pid, to read its memory and CPU from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Token secret for `--url` (or JRTC_SECRET).
    #[arg(long, env = "JRTC_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Write the results as JSON to this file too.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Only connect the users and measure memory per idle connected user (no join, no storm).
    #[arg(long)]
    idle: bool,
    /// With `--idle`: the users also join their rooms (`--rooms` × `--users`), then idle (the
    /// memory then includes room membership and what each session keeps for a resume).
    #[arg(long)]
    in_rooms: bool,
    /// Measure join latency at each of these numbers of users (rooms of `--users`), no storm.
    #[arg(long, value_delimiter = ',')]
    sweep: Vec<usize>,
    /// With `--sweep`: draw join latency against users into this SVG file.
    #[arg(long)]
    plot: Option<std::path::PathBuf>,
    /// Media mode: PUBLISHERS,SUBSCRIBERS,PPS — one room where each publisher sends 1,200-byte
    /// RTP at PPS packets/s for 4 s; reports forwarded packets/s, per server CPU-second, and the
    /// packets' trip times (publisher's write to subscriber's read: p50, p99, max).
    #[arg(long, value_delimiter = ',')]
    media: Vec<u32>,
    /// With `--media`: what the publishers send — `camera` (1,200-byte packets), `microphone`
    /// (Opus-sized, 160 bytes), or `speaking` (a microphone whose packets carry their audio
    /// level, loud for a second and quiet for a second in turn: the server's speaker tracking
    /// at work).
    #[arg(long, default_value = "camera")]
    media_source: MediaSource,
    /// A running raw baseline server (`jrtc-server raw-serve`); default: one in this process.
    #[arg(long)]
    raw_url: Option<String>,
    /// The raw baseline server's pid, to read its CPU time from /proc.
    #[arg(long)]
    raw_pid: Option<u32>,
}

/// What the media mode's publishers send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum MediaSource {
    Camera,
    Microphone,
    Speaking,
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Serialize)]
struct Latency {
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            p50_ms: ms(h.value_at_quantile(0.5)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

/// What the raw baseline measured in the same run.
#[derive(Debug, Serialize)]
struct RawReport {
    join: Latency,
    deliveries_per_s: f64,
    /// Where the raw server's pid is known.
    deliveries_per_server_cpu_s: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Report {
    rooms: usize,
    users_per_room: usize,
    users: usize,
    connect: Latency,
    join: Latency,
    join_phase_s: f64,
    /// Server CPU time during the join phase, per join (µs), where the server's pid is known.
    server_cpu_per_join_us: Option<f64>,
    storm_messages: usize,
    storm_deliveries: u64,
    /// Storm deliveries per CPU-second of the server, where its pid is known.
    deliveries_per_server_cpu_s: Option<f64>,
    storm_s: f64,
    deliveries_per_s: f64,
    /// The same burst and storm through the raw baseline (not run by `--sweep`).
    raw: Option<RawReport>,
    memory_scope: &'static str,
    rss_per_user_kib: Option<f64>,
    cpu_s: Option<f64>,
    leave_s: f64,
}

/// A progress bar on standard error (drawn only on a terminal).
fn bar(len: u64, phase: &'static str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{prefix:>8} [{bar:40}] {pos}/{len} {elapsed}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(phase);
    bar
}

fn rss_kib(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time (all threads) of a process, or of this one.
pub(crate) fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let proc_dir = match pid {
        Some(pid) => format!("/proc/{pid}"),
        None => "/proc/self".to_owned(),
    };
    // Nanoseconds on CPU per thread (schedstat), summed; ticks of 10 ms (stat) where missing.
    let from_schedstat = || -> Option<f64> {
        let mut ns = 0u64;
        for task in std::fs::read_dir(format!("{proc_dir}/task")).ok()? {
            let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
            ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
        }
        Some(ns as f64 / 1e9)
    };
    from_schedstat().or_else(|| {
        let stat = std::fs::read_to_string(format!("{proc_dir}/stat")).ok()?;
        let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
        let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        Some(ticks / 100.0)
    })
}

pub async fn run(args: LoadTest) -> Result<(), Box<dyn std::error::Error>> {
    // 10,000 users need more than the usual 1,024 open files.
    crate::fdlimit::raise();
    let embedded;
    let (url, secret) = match &args.url {
        Some(url) => (
            url.clone(),
            args.secret
                .clone()
                .ok_or("--url needs the server's secret (JRTC_SECRET)")?
                .into_bytes(),
        ),
        None => {
            let secret = b"the load test's own secret, at least 32 bytes".to_vec();
            let limits = jrtc::Limits::default()
                .requests_per_second(1_000_000)
                .request_burst(1_000_000)
                .max_participants(args.users.max(1))
                .max_connections_per_user(1)
                // Every simulated user connects from 127.0.0.1, thousands at once.
                .max_unauthenticated(usize::MAX)
                .max_unauthenticated_per_address(usize::MAX);
            embedded = Some(
                jrtc::Server::builder()
                    .secret(secret.clone())
                    .limits(limits)
                    .start()
                    .await?,
            );
            (embedded.as_ref().expect("just made").url(), secret)
        }
    };
    if !args.sweep.is_empty() {
        return sweep(&args, &url, &secret).await;
    }
    match args.media[..] {
        [] => {}
        [publishers, subscribers, pps] => {
            let (pid, source) = (args.server_pid, args.media_source);
            return media(&url, &secret, pid, source, publishers, subscribers, pps).await;
        }
        _ => return Err("--media takes PUBLISHERS,SUBSCRIBERS,PPS".into()),
    }
    if let Some(report) = run_once(&args, &url, &secret, true).await? {
        print_table(&report);
        if let Some(path) = &args.json {
            std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        }
        let expected =
            (report.rooms * report.users_per_room * (report.users_per_room - 1) * args.messages)
                as u64;
        if report.storm_deliveries != expected {
            return Err(format!(
                "{} of {expected} messages delivered",
                report.storm_deliveries
            )
            .into());
        }
    }
    Ok(())
}

/// Join latency at several sizes, as a table and (with `--plot`) an SVG chart.
async fn sweep(
    args: &LoadTest,
    url: &str,
    secret: &[u8],
) -> Result<(), Box<dyn std::error::Error>> {
    let mut points = Vec::new();
    for &n in &args.sweep {
        let mut one = args.clone();
        one.rooms = (n / args.users.max(1)).max(1);
        one.messages = 0;
        one.idle = false;
        let report = run_once(&one, url, secret, false).await?.expect("not idle");
        println!(
            "{:6} users: join p50 {:7.2} ms  p99 {:7.2} ms  max {:7.2} ms",
            report.users, report.join.p50_ms, report.join.p99_ms, report.join.max_ms
        );
        points.push((report.users as f64, report.join.p50_ms, report.join.p99_ms));
    }
    if let Some(path) = &args.plot {
        plot(path, &points)?;
        println!("plot written to {}", path.display());
    }
    Ok(())
}

fn plot(
    path: &std::path::Path,
    points: &[(f64, f64, f64)],
) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let max_x = points.iter().map(|p| p.0).fold(1.0, f64::max);
    let max_y = points.iter().map(|p| p.2).fold(1.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "jrtc: join latency, all users joining at once",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..max_x * 1.05, 0.0..max_y)?;
    chart
        .configure_mesh()
        .x_desc("users (rooms of 10)")
        .y_desc("join latency (ms)")
        .draw()?;
    let p50: Vec<(f64, f64)> = points.iter().map(|p| (p.0, p.1)).collect();
    let p99: Vec<(f64, f64)> = points.iter().map(|p| (p.0, p.2)).collect();
    for (label, line, color) in [("p50", p50, BLUE), ("p99", p99, RED)] {
        chart
            .draw_series(LineSeries::new(line.iter().copied(), &color))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        chart.draw_series(line.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;
    root.present()?;
    Ok(())
}

/// One load run: connect, join, storm (unless there are no messages), leave. `None` in idle mode
/// (which prints its own report).
/// One run; `with_raw`: the raw baseline too.
async fn run_once(
    args: &LoadTest,
    url: &str,
    secret: &[u8],
    with_raw: bool,
) -> Result<Option<Report>, Box<dyn std::error::Error>> {
    let url = url.to_owned();
    let users = args.rooms * args.users;
    let pid = args.server_pid;
    let memory_scope = match (pid, args.url.is_some()) {
        (Some(_), _) => "server process",
        (None, false) => "this process (embedded server and all clients)",
        (None, true) => "this process (clients only)",
    };
    let rss_before = rss_kib(pid);
    let client_rss_before = rss_kib(None);
    let cpu_before = cpu_seconds(pid);

    // Connect, at most 256 handshakes at a time.
    eprintln!("connecting {users} users…");
    let gate = Arc::new(Semaphore::new(256));
    // Each call's event ring holds what the storm sends it, not the default 4,096 events; idle
    // calls use the defaults (their memory is what is measured).
    let options = if args.idle {
        jrtc::CallOptions::default()
    } else {
        jrtc::CallOptions::default().event_capacity((args.users.max(1) - 1) * args.messages + 64)
    };
    let mut tasks = Vec::new();
    for i in 0..users {
        let url = url.clone();
        let token = AccessToken::new(format!("u{i}"))
            .grants(Grants::all())
            .sign(secret)?;
        let gate = gate.clone();
        let options = options.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await;
            let started = Instant::now();
            let call = Call::connect_with(&url, token, options).await?;
            Ok::<_, jrtc::CallError>((call, started.elapsed()))
        }));
    }
    let mut connect = Histogram::<u64>::new(3)?;
    let mut calls = Vec::with_capacity(users);
    let progress = bar(users as u64, "connect");
    for task in tasks {
        let (call, took) = task.await??;
        connect.record(took.as_micros() as u64)?;
        calls.push(call);
        progress.inc(1);
    }
    progress.finish_and_clear();
    let rss_connected = rss_kib(pid);
    if args.idle {
        if args.in_rooms {
            let joins: Vec<_> = calls
                .iter()
                .enumerate()
                .map(|(i, call)| {
                    let (call, gate) = (call.clone(), gate.clone());
                    let room = format!("room{}", i / args.users.max(1));
                    tokio::spawn(async move {
                        let _permit = gate.acquire().await;
                        let op = call.join(&room, JoinOptions::default()).await?;
                        call.outcome(op).await.map(|_| ())
                    })
                })
                .collect();
            for join in joins {
                join.await??;
            }
            // Past a keepalive, so each call has acknowledged what it took.
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        // Let every login settle, then read the memory again.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss = rss_kib(pid);
        let per = |before: Option<u64>, after: Option<u64>| match (before, after) {
            (Some(a), Some(b)) if users > 0 => Some(b.saturating_sub(a) as f64 / users as f64),
            _ => None,
        };
        let per_user = per(rss_before, rss);
        // This process's own growth per Call: the client's cost when the server is elsewhere.
        let per_call = per(client_rss_before, rss_kib(None)).filter(|_| args.url.is_some());
        let connect = Latency::of(&connect);
        let place = if args.in_rooms { ", in rooms" } else { "" };
        println!("jrtc load test (idle): {users} users connected{place}");
        println!(
            "  connect      p50 {:8.2} ms   p99 {:8.2} ms   max {:8.2} ms",
            connect.p50_ms, connect.p99_ms, connect.max_ms
        );
        if let Some(kib) = per_user {
            println!("  memory       {kib:.1} KiB RSS per idle connected user ({memory_scope})");
        }
        if let Some(kib) = per_call {
            println!(
                "  client       {kib:.1} KiB RSS per idle Call (this process, default options)"
            );
        }
        if let Some(path) = &args.json {
            let report = serde_json::json!({
                "users": users, "connect": connect, "rss_per_user_kib": per_user, "memory_scope": memory_scope,
                "client_rss_per_call_kib": per_call,
            });
            std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        }
        for call in &calls {
            call.close().await;
        }
        return Ok(None);
    }

    // Join, all at once.
    eprintln!("joining {} rooms…", args.rooms);
    let cpu_before_joins = cpu_seconds(pid);
    let started = Instant::now();
    let joins: Vec<_> = calls
        .iter()
        .enumerate()
        .map(|(i, call)| {
            let call = call.clone();
            let room = format!("room{}", i / args.users);
            tokio::spawn(async move {
                let t = Instant::now();
                let op = call.join(&room, JoinOptions::default()).await?;
                call.outcome(op).await?;
                Ok::<_, jrtc::CallError>(t.elapsed())
            })
        })
        .collect();
    let mut join = Histogram::<u64>::new(3)?;
    let progress = bar(users as u64, "join");
    for task in joins {
        join.record(task.await??.as_micros() as u64)?;
        progress.inc(1);
    }
    progress.finish_and_clear();
    let join_phase = started.elapsed();
    let server_cpu_per_join_us = match (cpu_before_joins, cpu_seconds(pid)) {
        (Some(a), Some(b)) if users > 0 && pid.is_some() => Some((b - a) * 1e6 / users as f64),
        _ => None,
    };

    // The storm: every user sends its group messages; every other member must receive them.
    let expected = (args.rooms * args.users * (args.users - 1) * args.messages) as u64;
    eprintln!("message storm: {expected} deliveries expected…");
    let delivered = Arc::new(AtomicU64::new(0));
    let counters: Vec<_> = calls
        .iter()
        .map(|call| {
            let mut chat = call.events().messages();
            let delivered = delivered.clone();
            let each = ((args.users - 1) * args.messages) as u64;
            tokio::spawn(async move {
                let mut got = 0;
                while got < each {
                    match chat.next().await {
                        Some(Ok(MessageEvent::Received(_))) => {
                            got += 1;
                            delivered.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(_) => {}
                        None => break,
                    }
                }
            })
        })
        .collect();
    let cpu_before_storm = cpu_seconds(pid);
    let started = Instant::now();
    let senders: Vec<_> = calls
        .iter()
        .enumerate()
        .map(|(index, call)| {
            let call = call.clone();
            let n = args.messages;
            let pace = Pace::new(args.storm_rate, calls.len(), index);
            tokio::spawn(async move {
                for i in 0..n {
                    pace.before(i).await;
                    call.send_message(None, "text/plain", format!("storm {i}"))
                        .await?;
                }
                Ok::<_, jrtc::CallError>(())
            })
        })
        .collect();
    for s in senders {
        s.await??;
    }
    let storm_deadline = Duration::from_secs(120);
    for c in counters {
        tokio::time::timeout(storm_deadline, c).await??;
    }
    let storm = started.elapsed();
    let storm_deliveries = delivered.load(Ordering::Relaxed);
    let deliveries_per_server_cpu_s = pid
        .and_then(|_| cpu_seconds(pid))
        .zip(cpu_before_storm)
        .map(|(b, a)| storm_deliveries as f64 / (b - a).max(1e-9));

    // Leave.
    let started = Instant::now();
    let leaves: Vec<_> = calls
        .iter()
        .map(|call| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut events = call.events();
                let op = call.leave().await?;
                while let Some(ev) = events.next().await {
                    if matches!(ev, CallEvent::Left { op: Some(got), .. } if got == op) {
                        break;
                    }
                }
                Ok::<_, jrtc::CallError>(())
            })
        })
        .collect();
    for l in leaves {
        l.await??;
    }
    let leave = started.elapsed();
    let cpu = match (cpu_before, cpu_seconds(pid)) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    for call in &calls {
        call.close().await;
    }

    let raw = if with_raw {
        let raw = crate::raw::run(
            args.raw_url.as_deref(),
            args.raw_pid,
            args.rooms,
            args.users,
            args.messages,
            args.storm_rate,
        )
        .await?;
        Some(RawReport {
            join: Latency::of(&raw.join),
            deliveries_per_s: raw.deliveries_per_s,
            deliveries_per_server_cpu_s: raw.deliveries_per_server_cpu_s,
        })
    } else {
        None
    };
    let deliveries_per_s = storm_deliveries as f64 / storm.as_secs_f64().max(1e-9);
    let report = Report {
        rooms: args.rooms,
        users_per_room: args.users,
        users,
        connect: Latency::of(&connect),
        join: Latency::of(&join),
        join_phase_s: join_phase.as_secs_f64(),
        server_cpu_per_join_us,
        storm_messages: users * args.messages,
        storm_deliveries,
        deliveries_per_server_cpu_s,
        storm_s: storm.as_secs_f64(),
        deliveries_per_s,
        raw,
        memory_scope,
        rss_per_user_kib: match (rss_before, rss_connected) {
            (Some(a), Some(b)) if users > 0 => Some(b.saturating_sub(a) as f64 / users as f64),
            _ => None,
        },
        cpu_s: cpu,
        leave_s: leave.as_secs_f64(),
    };
    Ok(Some(report))
}

fn print_table(r: &Report) {
    println!(
        "jrtc load test: {} rooms × {} users = {} users",
        r.rooms, r.users_per_room, r.users
    );
    println!(
        "  connect      p50 {:8.2} ms   p99 {:8.2} ms   max {:8.2} ms",
        r.connect.p50_ms, r.connect.p99_ms, r.connect.max_ms
    );
    println!(
        "  join         p50 {:8.2} ms   p99 {:8.2} ms   max {:8.2} ms   (all at once: {:.2} s)",
        r.join.p50_ms, r.join.p99_ms, r.join.max_ms, r.join_phase_s
    );
    if let Some(us) = r.server_cpu_per_join_us {
        println!(
            "               server CPU {us:.1} µs per join (the whole join phase, server process)"
        );
    }
    let ratio = |jrtc: f64, raw: f64| jrtc / raw.max(1e-9);
    if let Some(raw) = &r.raw {
        println!(
            "  raw join     p50 {:8.2} ms   p99 {:8.2} ms   max {:8.2} ms   (the same burst on a raw WebSocket server; jrtc/raw p50 {:.2}, p99 {:.2})",
            raw.join.p50_ms,
            raw.join.p99_ms,
            raw.join.max_ms,
            ratio(r.join.p50_ms, raw.join.p50_ms),
            ratio(r.join.p99_ms, raw.join.p99_ms)
        );
    }
    println!(
        "  storm        {} messages → {} deliveries in {:.2} s",
        r.storm_messages, r.storm_deliveries, r.storm_s
    );
    match &r.raw {
        Some(raw) => println!(
            "  fan-out      {:10.0} deliveries/s   raw WebSocket broadcast {:10.0}/s   jrtc/raw {:.2}",
            r.deliveries_per_s,
            raw.deliveries_per_s,
            ratio(r.deliveries_per_s, raw.deliveries_per_s)
        ),
        None => println!("  fan-out      {:10.0} deliveries/s", r.deliveries_per_s),
    }
    let raw_per_cpu = r
        .raw
        .as_ref()
        .and_then(|raw| raw.deliveries_per_server_cpu_s);
    match (r.deliveries_per_server_cpu_s, raw_per_cpu) {
        (Some(jrtc), Some(raw)) => println!(
            "  server       {jrtc:10.0} deliveries per server CPU-second   raw {raw:10.0}   jrtc/raw {:.2}",
            ratio(jrtc, raw)
        ),
        (Some(jrtc), None) => {
            println!("  server       {jrtc:10.0} deliveries per server CPU-second")
        }
        (None, _) => {}
    }
    if let Some(kib) = r.rss_per_user_kib {
        println!(
            "  memory       {kib:.1} KiB RSS per connected user ({})",
            r.memory_scope
        );
    }
    if let Some(cpu) = r.cpu_s {
        println!("  cpu          {cpu:.2} s ({})", r.memory_scope);
    }
    println!("  leave        {:.2} s", r.leave_s);
}

/// Media mode: publishers × subscribers in one room, RTP at a set rate through the SFU.
async fn media(
    url: &str,
    secret: &[u8],
    pid: Option<u32>,
    source: MediaSource,
    publishers: u32,
    subscribers: u32,
    pps: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    const SECONDS: u64 = 4;
    let member = |user: String| async move {
        let token = AccessToken::new(user).grants(Grants::all()).sign(secret)?;
        let call = Call::connect(url, token).await?;
        let op = call.join("media-load", JoinOptions::default()).await?;
        call.outcome(op).await?;
        Ok::<_, Box<dyn std::error::Error>>(call)
    };
    let mut calls = Vec::new();
    let mut pumps = Vec::new();
    // Every packet carries, in its last 8 bytes, when its publisher wrote it (nanoseconds
    // since `epoch`; publishers and subscribers are in this process): a subscriber's reading
    // minus it is the packet's trip through both clients and the server.
    let epoch = Instant::now();
    for p in 0..publishers {
        let call = member(format!("pub{p}")).await?;
        let kind = match source {
            MediaSource::Camera => jrtc::TrackSource::Camera,
            MediaSource::Microphone | MediaSource::Speaking => jrtc::TrackSource::Microphone,
        };
        let track = call.publish_track(kind).await?;
        pumps.push(tokio::spawn(async move {
            let mut tick =
                tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(pps.max(1))));
            let mut payload = if source == MediaSource::Camera {
                vec![0x90u8; 1200]
            } else {
                vec![0xfcu8; 160]
            };
            for i in 0u32.. {
                tick.tick().await;
                stamp(&mut payload, epoch);
                let sent = match source {
                    MediaSource::Speaking => {
                        // Loud for a second, quiet for a second.
                        let loud = (i / pps.max(1)) % 2 == 0;
                        let level = if loud { 12 } else { 90 };
                        let ts = i.wrapping_mul(960);
                        track.write_with_level(payload.clone(), ts, level).await
                    }
                    _ => {
                        track
                            .write(payload.clone(), i.wrapping_mul(900), true)
                            .await
                    }
                };
                if sent.is_err() {
                    return;
                }
            }
        }));
        calls.push(call);
    }
    let mut receivers = Vec::new();
    for s in 0..subscribers {
        receivers.push(member(format!("sub{s}")).await?);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while receivers
        .iter()
        .any(|r| r.remote_tracks().len() < publishers as usize)
    {
        if Instant::now() > deadline {
            return Err("the subscriptions did not complete".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let counters: Vec<_> = receivers
        .iter()
        .flat_map(|r| r.remote_tracks())
        .map(|track| {
            tokio::spawn(async move {
                let mut n = 0u64;
                let mut trips = Histogram::<u64>::new(3).expect("3 significant figures");
                let end = tokio::time::Instant::now() + Duration::from_secs(SECONDS);
                while let Ok(Some(packet)) = tokio::time::timeout_at(end, track.next_packet()).await
                {
                    n += 1;
                    if let Some(trip) = trip_us(&packet.payload, epoch) {
                        trips.saturating_record(trip);
                    }
                }
                (n, trips)
            })
        })
        .collect();
    let cpu_before = cpu_seconds(pid);
    let mut forwarded = 0;
    let mut trips = Histogram::<u64>::new(3)?;
    for c in counters {
        let (n, h) = c.await?;
        forwarded += n;
        trips.add(h)?;
    }
    let cpu = cpu_seconds(pid).zip(cpu_before).map(|(b, a)| b - a);
    let offered = f64::from(publishers * subscribers * pps) * SECONDS as f64;
    println!(
        "jrtc media load: {publishers} publishers × {subscribers} subscribers at {pps} pps, {SECONDS} s"
    );
    println!(
        "  forwarded    {:.0} packets/s ({:.1} % of offered)",
        forwarded as f64 / SECONDS as f64,
        forwarded as f64 / offered * 100.0
    );
    if let Some(cpu) = cpu {
        let scope = if pid.is_some() {
            "server process"
        } else {
            "this process, clients included"
        };
        println!(
            "  cpu          {cpu:.2} s ({scope}) → {:.0} forwarded packets per CPU-second",
            forwarded as f64 / cpu.max(1e-9)
        );
    }
    if !trips.is_empty() {
        let trip = Latency::of(&trips);
        println!(
            "  trip         p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (publisher's write to subscriber's read: both clients' stacks and the server)",
            trip.p50_ms, trip.p99_ms, trip.max_ms
        );
    }
    for p in pumps {
        p.abort();
    }
    for call in calls.iter().chain(receivers.iter()) {
        call.close().await;
    }
    let udp = raw_udp(Duration::from_secs(2)).await?;
    println!(
        "  raw UDP      {udp:.0} packets/s (1,200-byte datagrams over loopback, one sender, one receiver: the physical limit)"
    );
    Ok(())
}

/// Writes when the packet is written, in nanoseconds since `epoch`, over its last 8 bytes.
fn stamp(payload: &mut [u8], epoch: Instant) {
    let at = epoch.elapsed().as_nanos() as u64;
    let len = payload.len();
    payload[len - 8..].copy_from_slice(&at.to_be_bytes());
}

/// A received packet's trip in microseconds, from the stamp over its last 8 bytes.
fn trip_us(payload: &[u8], epoch: Instant) -> Option<u64> {
    let at = u64::from_be_bytes(
        payload
            .get(payload.len().checked_sub(8)?..)?
            .try_into()
            .ok()?,
    );
    let now = epoch.elapsed().as_nanos() as u64;
    Some(now.saturating_sub(at) / 1_000)
}

/// Plain loopback UDP on two threads with blocking sockets (as BASELINES.md measured it): one
/// sends 1,200-byte datagrams as fast as it can, the other receives; packets received per second.
async fn raw_udp(time: Duration) -> Result<f64, Box<dyn std::error::Error>> {
    let receiver = std::net::UdpSocket::bind("127.0.0.1:0")?;
    receiver.set_read_timeout(Some(Duration::from_millis(100)))?;
    let sender = std::net::UdpSocket::bind("127.0.0.1:0")?;
    sender.connect(receiver.local_addr()?)?;
    let stop = Instant::now() + time;
    let send = std::thread::spawn(move || {
        let buf = [0x90u8; 1200];
        while Instant::now() < stop {
            let _ = sender.send(&buf);
        }
    });
    let counted = tokio::task::spawn_blocking(move || {
        let mut buf = [0u8; 1500];
        let mut received = 0u64;
        let started = Instant::now();
        while receiver.recv(&mut buf).is_ok() {
            received += 1;
        }
        // The last read waited 100 ms for nothing.
        received as f64 / (started.elapsed().as_secs_f64() - 0.1).max(1e-3)
    })
    .await?;
    let _ = send.join();
    Ok(counted)
}

/// When one storm client sends its messages: at once (no rate), or its share of a rate for
/// all, the clients' sends spread evenly over each period.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pace {
    /// When its first message goes, and the time between its messages.
    schedule: Option<(tokio::time::Instant, Duration)>,
}

impl Pace {
    /// Client `index` of `clients` sending at its share of `rate` messages per second.
    pub(crate) fn new(rate: Option<f64>, clients: usize, index: usize) -> Pace {
        let schedule = rate.filter(|r| *r > 0.0).map(|rate| {
            let period = Duration::from_secs_f64(clients.max(1) as f64 / rate);
            let offset = period.mul_f64(index as f64 / clients.max(1) as f64);
            (tokio::time::Instant::now() + offset, period)
        });
        Pace { schedule }
    }

    /// Waits until message `i` is due.
    pub(crate) async fn before(&self, i: usize) {
        if let Some((first, period)) = self.schedule {
            tokio::time::sleep_until(first + period * i as u32).await;
        }
    }
}
