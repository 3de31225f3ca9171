//! The client's decisions, sans-IO: each part takes inputs with the time they happen at and
//! says what to do; the tasks in `call/` only move bytes and time. So far: the connection
//! policy ([`link`]: pings, a silent server, the reconnect schedule) and the token refresh
//! timing ([`refresh`]). The session core (`call/session.rs`: server frames into events and
//! outcomes) is sans-IO too.

pub(crate) mod link;
pub(crate) mod recovery;
pub(crate) mod refresh;
