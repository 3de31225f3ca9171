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

use crate::protocol::ErrorCode;
use crate::server::hub::HubStats;
use crate::server::sfu::ForwardCounters;
use crate::server::sfu::port::PortCounts;

/// WARN lines of the WebRTC stack in this process (see [`count_media_stack_warning`]).
static MEDIA_STACK_WARNINGS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Counts one WARN line of the WebRTC stack (the `webrtc` and `rtc` crates), for
/// `jrtc_media_stack_warnings_total`. A program's log layer calls it for the lines it keeps out
/// of the log: most of them follow from what a client sends (a connection with no candidate
/// yet, media before its keys), so any client could otherwise drive the log's volume. The
/// count is the process's, shown by every server in it. `jrtc-server` does this itself.
pub fn count_media_stack_warning() {
    MEDIA_STACK_WARNINGS.fetch_add(1, Ordering::Relaxed);
}

/// Whether a log target belongs to the WebRTC stack (`webrtc…`, `rtc…`; not jrtc's own).
pub fn is_media_stack_target(target: &str) -> bool {
    target.starts_with("webrtc") || target.starts_with("rtc")
}

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
    /// Each member's link, each second: its level's bars (0 disconnected … 5 very good).
    pub(crate) link_quality: Histogram,
    /// Each member's link, each second: the worse direction's loss, as a ratio.
    pub(crate) link_loss: Histogram,
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
    port_datagrams: Family<Kind, Counter>,
    port_streams: Family<Kind, Counter>,
    webhook_queue: Gauge,
    media_stack_warnings: Counter,
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
    pub(crate) port: PortCounts,
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
            link_quality: Histogram::new([0.0, 1.0, 2.0, 3.0, 4.0, 5.0]),
            link_loss: Histogram::new([0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.3, 1.0]),
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
            port_datagrams: Family::default(),
            port_streams: Family::default(),
            webhook_queue: Gauge::default(),
            media_stack_warnings: Counter::default(),
        };
        m.known_labels();
        m.register()
    }

    /// Every label value the docs name, at 0 from the start: a counter a scraper has never
    /// seen cannot be told apart from one that is broken, and `rate()` needs the 0.
    fn known_labels(&self) {
        for code in ErrorCode::SENT {
            let _ = self.refusals.get_or_create(&Kind::of(&code.wire_name()));
        }
        let known: [(&Family<Kind, Counter>, &[&str]); 4] = [
            (
                &self.invitations,
                &["sent", "accepted", "rejected", "canceled"],
            ),
            (&self.peer_connections, &["connected", "failed"]),
            (&self.webhooks, &["delivered", "retried", "dropped"]),
            (
                &self.dropped_packets,
                &["queue_full", "not_negotiated", "muted", "duplicate"],
            ),
        ];
        for (family, kinds) in known {
            for kind in kinds {
                let _ = family.get_or_create(&Kind::of(kind));
            }
        }
        let _ = self.api_requests.get_or_create(&Kind::of("ok"));
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
            "link_quality",
            "Members' links, one observation per member per second: the second's net status as \
             signal bars (0 disconnected, 1 very bad, 2 bad, 3 normal, 4 good, 5 very good)",
            self.link_quality.clone(),
        );
        r.register(
            "link_loss_ratio",
            "Members' links, one observation per member per second with packets enough to \
             tell: the share lost of the worse direction",
            self.link_loss.clone(),
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
            "media_port_datagrams",
            "Datagrams the media port read (received), claimed by no connection (unrouted) or \
             dropped for a connection not reading fast enough (overflowed)",
            self.port_datagrams.clone(),
        );
        r.register(
            "media_port_tcp_streams",
            "ICE-over-TCP streams handed to a connection (accepted) or closed before (refused)",
            self.port_streams.clone(),
        );
        r.register(
            "webhook_queue",
            "Webhook deliveries waiting",
            self.webhook_queue.clone(),
        );
        r.register(
            "media_stack_warnings",
            "WARN lines of the WebRTC stack in this process, counted instead of logged",
            self.media_stack_warnings.clone(),
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
        let counted = hub.counted;
        catch_up(&self.logins, counted.logins);
        catch_up(&self.resumes, counted.resumes);
        catch_up(&self.replayed, counted.replayed);
        catch_up(&self.messages, counted.messages);
        for (kind, total) in [
            ("sent", counted.invitations_sent),
            ("accepted", counted.invitations_accepted),
            ("rejected", counted.invitations_rejected),
            ("canceled", counted.invitations_canceled),
        ] {
            catch_up(&self.invitations.get_or_create(&Kind::of(kind)), total);
        }
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
        catch_up(
            &self.dropped_packets.get_or_create(&Kind::of("duplicate")),
            f.dropped_duplicate.load(Ordering::Relaxed),
        );
        catch_up(
            &self.dropped_packets.get_or_create(&Kind::of("late")),
            f.dropped_late.load(Ordering::Relaxed),
        );
        let port = now.port;
        for (kind, total) in [
            ("received", port.received),
            ("unrouted", port.unrouted),
            ("overflowed", port.overflowed),
        ] {
            catch_up(&self.port_datagrams.get_or_create(&Kind::of(kind)), total);
        }
        for (kind, total) in [
            ("accepted", port.tcp_accepted),
            ("refused", port.tcp_refused),
        ] {
            catch_up(&self.port_streams.get_or_create(&Kind::of(kind)), total);
        }
        catch_up(
            &self.media_stack_warnings,
            MEDIA_STACK_WARNINGS.load(Ordering::Relaxed),
        );
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String does not fail");
        text
    }
}

