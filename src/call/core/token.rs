//! The session's access token, as the core keeps it: the one in use, the ones sent in `refresh`
//! requests not answered yet, when it expires, and when a token provider is asked for the next.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::model::OperationId;

use super::super::policy::refresh::{RefreshStep, next_refresh};
use super::Now;

#[derive(Debug)]
pub(super) struct Token {
    /// The token the session holds now (the last refreshed one).
    current: String,
    /// Tokens sent in `refresh` requests not answered yet.
    refreshing: BTreeMap<OperationId, String>,
    /// When it expires (Unix seconds; 0: the server did not say).
    expires_at: u64,
    /// Whether a provider refreshes it.
    provider: bool,
    /// When to ask the provider next (none while it works, or without one).
    ask_at: Option<Instant>,
}

impl Token {
    pub(super) fn new(current: String, provider: bool) -> Self {
        Token {
            current,
            refreshing: BTreeMap::new(),
            expires_at: 0,
            provider,
            ask_at: None,
        }
    }

    pub(super) fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// The token a resume or a new login sends: the newest one, including one a `refresh`
    /// still in flight carries (the server may have applied it before the connection was lost;
    /// if it did not, the refresh is sent again after the resume and takes effect then).
    pub(super) fn newest(&self) -> &str {
        self.refreshing
            .values()
            .next_back()
            .unwrap_or(&self.current)
    }

    /// The token expires at `at` (as the server said at `now`): the provider is asked a
    /// minute before (or halfway for a short token).
    pub(super) fn expires(&mut self, now: Now, at: u64) {
        self.expires_at = at;
        self.schedule(now);
    }

    fn schedule(&mut self, now: Now) {
        self.ask_at = match (self.provider, next_refresh(self.expires_at, now.unix)) {
            (true, RefreshStep::Wait(wait)) if self.expires_at != 0 => Some(now.at + wait),
            _ => None,
        };
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.ask_at
    }

    /// Whether the provider is to be asked now (then not again until it answers).
    pub(super) fn due(&mut self, now: Now) -> bool {
        if self.ask_at.is_some_and(|at| at <= now.at) {
            self.ask_at = None;
            return true;
        }
        false
    }

    /// The provider failed (the shell logged why), or its token could not be sent: asked again
    /// later (at least a second from now).
    pub(super) fn provider_failed(&mut self, now: Now) {
        self.schedule(now);
    }

    /// A new session was logged in with [`newest`](Self::newest): that token is the session's,
    /// and the refreshes in flight are over (the server lost them with the old session).
    pub(super) fn logged_in_with_newest(&mut self) {
        if let Some((_, token)) = self.refreshing.pop_last() {
            self.current = token;
        }
        self.refreshing.clear();
    }

    /// `token` was sent in refresh `op`.
    pub(super) fn sent(&mut self, op: OperationId, token: String) {
        self.refreshing.insert(op, token);
    }

    /// Refresh `op` succeeded: its token is the session's. False when `op` was no refresh.
    pub(super) fn refreshed(&mut self, op: OperationId) -> bool {
        match self.refreshing.remove(&op) {
            Some(token) => {
                self.current = token;
                true
            }
            None => false,
        }
    }

    /// Request `op` failed: if it was a refresh, its token is not the session's, and the
    /// provider is asked again (at least a second from now).
    pub(super) fn refused(&mut self, now: Now, op: OperationId) {
        if self.refreshing.remove(&op).is_some() {
            self.schedule(now);
        }
    }
}
