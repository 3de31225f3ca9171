//! The call's token refresher: with a [`TokenProvider`], a call asks it for a new token before
//! the current one expires and hands that to the server (`refresh`), so a long call outlives
//! any one token. It holds the call weakly: dropping the last handle still ends the call.

use std::sync::Weak;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use super::{Call, CallError, Inner, TokenProvider};

/// How long before expiry a token is refreshed: a minute, or half of what is left if less.
fn refresh_in(expires_at: u64, now: u64) -> Duration {
    let left = expires_at.saturating_sub(now);
    let margin = (left / 2).min(60);
    Duration::from_secs(left - margin)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(super) async fn run(
    call: Weak<Inner>,
    provider: TokenProvider,
    mut expiry: watch::Receiver<u64>,
) {
    loop {
        let expires_at = *expiry.borrow_and_update();
        if expires_at <= unix_now() {
            // Expired: the server has ended the session (or will at once).
            return;
        }
        // At least a second between attempts, so a failing provider is not called in a loop:
        // when a refresh fails, the expiry stays and the next wait is half of what is left.
        let wait = refresh_in(expires_at, unix_now()).max(Duration::from_secs(1));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            changed = expiry.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        }
        if call.strong_count() == 0 {
            return;
        }
        // The provider runs without a handle on the call, so dropping the last handle while it
        // works still ends the call.
        let token = match (provider.0)().await {
            Ok(token) => token,
            Err(e) => {
                tracing::warn!(error = %e, "the token provider failed");
                continue;
            }
        };
        let Some(inner) = call.upgrade() else {
            return;
        };
        let call = Call { inner };
        match call.refresh_token(token).await {
            // Its outcome is the application's to see (`Completed`); success moves the expiry,
            // which wakes this loop.
            Ok(_) => {}
            Err(CallError::Closed { .. }) => return,
            Err(e) => tracing::warn!(error = %e, "refreshing the access token failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refreshes_a_minute_before_expiry_or_halfway_for_short_tokens() {
        assert_eq!(refresh_in(1_000 + 3600, 1_000), Duration::from_secs(3540));
        assert_eq!(refresh_in(1_000 + 10, 1_000), Duration::from_secs(5));
        assert_eq!(refresh_in(1_000, 2_000), Duration::ZERO);
    }
}
