//! The server's embedded recorder, wired at the crate level: the server (`server/`) knows no
//! recorder and the recorder (`record/`, a client of the server) knows no server internals;
//! this connects them. [`Server::builder`] is defined here for that reason: the builder it
//! returns runs a [`Recorder`] inside the server when a recording finds no recorder connected
//! ([`ServerOptions::embedded_recorder`](crate::ServerOptions::embedded_recorder)).

use crate::call::{CallOptions, ReconnectPolicy, TlsRoots};
use crate::record::{Recorder, RecorderOptions};
use crate::server::{RecorderResult, RecorderTarget, RunRecorder, Server, ServerBuilder};

impl Server {
    /// A builder with default options, bound to `127.0.0.1:0` (a free loopback port).
    pub fn builder() -> ServerBuilder {
        ServerBuilder::new(Some(RunRecorder::new(run)))
    }
}

/// The server's own recorder: files under the server's recording directory, a call that does
/// not reconnect (the server starts another one when it needs it) and, with TLS, trusts the
/// server's own certificate.
async fn run(target: RecorderTarget) -> RecorderResult {
    let mut call = CallOptions::default().reconnect(ReconnectPolicy::never());
    if let Some(pem) = target.cert_pem {
        call = call.tls(TlsRoots::Pem(pem));
    }
    let options = RecorderOptions::default()
        .dir(target.dir)
        .call_options(call);
    Recorder::run(&target.url, &target.secret, options).await?;
    Ok(())
}
