//! When a call refreshes its access token, sans-IO: the wall clock comes in as an argument (the
//! token's expiry is a Unix time), the refresher task (`call/refresh.rs`) waits and asks.

use std::time::Duration;

/// What the refresher does next, for a token that expires at `expires_at` (Unix seconds) when
/// it is `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RefreshStep {
    /// Wait this long, then get a new token and hand it to the server.
    Wait(Duration),
    /// Stop: the token has expired (the server ends the session, or has).
    Stop,
}

/// A minute before expiry, or halfway through what is left for a short token; never sooner
/// than a second from now, so a failing provider (the expiry stays when a refresh fails) is
/// not called in a loop.
pub(crate) fn next_refresh(expires_at: u64, now: u64) -> RefreshStep {
    if expires_at <= now {
        return RefreshStep::Stop;
    }
    let left = expires_at - now;
    let margin = (left / 2).min(60);
    RefreshStep::Wait(Duration::from_secs(left - margin).max(Duration::from_secs(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refreshes_a_minute_before_expiry_or_halfway_for_short_tokens() {
        let wait = |expires_at, now| match next_refresh(expires_at, now) {
            RefreshStep::Wait(d) => Some(d.as_secs()),
            RefreshStep::Stop => None,
        };
        assert_eq!(wait(1_000 + 3600, 1_000), Some(3540));
        assert_eq!(wait(1_000 + 10, 1_000), Some(5));
        // At least a second apart, even at the very end.
        assert_eq!(wait(1_001, 1_000), Some(1));
        assert_eq!(wait(1_000, 1_000), None);
        assert_eq!(wait(1_000, 2_000), None);
    }
}