/// The two text formats `/metrics` speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// OpenMetrics 1.0 (`application/openmetrics-text`), what prometheus-client writes.
    OpenMetrics,
    /// The classic Prometheus text format 0.0.4 (`text/plain`), for scrapers and tools that
    /// ask for it or name no format.
    Classic,
}

impl Format {
    /// The format an `Accept` header prefers: OpenMetrics only when it is asked for with a
    /// higher quality than the classic text (or alone); the classic text otherwise, including
    /// without the header.
    pub(crate) fn negotiate(accept: Option<&str>) -> Format {
        let (mut open, mut classic) = (0.0f32, 0.0f32);
        for range in accept.unwrap_or("").split(',') {
            let mut parts = range.split(';').map(str::trim);
            let kind = parts.next().unwrap_or("").to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            match kind.as_str() {
                "application/openmetrics-text" => open = open.max(q),
                "text/plain" | "text/*" | "*/*" => classic = classic.max(q),
                _ => {}
            }
        }
        if open > 0.0 && open >= classic {
            Format::OpenMetrics
        } else {
            Format::Classic
        }
    }

    /// The `Content-Type` of a page in this format.
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Classic => "text/plain; version=0.0.4; charset=utf-8",
        }
    }

    /// `text` (OpenMetrics, as prometheus-client writes it) in this format. The classic text
    /// differs for what this server exports only in the names of counters' HELP and TYPE
    /// lines (which carry the samples' `_total`), and has no `# UNIT` and no `# EOF`.
    pub(crate) fn write(self, text: String) -> String {
        if self == Format::OpenMetrics {
            return text;
        }
        let counters: std::collections::HashSet<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .filter_map(|rest| rest.strip_suffix(" counter"))
            .collect();
        let mut out = String::with_capacity(text.len() + 16 * counters.len());
        for line in text.lines() {
            if line == "# EOF" || line.starts_with("# UNIT ") {
                continue;
            }
            let comment = ["# HELP ", "# TYPE "]
                .into_iter()
                .find(|prefix| line.starts_with(prefix));
            match comment {
                Some(prefix) => {
                    let rest = &line[prefix.len()..];
                    let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                    let tail = if tail == "unknown" { "untyped" } else { tail };
                    let suffix = if counters.contains(name) {
                        "_total"
                    } else {
                        ""
                    };
                    out.push_str(&format!("{prefix}{name}{suffix} {tail}"));
                }
                None => out.push_str(line),
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Format;

    #[test]
    fn the_format_follows_the_accept_header() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(
            Format::negotiate(Some(
                "text/plain;version=0.0.4;q=1,application/openmetrics-text;q=0.5"
            )),
            Format::Classic
        );
        assert_eq!(Format::negotiate(None), Format::Classic);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Classic);
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text")),
            Format::OpenMetrics
        );
        assert_eq!(Format::negotiate(Some(";;,q=x, ,")), Format::Classic);
    }

    #[test]
    fn the_classic_text_names_counters_by_their_samples() {
        let open = "# HELP jrtc_logins Sessions.\n# TYPE jrtc_logins counter\njrtc_logins_total 3\n\
                    # HELP jrtc_rooms Rooms.\n# TYPE jrtc_rooms gauge\njrtc_rooms 1\n# EOF\n";
        assert_eq!(
            Format::Classic.write(open.to_owned()),
            "# HELP jrtc_logins_total Sessions.\n# TYPE jrtc_logins_total counter\njrtc_logins_total 3\n\
             # HELP jrtc_rooms Rooms.\n# TYPE jrtc_rooms gauge\njrtc_rooms 1\n"
        );
        assert_eq!(Format::OpenMetrics.write(open.to_owned()), open);
    }
}
