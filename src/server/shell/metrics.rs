//! The server's metrics, in one registry per server (an embedded server's are its own), encoded
//! in the Prometheus text format for `GET /metrics`. Counters move where things happen (one
//! atomic add); gauges are read off the core's state when scraped, so the hot paths keep nothing.

use std::sync::atomic::Ordering;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::server::hub::HubStats;
use crate::server::sfu::ForwardCounters;

/// A label naming a frame type, an error code, a state or an outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Kind {
    kind: String,
}

impl Kind {
    pub(crate) fn of(kind: &str) -> Self {
        Kind {
            kind: kind.to_owned(),
        }
    }
}

/// Every metric the server keeps.
pub(crate) struct Metrics {
    registry: Registry,
    /// One scrape at a time (the forwarding counters are copied in by difference).
    scraping: std::sync::Mutex<()>,
    pub(crate) logins: Counter,
    pub(crate) frames_in: Family<Kind, Counter>,
    pub(crate) frames_out: Family<Kind, Counter>,
    pub(crate) refusals: Family<Kind, Counter>,
    pub(crate) rate_limited: Counter,
    pub(crate) slow_consumers: Counter,
    pub(crate) join_latency: Histogram,
    pub(crate) request_latency: Histogram,
    pub(crate) invitations: Family<Kind, Counter>,
    pub(crate) messages: Counter,
    pub(crate) resumes: Counter,
    pub(crate) replayed: Counter,
    pub(crate) peer_connections: Family<Kind, Counter>,
    pub(crate) webhooks: Family<Kind, Counter>,
    pub(crate) api_requests: Family<Kind, Counter>,
    // Read off the state when scraped.
    connections: Family<Kind, Gauge>,
    sessions: Family<Kind, Gauge>,
    rooms: Gauge,
    participants: Gauge,
    publications: Gauge,
    subscriptions: Gauge,
    recordings: Family<Kind, Gauge>,
    recorders: Gauge,
    media_members: Gauge,
    forwarded_packets: Counter,
    forwarded_bytes: Counter,
    dropped_packets: Family<Kind, Counter>,
    webhook_queue: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// What the state says at scrape time.
pub(crate) struct Snapshot<'a> {
    pub(crate) waiting: usize,
    pub(crate) hub: HubStats,
    pub(crate) media_members: usize,
    pub(crate) forwarding: &'a ForwardCounters,
    pub(crate) webhook_queue: usize,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let latency = || Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        let m = Metrics {
            registry: Registry::with_prefix("jrtc"),
            scraping: std::sync::Mutex::new(()),
            logins: Counter::default(),
            frames_in: Family::default(),
            frames_out: Family::default(),
            refusals: Family::default(),
            rate_limited: Counter::default(),
            slow_consumers: Counter::default(),
            join_latency: latency(),
            request_latency: latency(),
            invitations: Family::default(),
            messages: Counter::default(),
            resumes: Counter::default(),
            replayed: Counter::default(),
            peer_connections: Family::default(),
            webhooks: Family::default(),
            api_requests: Family::default(),
            connections: Family::default(),
            sessions: Family::default(),
            rooms: Gauge::default(),
            participants: Gauge::default(),
            publications: Gauge::default(),
            subscriptions: Gauge::default(),
            recordings: Family::default(),
            recorders: Gauge::default(),
            media_members: Gauge::default(),
            forwarded_packets: Counter::default(),
            forwarded_bytes: Counter::default(),
            dropped_packets: Family::default(),
            webhook_queue: Gauge::default(),
        };
        m.register()
    }

    fn register(mut self) -> Self {
        let r = &mut self.registry;
        r.register("logins", "Sessions logged in (hello)", self.logins.clone());
        r.register(
            "frames_in",
            "Client frames taken, by type",
            self.frames_in.clone(),
        );
        r.register(
            "frames_out",
            "Server frames sent, by type (a broadcast counts once per receiver)",
            self.frames_out.clone(),
        );
        r.register(
            "refusals",
            "Requests refused, by error code",
            self.refusals.clone(),
        );
        r.register(
            "rate_limited_requests",
            "Requests refused for going over the request rate",
            self.rate_limited.clone(),
        );
        r.register(
            "slow_consumer_drops",
            "Connections closed because they did not read their events",
            self.slow_consumers.clone(),
        );
        r.register(
            "join_latency_seconds",
            "Time the core takes to answer a join",
            self.join_latency.clone(),
        );
        r.register(
            "request_latency_seconds",
            "Time the core takes to handle a client frame",
            self.request_latency.clone(),
        );
        r.register(
            "invitations",
            "Invitations by outcome (sent, accepted, rejected, canceled)",
            self.invitations.clone(),
        );
        r.register("messages", "In-call messages sent", self.messages.clone());
        r.register("resumes", "Sessions resumed", self.resumes.clone());
        r.register(
            "replayed_frames",
            "Frames replayed to resumed sessions",
            self.replayed.clone(),
        );
        r.register(
            "peer_connection_events",
            "Peer connections reported connected or failed",
            self.peer_connections.clone(),
        );
        r.register(
            "webhooks",
            "Webhook deliveries by outcome (delivered, retried, dropped)",
            self.webhooks.clone(),
        );
        r.register(
            "api_requests",
            "Server API requests, by outcome (ok or the error code)",
            self.api_requests.clone(),
        );
        r.register(
            "connections",
            "Connections open, by state (waiting: not logged in)",
            self.connections.clone(),
        );
        r.register(
            "sessions",
            "Sessions, by state (connected, or lost and held for a resume)",
            self.sessions.clone(),
        );
        r.register("rooms", "Rooms alive", self.rooms.clone());
        r.register(
            "participants",
            "Members of rooms (recorders included)",
            self.participants.clone(),
        );
        r.register(
            "publications",
            "Tracks published",
            self.publications.clone(),
        );
        r.register(
            "subscriptions",
            "Tracks received by members",
            self.subscriptions.clone(),
        );
        r.register(
            "recordings",
            "Rooms recording, by state",
            self.recordings.clone(),
        );
        r.register(
            "recorders",
            "Recorders connected and taking jobs",
            self.recorders.clone(),
        );
        r.register(
            "media_members",
            "Members whose media the SFU handles",
            self.media_members.clone(),
        );
        r.register(
            "forwarded_rtp_packets",
            "RTP packets forwarded (one per subscriber)",
            self.forwarded_packets.clone(),
        );
        r.register(
            "forwarded_rtp_bytes",
            "Bytes of RTP forwarded",
            self.forwarded_bytes.clone(),
        );
        r.register(
            "dropped_rtp_packets",
            "RTP packets a subscriber did not get, by reason",
            self.dropped_packets.clone(),
        );
        r.register(
            "webhook_queue",
            "Webhook deliveries waiting",
            self.webhook_queue.clone(),
        );
        self
    }

    /// Counts one of `family`'s `kind`.
    pub(crate) fn count(family: &Family<Kind, Counter>, kind: &str) {
        family.get_or_create(&Kind::of(kind)).inc();
    }

    /// The metrics as Prometheus text, with the gauges set from `now`.
    pub(crate) fn render(&self, now: Snapshot<'_>) -> String {
        let _one = self.scraping.lock().unwrap_or_else(|e| e.into_inner());
        let set = |family: &Family<Kind, Gauge>, kind: &str, value: usize| {
            family.get_or_create(&Kind::of(kind)).set(value as i64);
        };
        set(&self.connections, "waiting", now.waiting);
        let hub = &now.hub;
        set(&self.connections, "logged_in", hub.logged_in);
        set(
            &self.sessions,
            "connected",
            hub.sessions - hub.lost_sessions,
        );
        set(&self.sessions, "lost", hub.lost_sessions);
        self.rooms.set(hub.rooms as i64);
        self.participants.set(hub.participants as i64);
        self.publications.set(hub.publications as i64);
        self.subscriptions.set(hub.subscriptions as i64);
        for (state, n) in &hub.recordings {
            set(&self.recordings, state, *n);
        }
        self.recorders.set(hub.recorders as i64);
        self.media_members.set(now.media_members as i64);
        self.webhook_queue.set(now.webhook_queue as i64);
        let catch_up = |counter: &Counter, total: u64| {
            let seen = counter.get();
            if total > seen {
                counter.inc_by(total - seen);
            }
        };
        let f = now.forwarding;
        catch_up(&self.forwarded_packets, f.packets.load(Ordering::Relaxed));
        catch_up(&self.forwarded_bytes, f.bytes.load(Ordering::Relaxed));
        catch_up(
            &self.dropped_packets.get_or_create(&Kind::of("queue_full")),
            f.dropped_queue_full.load(Ordering::Relaxed),
        );
        catch_up(
            &self
                .dropped_packets
                .get_or_create(&Kind::of("not_negotiated")),
            f.dropped_not_negotiated.load(Ordering::Relaxed),
        );
        catch_up(
            &self.dropped_packets.get_or_create(&Kind::of("muted")),
            f.dropped_muted.load(Ordering::Relaxed),
        );
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String does not fail");
        text
    }
}
