//! Time for the client's policy cores (`policy/`), read and waited on by the tasks that run
//! them: the tokio clock as a `std::time::Instant`, so paused tokio time in tests moves it.

/// Now, as the policy cores count time.
pub(super) fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// Sleeps until a core's next deadline (forever when it has none).
pub(super) async fn until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}
