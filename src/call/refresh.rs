//! The call's token refresher: with a [`TokenProvider`], a call asks it for a new token before
//! the current one expires and hands that to the server (`refresh`), so a long call outlives
//! any one token. It holds the call weakly: dropping the last handle still ends the call.

use std::sync::Weak;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use super::policy::refresh::{RefreshStep, next_refresh};
use super::{Call, CallError, Inner, TokenProvider};

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
        let RefreshStep::Wait(wait) = next_refresh(expires_at, unix_now()) else {
            return;
        };
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
