//! `jrtc-server`: the jrtc signaling server as a standalone program, and a token minter.

use std::path::PathBuf;
use std::time::Duration;

mod load;
mod raw;

use clap::{Args, Parser, Subcommand};
use jrtc::{AccessToken, Grants, Role};
use tracing_subscriber::EnvFilter;

/// The jrtc signaling server: rooms, participants, invitations, properties and messages over
/// WebSocket, with signed access tokens.
#[derive(Debug, Parser)]
#[command(name = "jrtc-server", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server until SIGTERM or SIGINT (Ctrl-C), then drain: goodbye to every client
    /// (saying whether to reconnect), then exit 0.
    Serve(Serve),
    /// Mint an access token and print it.
    Token(Token),
    /// Load-test a server (an embedded one by default): N rooms × M users connect, join, send a
    /// message storm and leave; prints latencies, throughput, memory and CPU.
    LoadTest(load::LoadTest),
    /// Run the load test's raw baseline server (a minimal room server on tokio-tungstenite), to
    /// give it a process (and a core) of its own: `load-test --raw-url`.
    RawServe(RawServe),
}

/// Options of `raw-serve`.
#[derive(Debug, clap::Args)]
struct RawServe {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7812")]
    bind: std::net::SocketAddr,
}

/// Where the token secret comes from: the `JRTC_SECRET` environment variable or a file.
#[derive(Debug, Args)]
struct SecretArgs {
    /// A file holding the secret (its bytes, trailing newline removed).
    #[arg(long)]
    secret_file: Option<PathBuf>,
    /// The secret itself; prefer the environment or a file over the command line.
    #[arg(long, env = "JRTC_SECRET", hide_env_values = true)]
    secret: Option<String>,
}

impl SecretArgs {
    fn load(&self) -> Result<Option<Vec<u8>>, Box<dyn std::error::Error>> {
        if let Some(path) = &self.secret_file {
            let mut bytes = std::fs::read(path)?;
            while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                bytes.pop();
            }
            return Ok(Some(bytes));
        }
        Ok(self.secret.clone().map(String::into_bytes))
    }
}

#[derive(Debug, Args)]
struct Serve {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7600")]
    bind: String,
    /// Log level or filter (e.g. `info`, `debug`, `jrtc=trace`); `RUST_LOG` overrides it.
    #[arg(long, default_value = "info")]
    log_level: String,
    /// Tell clients not to reconnect when the server stops (by default the goodbye says
    /// reconnect: a restart, or another server, follows).
    #[arg(long)]
    no_reconnect_hint: bool,
    /// A development server: without a secret, a random one is made (no token from outside
    /// can log in then). Never for production.
    #[arg(long)]
    dev: bool,
    /// Address the SFU's peer connections bind (port 0: a free port per connection).
    #[arg(long, default_value = "127.0.0.1:0")]
    media_bind: std::net::SocketAddr,
    /// An address to announce in ICE candidates instead of the bound one (repeat for more).
    #[arg(long)]
    media_public_ip: Vec<String>,
    /// Threads that forward media; each room's media runs on one (0: one per core).
    #[arg(long, default_value_t = 0)]
    media_workers: usize,
    #[command(flatten)]
    secret: SecretArgs,
}

#[derive(Debug, Args)]
struct Token {
    /// The user id.
    #[arg(long)]
    user: String,
    /// The display name.
    #[arg(long)]
    name: Option<String>,
    /// A room the token allows (repeat for more); none: any room.
    #[arg(long)]
    room: Vec<String>,
    /// `host` joins every room as a host; `guest` lets the room decide.
    #[arg(long, value_parser = ["host", "guest"])]
    role: Option<String>,
    /// Grants, comma-separated: publish, message, moderate, record, set_properties, all, none.
    #[arg(long, value_delimiter = ',', default_value = "publish,message")]
    grants: Vec<String>,
    /// Validity in seconds.
    #[arg(long, default_value_t = 6 * 3600)]
    ttl: u64,
    #[command(flatten)]
    secret: SecretArgs,
}

fn grants(names: &[String]) -> Result<Grants, String> {
    let mut g = Grants::none();
    for name in names {
        g = match name.as_str() {
            "publish" => g.publish(true),
            "message" => g.message(true),
            "moderate" => g.moderate(true),
            "record" => g.record(true),
            "set_properties" => g.set_properties(true),
            "all" => Grants::all(),
            "none" => Grants::none(),
            other => return Err(format!("unknown grant `{other}`")),
        };
    }
    Ok(g)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    match Cli::parse().command {
        Command::Serve(args) => serve(args).await,
        Command::LoadTest(args) => load::run(args).await,
        Command::RawServe(args) => {
            let listener = tokio::net::TcpListener::bind(args.bind).await?;
            eprintln!(
                "raw baseline server listening on ws://{}",
                listener.local_addr()?
            );
            tokio::select! {
                () = raw::serve(listener) => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            Ok(())
        }
        Command::Token(args) => {
            let secret = args
                .secret
                .load()?
                .ok_or("no secret: set JRTC_SECRET or pass --secret-file")?;
            let mut token = AccessToken::new(&args.user)
                .ttl(Duration::from_secs(args.ttl))
                .grants(grants(&args.grants)?);
            if let Some(name) = &args.name {
                token = token.name(name);
            }
            for room in &args.room {
                token = token.room(room.as_str());
            }
            match args.role.as_deref() {
                Some("host") => token = token.role(Role::Host),
                Some(_) => token = token.role(Role::Guest),
                None => {}
            }
            println!("{}", token.sign(&secret)?);
            Ok(())
        }
    }
}

async fn serve(args: Serve) -> Result<(), Box<dyn std::error::Error>> {
    let filter =
        EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new(&args.log_level))?;
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let mut builder = jrtc::Server::builder()
        .bind(args.bind)
        .media_addresses(args.media_bind, args.media_public_ip)
        .media_workers(args.media_workers);
    if let Some(secret) = args.secret.load()? {
        builder = builder.secret(secret);
    }
    if args.dev {
        builder = builder.development();
    }
    let server = builder
        .reconnect_after_shutdown(!args.no_reconnect_hint)
        .start()
        .await?;
    println!("jrtc-server listening on {}", server.url());
    // SIGTERM (systemd, docker, Kubernetes) and SIGINT (Ctrl-C) both drain: stop accepting,
    // goodbye to every client, then exit 0.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: draining"),
        _ = term.recv() => tracing::info!("SIGTERM: draining"),
    }
    server.shutdown().await;
    Ok(())
}
