//! `jrtc-server`: the jrtc signaling server as a standalone program.

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// The jrtc signaling server: rooms, participants, properties and messages over WebSocket.
#[derive(Debug, Parser)]
#[command(name = "jrtc-server", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7600")]
    bind: String,
    /// Log level or filter (e.g. `info`, `debug`, `jrtc=trace`); `RUST_LOG` overrides it.
    #[arg(long, default_value = "info")]
    log_level: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let filter =
        EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new(&args.log_level))?;
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let server = jrtc::Server::builder().bind(args.bind).start().await?;
    println!("jrtc-server listening on {}", server.url());
    tokio::signal::ctrl_c().await?;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}
