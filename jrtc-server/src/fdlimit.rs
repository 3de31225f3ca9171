//! The open-file limit: a server holds one descriptor per connection (and per media socket), and
//! the usual soft limit of 1,024 is soon reached. The soft limit may be raised up to the hard one
//! without privileges.

/// Raises the soft open-file limit to the hard limit; returns (before, after), or `None` when
/// the limit cannot be read.
pub fn raise() -> Option<(libc::rlim_t, libc::rlim_t)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: both calls only read or write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        let before = limit.rlim_cur;
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            return Some((before, before));
        }
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Some((before, before));
        }
        Some((before, limit.rlim_cur))
    }
}
