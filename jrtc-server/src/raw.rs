//! The raw baseline: a minimal room server written directly on tokio-tungstenite, and its load.
//!
//! A client's first text frame, `join <room>`, puts it in the room: the server answers the sender
//! `joined` and tells the room's other members `arrived`. Every later text frame goes to the
//! room's other members. That is the least a join and a group message can cost over WebSocket on
//! this machine; the load test runs the same burst of joins and the same storm through it, so its
//! report can say "jrtc / raw" from one run. It runs in the load test's process, or as its own
//! (`jrtc-server raw-serve`) so that it can be given a core of its own like a jrtc server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

type Room = broadcast::Sender<(usize, Utf8Bytes)>;

/// Frames a room buffers for its slowest member (a storm of up to this many messages per room
/// loses none). Allocated when the room is made, so kept near jrtc's per-connection queue (1,024)
/// rather than sized for any storm.
pub const ROOM_BUFFER: usize = 4096;

/// Serves the raw protocol on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener) {
    let rooms: Arc<Mutex<HashMap<String, Room>>> = Arc::default();
    let mut next = 0usize;
    while let Ok((socket, _)) = listener.accept().await {
        let id = next;
        next += 1;
        let rooms = rooms.clone();
        // As jrtc's server does: small frames go out at once, not held for coalescing.
        let _ = socket.set_nodelay(true);
        tokio::spawn(async move {
            let Ok(ws) = tokio_tungstenite::accept_async(socket).await else {
                return;
            };
            let (mut sink, mut stream) = ws.split();
            let room = match stream.next().await {
                Some(Ok(Message::Text(t))) if t.starts_with("join ") => t[5..].to_owned(),
                _ => return,
            };
            let tx = rooms
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(room)
                .or_insert_with(|| broadcast::channel(ROOM_BUFFER).0)
                .clone();
            let mut rx = tx.subscribe();
            let _ = tx.send((id, Utf8Bytes::from_static("arrived")));
            if sink.send(Message::text("joined")).await.is_err() {
                return;
            }
            loop {
                tokio::select! {
                    msg = stream.next() => match msg {
                        Some(Ok(Message::Text(t))) => { let _ = tx.send((id, t)); }
                        _ => return,
                    },
                    out = rx.recv() => {
                        // Writes what is queued for this member with one flush (as jrtc's
                        // connection tasks do), so the baseline is not one syscall per frame.
                        let mut next = Some(out);
                        while let Some(out) = next.take() {
                            match out {
                                Ok((from, t)) if from != id => {
                                    if sink.feed(Message::Text(t)).await.is_err() { return }
                                }
                                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                                Err(_) => return,
                            }
                            next = match rx.try_recv() {
                                Ok(item) => Some(Ok(item)),
                                Err(broadcast::error::TryRecvError::Lagged(n)) => Some(Err(broadcast::error::RecvError::Lagged(n))),
                                Err(_) => None,
                            };
                        }
                        if sink.flush().await.is_err() { return }
                    }
                }
            }
        });
    }
}

/// What the raw run measured.
pub struct RawRun {
    /// Join latency (µs): `join` sent → `joined` received, all clients at once.
    pub join: Histogram<u64>,
    /// Storm deliveries per second.
    pub deliveries_per_s: f64,
    /// Storm deliveries per CPU-second of the raw server, where its pid is known.
    pub deliveries_per_server_cpu_s: Option<f64>,
}

/// Runs the burst of joins and the storm against a raw server (`url`, or one started here).
pub async fn run(
    url: Option<&str>,
    pid: Option<u32>,
    rooms: usize,
    users: usize,
    messages: usize,
    rate: Option<f64>,
) -> Result<RawRun, Box<dyn std::error::Error>> {
    if users * messages > ROOM_BUFFER {
        return Err(format!(
            "the raw baseline buffers {ROOM_BUFFER} messages per room: use fewer users × messages"
        )
        .into());
    }
    let mut server = None;
    let url = match url {
        Some(url) => url.to_owned(),
        None => {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            server = Some(tokio::spawn(serve(listener)));
            format!("ws://{addr}")
        }
    };
    // Unique room names per run, so runs against one long-lived server do not mix.
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut clients = Vec::new();
    for _ in 0..rooms * users {
        let (ws, _) = tokio_tungstenite::connect_async_with_config(&url, None, true).await?;
        clients.push(ws);
    }
    // Joins, all at once.
    let joins: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut ws)| {
            let room = format!("join {run}-{}", i / users);
            tokio::spawn(async move {
                let t = Instant::now();
                ws.send(Message::text(room)).await?;
                loop {
                    match ws.next().await {
                        Some(Ok(Message::Text(t2))) if t2 == "joined" => break,
                        Some(Ok(_)) => {}
                        _ => return Err("the raw server closed during the join".into()),
                    }
                }
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>((ws, t.elapsed()))
            })
        })
        .collect();
    let mut join = Histogram::<u64>::new(3)?;
    let mut joined = Vec::new();
    for j in joins {
        let (ws, took) = j.await?.map_err(|e| e.to_string())?;
        join.record(took.as_micros() as u64)?;
        joined.push(ws);
    }
    // The storm: every client sends its messages; each must reach the room's other members.
    let each = ((users - 1) * messages) as u64;
    // Only a separate raw server's own CPU counts (in this process it would include the clients).
    let cpu_before = pid.and_then(|pid| crate::load::cpu_seconds(Some(pid)));
    let started = Instant::now();
    let clients = joined.len();
    let tasks: Vec<_> = joined
        .into_iter()
        .enumerate()
        .map(|(index, ws)| {
            let pace = crate::load::Pace::new(rate, clients, index);
            tokio::spawn(async move {
                let (mut sink, mut stream) = ws.split();
                let send = async {
                    for i in 0..messages {
                        pace.before(i).await;
                        let frame = format!(r#"{{"type":"message","content":"storm {i}"}}"#);
                        if sink.send(Message::text(frame)).await.is_err() {
                            break;
                        }
                    }
                };
                let receive = async {
                    let mut got = 0;
                    while got < each {
                        match stream.next().await {
                            Some(Ok(Message::Text(t))) if t.starts_with('{') => got += 1,
                            Some(Ok(_)) => {}
                            _ => break,
                        }
                    }
                    got
                };
                let ((), got) = tokio::join!(send, receive);
                got
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += tokio::time::timeout(Duration::from_secs(120), t).await??;
    }
    let elapsed = started.elapsed();
    let cpu = pid
        .and_then(|pid| crate::load::cpu_seconds(Some(pid)))
        .zip(cpu_before)
        .map(|(b, a)| b - a);
    if let Some(server) = server {
        server.abort();
    }
    Ok(RawRun {
        join,
        deliveries_per_s: total as f64 / elapsed.as_secs_f64(),
        deliveries_per_server_cpu_s: cpu.map(|cpu| total as f64 / cpu.max(1e-9)),
    })
}
