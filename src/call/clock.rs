//! Time for the client core, read and waited on by the shells that run it: the tokio clock as
//! a `std::time::Instant` (so paused tokio time in tests moves it), and the wall clock for the
//! token's expiry.

use std::time::{SystemTime, UNIX_EPOCH};

use super::core::Now;

/// Now, as the core counts time.
pub(super) fn now() -> Now {
    Now {
        at: tokio::time::Instant::now().into_std(),
        unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    }
}

/// Sleeps until the core's next deadline (forever when it has none).
pub(super) async fn until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}
