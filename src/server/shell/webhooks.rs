//! Webhooks: the core's notices, posted as JSON to every configured URL. Each URL has its own
//! bounded queue and one task delivering in order (so per room too), retrying with backoff; a
//! full queue drops the new event and counts it. Posting never waits: a receiver that is down or
//! slow holds up only its own queue, never a call.
//!
//! Each body is signed: `Jrtc-Signature: sha256=<hex HMAC-SHA256 of the body under the server's
//! token secret>` (the backend has the secret: it mints the tokens).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use hyper::Method;
use tokio::sync::mpsc;

use super::metrics::Metrics;
use crate::http_client::HttpClient;
use crate::model::{ServerEvent, Webhook};

/// The header carrying the body's signature.
pub(crate) const SIGNATURE_HEADER: &str = "jrtc-signature";

/// The first wait before a retry; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// The webhook side of a server: one queue per URL.
pub(crate) struct Webhooks {
    targets: Vec<Target>,
    /// Names events: `{run}-{n}`.
    run: String,
    next: u64,
}

struct Target {
    tx: mpsc::Sender<Bytes>,
    waiting: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

/// How each URL's deliveries go.
#[derive(Clone)]
pub(crate) struct Delivery {
    pub(crate) secret: Arc<Vec<u8>>,
    pub(crate) timeout: Duration,
    pub(crate) attempts: u32,
    pub(crate) metrics: Arc<Metrics>,
}

impl Webhooks {
    /// Starts one delivery task per URL (none without URLs).
    pub(crate) fn start(urls: &[String], queue: usize, delivery: Delivery) -> Self {
        let targets = urls
            .iter()
            .filter_map(|url| HttpClient::new(url, crate::tls::TlsRoots::Platform).ok())
            .map(|client| {
                let (tx, rx) = mpsc::channel(queue);
                let waiting = Arc::new(AtomicUsize::new(0));
                let task = tokio::spawn(deliver(client, rx, waiting.clone(), delivery.clone()));
                Target { tx, waiting, task }
            })
            .collect();
        Webhooks {
            targets,
            run: crate::auth::random_hex::<4>(),
            next: 0,
        }
    }

    /// Queues `event` (seen at `at_ms`) for every URL; never waits.
    pub(crate) fn post(&mut self, event: ServerEvent, at_ms: u64, metrics: &Metrics) {
        if self.targets.is_empty() {
            return;
        }
        self.next += 1;
        let webhook = Webhook {
            id: format!("{}-{}", self.run, self.next),
            at_ms,
            event,
        };
        let body = Bytes::from(serde_json::to_vec(&webhook).expect("events serialize"));
        for target in &self.targets {
            if target.tx.try_send(body.clone()).is_ok() {
                target.waiting.fetch_add(1, Ordering::Relaxed);
            } else {
                Metrics::count(&metrics.webhooks, "dropped");
            }
        }
    }

    /// Takes no more events; the delivering tasks end once their queues are delivered (or
    /// given up), which the returned handles say.
    pub(crate) fn close(&mut self) -> Vec<tokio::task::JoinHandle<()>> {
        std::mem::take(&mut self.targets)
            .into_iter()
            .map(|t| t.task)
            .collect()
    }

    /// Deliveries waiting, over every URL.
    pub(crate) fn waiting(&self) -> usize {
        self.targets
            .iter()
            .map(|t| t.waiting.load(Ordering::Relaxed))
            .sum()
    }
}

/// Delivers one URL's events in order, each until it is taken or out of tries.
async fn deliver(
    mut client: HttpClient,
    mut rx: mpsc::Receiver<Bytes>,
    waiting: Arc<AtomicUsize>,
    delivery: Delivery,
) {
    while let Some(body) = rx.recv().await {
        let signature = sign(&delivery.secret, &body);
        let mut backoff = FIRST_BACKOFF;
        let mut delivered = false;
        for attempt in 1..=delivery.attempts {
            let headers = [
                ("content-type", "application/json"),
                (SIGNATURE_HEADER, signature.as_str()),
            ];
            let sent = tokio::time::timeout(
                delivery.timeout,
                client.request(Method::POST, None, &headers, body.clone()),
            )
            .await;
            match sent {
                Ok(Ok((status, _))) if status.is_success() => {
                    delivered = true;
                    break;
                }
                Ok(Ok((status, _))) => {
                    tracing::debug!(url = %client.uri(), attempt, %status, "webhook refused")
                }
                Ok(Err(e)) => {
                    tracing::debug!(url = %client.uri(), attempt, error = %e, "webhook not taken")
                }
                Err(_) => {
                    tracing::debug!(url = %client.uri(), attempt, "webhook timed out");
                    client.reset();
                }
            }
            if attempt < delivery.attempts {
                Metrics::count(&delivery.metrics.webhooks, "retried");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        waiting.fetch_sub(1, Ordering::Relaxed);
        if delivered {
            Metrics::count(&delivery.metrics.webhooks, "delivered");
        } else {
            tracing::warn!(url = %client.uri(), "a webhook was given up after every try");
            Metrics::count(&delivery.metrics.webhooks, "dropped");
        }
    }
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `secret`.
pub(crate) fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes any key size");
    mac.update(body);
    format!("sha256={}", crate::auth::hex(&mac.finalize().into_bytes()))
}
