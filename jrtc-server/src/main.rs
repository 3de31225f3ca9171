//! `jrtc-server`: the jrtc signaling server as a standalone program, and a token minter.

use std::path::PathBuf;
use std::time::Duration;

mod api_cli;
mod config;
mod fdlimit;
mod load;
mod raw;

use clap::{Args, Parser, Subcommand};
use jrtc::{AccessToken, Grants, Revocation, Role};
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
    /// Tell a running server to refuse a token (by its id) or every token of a user issued
    /// before a time; sessions logged in with them end. Signs an admin token with the secret.
    Revoke(Revoke),
    /// Load-test a server (an embedded one by default): N rooms × M users connect, join, send a
    /// message storm and leave; prints latencies, throughput, memory and CPU.
    LoadTest(load::LoadTest),
    /// Run a recorder: connect to a server, take its recording jobs, write the files under
    /// `--dir`. Exits when its connection to the server ends (run it under a supervisor that
    /// restarts it).
    Recorder(RecorderArgs),
    /// The server API's rooms (docs/api.md): list, show, create, end. Signs an admin token with
    /// the secret.
    #[command(subcommand)]
    Rooms(api_cli::RoomsCommand),
    /// The server API's participants: remove (kick or ban), mute.
    #[command(subcommand)]
    Participants(api_cli::ParticipantsCommand),
    /// Configuration files: `config example` prints a commented one with every `serve` option.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run the load test's raw baseline server (a minimal room server on tokio-tungstenite), to
    /// give it a process (and a core) of its own: `load-test --raw-url`.
    RawServe(RawServe),
}

/// `config` subcommands.
#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print a commented configuration with every `serve` option and its default.
    Example,
    /// Check a configuration file (and print the options it sets, secrets left out).
    Check {
        /// The file.
        file: PathBuf,
    },
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
    /// A configuration file (TOML; `jrtc-server config example` prints one): its values apply
    /// where neither a flag nor its environment variable is given.
    #[arg(long, env = "JRTC_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7600", env = "JRTC_BIND")]
    bind: String,
    /// Log level or filter for jrtc's own logs (e.g. `info`, `debug`, `jrtc=trace`); other
    /// crates (the WebRTC stack, which logs per negotiation) are capped at `warn` unless the
    /// filter names them. `RUST_LOG` overrides it all.
    #[arg(long, default_value = "info", env = "JRTC_LOG_LEVEL")]
    log_level: String,
    /// `text` (for people) or `json` (one object per line, for log shippers).
    #[arg(long, value_enum, default_value = "text", env = "JRTC_LOG_FORMAT")]
    log_format: LogFormat,
    /// The TLS certificate chain (PEM) to serve `wss://` with; needs `--tls-key`.
    #[arg(long, requires = "tls_key", env = "JRTC_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// The TLS private key (PEM) of `--tls-cert`.
    #[arg(long, requires = "tls_cert", env = "JRTC_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Longest token lifetime accepted, in seconds (from `iat`, and from now, to `exp`).
    #[arg(long, default_value_t = 24 * 3600, env = "JRTC_MAX_TOKEN_LIFETIME")]
    max_token_lifetime: u64,
    /// Most connections not logged in yet from one IP address (newer ones are refused).
    #[arg(
        long,
        default_value_t = 64,
        env = "JRTC_MAX_UNAUTHENTICATED_PER_ADDRESS"
    )]
    max_unauthenticated_per_address: usize,
    /// Most connections not logged in yet in all (a newer one closes the oldest).
    #[arg(long, default_value_t = 1024, env = "JRTC_MAX_UNAUTHENTICATED")]
    max_unauthenticated: usize,
    /// Tell clients not to reconnect when the server stops (by default the goodbye says
    /// reconnect: a restart, or another server, follows).
    #[arg(long, env = "JRTC_NO_RECONNECT_HINT")]
    no_reconnect_hint: bool,
    /// A development server: without a secret, a random one is made (no token from outside
    /// can log in then). Never for production.
    #[arg(long, env = "JRTC_DEV")]
    dev: bool,
    /// The first UDP port media goes through: each media worker has one, this one and the
    /// ports after it (port 0: free ports).
    #[arg(long, default_value = "127.0.0.1:0", env = "JRTC_MEDIA_BIND")]
    media_bind: std::net::SocketAddr,
    /// The TCP port for ICE over TCP, for clients whose network blocks UDP (port 0: a free
    /// port).
    #[arg(long, default_value = "127.0.0.1:0", env = "JRTC_MEDIA_TCP_BIND")]
    media_tcp_bind: std::net::SocketAddr,
    /// No ICE over TCP: media over UDP only.
    #[arg(long, env = "JRTC_NO_MEDIA_TCP")]
    no_media_tcp: bool,
    /// An address to announce in ICE candidates instead of the bound one (repeat for more).
    #[arg(long, env = "JRTC_MEDIA_PUBLIC_IP")]
    media_public_ip: Vec<String>,
    /// Threads that forward media; each room's media runs on one (0: one per core).
    #[arg(long, default_value_t = 0, env = "JRTC_MEDIA_WORKERS")]
    media_workers: usize,
    /// Where the embedded recorder writes recordings.
    #[arg(long, default_value = "recordings", env = "JRTC_RECORDING_DIR")]
    recording_dir: PathBuf,
    /// Run no recorder in the server: recordings need a `jrtc-server recorder` process.
    #[arg(long, env = "JRTC_NO_EMBEDDED_RECORDER")]
    no_embedded_recorder: bool,
    /// Most rooms at once.
    #[arg(long, default_value_t = 10_000, env = "JRTC_MAX_ROOMS")]
    max_rooms: usize,
    /// Most members in one room (a room made by the server API may allow fewer).
    #[arg(long, default_value_t = 256, env = "JRTC_MAX_PARTICIPANTS")]
    max_participants: usize,
    /// Seconds a lost session is held for its client to resume.
    #[arg(long, default_value_t = 20, env = "JRTC_GRACE_PERIOD")]
    grace_period: u64,
    /// Seconds an invitation rings by default.
    #[arg(long, default_value_t = 30, env = "JRTC_INVITE_TIMEOUT")]
    invite_timeout: u64,
    /// POST room, participant, track and recording events to this URL (repeat for more;
    /// signed with the token secret, see docs/api.md).
    #[arg(long, env = "JRTC_WEBHOOK_URL", value_delimiter = ',')]
    webhook_url: Vec<String>,
    /// Events one webhook URL may have waiting; past that, new ones are dropped and counted.
    #[arg(long, default_value_t = 10_000, env = "JRTC_WEBHOOK_QUEUE")]
    webhook_queue: usize,
    /// Seconds one webhook delivery may take.
    #[arg(long, default_value_t = 5, env = "JRTC_WEBHOOK_TIMEOUT")]
    webhook_timeout: u64,
    /// Tries per webhook event before it is given up.
    #[arg(long, default_value_t = 8, env = "JRTC_WEBHOOK_ATTEMPTS")]
    webhook_attempts: u32,
    /// On SIGTERM, seconds to keep serving with /readyz answering 503 before saying goodbye
    /// (so that a load balancer stops sending new calls first).
    #[arg(long, default_value_t = 0, env = "JRTC_DRAIN_DELAY")]
    drain_delay: u64,
    /// Serve the call page at / (true or false; by default only a --dev server does). The
    /// JavaScript client, /jrtc.js, is served either way.
    #[arg(long, env = "JRTC_CALL_PAGE")]
    call_page: Option<bool>,
    #[command(flatten)]
    secret: SecretArgs,
}

#[derive(Debug, Args)]
struct RecorderArgs {
    /// The server's URL (`ws://…` or `wss://…`).
    #[arg(long)]
    url: String,
    /// Where recordings go (one directory per recording).
    #[arg(long, default_value = "recordings")]
    dir: PathBuf,
    /// The recorder's user id.
    #[arg(long, default_value = "recorder")]
    user: String,
    /// Abort a job that receives no media for this many seconds while tracks are unmuted.
    #[arg(long, default_value_t = 30)]
    no_media_timeout: u64,
    /// Ask a recorded camera or screen for a key frame when it sent none for this many seconds
    /// (a seek in the file then decodes about that much video first; taken as 0.5 when
    /// shorter); 0: only after losses.
    #[arg(long, default_value_t = 2.0)]
    keyframe_interval: f64,
    /// A PEM file of the CA that signed a `wss://` server's certificate.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Log level (as for `serve`).
    #[arg(long, default_value = "info")]
    log_level: String,
    /// Log format (as for `serve`).
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(flatten)]
    secret: SecretArgs,
}

async fn recorder(args: RecorderArgs) -> Result<(), Box<dyn std::error::Error>> {
    init_logs(&args.log_level, args.log_format)?;
    let secret = args
        .secret
        .load()?
        .ok_or("no secret: set JRTC_SECRET or pass --secret-file")?;
    let mut call = jrtc::CallOptions::default().reconnect(jrtc::ReconnectPolicy::never());
    if let Some(ca) = &args.ca {
        call = call.tls(jrtc::TlsRoots::pem(std::fs::read(ca)?));
    }
    let seconds = args.keyframe_interval;
    let keyframe_interval = match Duration::try_from_secs_f64(seconds) {
        Ok(Duration::ZERO) => None,
        Ok(interval) => Some(interval),
        Err(e) => return Err(format!("--keyframe-interval {seconds}: {e}").into()),
    };
    let options = jrtc::record::RecorderOptions::default()
        .user(&args.user)
        .dir(&args.dir)
        .no_media_timeout(Duration::from_secs(args.no_media_timeout))
        .keyframe_interval(keyframe_interval)
        .call_options(call);
    println!(
        "jrtc recorder for {} writing to {}",
        args.url,
        args.dir.display()
    );
    jrtc::record::Recorder::run(&args.url, &secret, options).await?;
    Ok(())
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
    /// A room the holder joins as a host (repeat for more).
    #[arg(long)]
    host_of: Vec<String>,
    /// Grants, comma-separated: publish, message, moderate, record, set_properties, create,
    /// admin, recorder, host (all but admin and recorder), all (all but recorder), none.
    #[arg(long, value_delimiter = ',', default_value = "publish,message")]
    grants: Vec<String>,
    /// The token's id (`jti`), for revoking it; default: a random one, printed to stderr.
    #[arg(long)]
    id: Option<String>,
    /// Validity in seconds.
    #[arg(long, default_value_t = 6 * 3600)]
    ttl: u64,
    #[command(flatten)]
    secret: SecretArgs,
}

#[derive(Debug, Args)]
struct Revoke {
    /// The server's URL (`ws://…` or `wss://…`).
    #[arg(long)]
    url: String,
    /// The id (`jti`) of the token to revoke.
    #[arg(long, conflicts_with_all = ["user", "before"], required_unless_present = "user")]
    jti: Option<String>,
    /// Revoke every token of this user issued before `--before`.
    #[arg(long, requires = "before")]
    user: Option<String>,
    /// Seconds since the Unix epoch, or `now`.
    #[arg(long)]
    before: Option<String>,
    /// A PEM file of the CA that signed a `wss://` server's certificate (default: the
    /// platform's roots).
    #[arg(long)]
    ca: Option<PathBuf>,
    #[command(flatten)]
    secret: SecretArgs,
}

async fn revoke(args: Revoke) -> Result<(), Box<dyn std::error::Error>> {
    let secret = args
        .secret
        .load()?
        .ok_or("no secret: set JRTC_SECRET or pass --secret-file")?;
    let revocation = match (&args.jti, &args.user, &args.before) {
        (Some(jti), _, _) => Revocation::token(jti.as_str()),
        (None, Some(user), Some(before)) => {
            let at = match before.as_str() {
                "now" => std::time::SystemTime::now(),
                secs => std::time::UNIX_EPOCH
                    .checked_add(Duration::from_secs(secs.parse()?))
                    .ok_or("--before is too far in the future")?,
            };
            Revocation::user_before(user.as_str(), at)
        }
        _ => return Err("give --jti, or --user and --before".into()),
    };
    // A short-lived admin identity of its own, for this one request.
    let token = AccessToken::new("jrtc-admin-cli")
        .ttl(Duration::from_secs(60))
        .grants(Grants::none().admin(true))
        .sign(&secret)?;
    let mut options = jrtc::CallOptions::default().reconnect(jrtc::ReconnectPolicy::never());
    if let Some(ca) = &args.ca {
        options = options.tls(jrtc::TlsRoots::pem(std::fs::read(ca)?));
    }
    let call = jrtc::Call::connect_with(&args.url, token, options).await?;
    let op = call.revoke(revocation).await?;
    call.outcome(op).await?;
    call.close().await;
    println!("revoked");
    Ok(())
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
            "create" => g.create(true),
            "admin" => g.admin(true),
            "recorder" => g.recorder(true),
            "host" => Grants::host(),
            "all" => Grants::all(),
            "none" => Grants::none(),
            other => return Err(format!("unknown grant `{other}`")),
        };
    }
    Ok(g)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    let cli = <Cli as clap::FromArgMatches>::from_arg_matches(&matches)?;
    match cli.command {
        Command::Serve(mut args) => {
            if let Some(path) = args.config.clone() {
                let sub = matches
                    .subcommand_matches("serve")
                    .expect("the serve subcommand's matches");
                // Shown as the error's text: its file, line and message.
                let config = config::ServeConfig::load(&path).map_err(|e| e.to_string())?;
                config.apply(&mut args, sub);
            }
            serve(args).await
        }
        Command::Config(ConfigCommand::Example) => {
            print!("{}", config::EXAMPLE);
            Ok(())
        }
        Command::Config(ConfigCommand::Check { file }) => {
            let config = config::ServeConfig::load(&file).map_err(|e| e.to_string())?;
            println!("{config:#?}");
            Ok(())
        }
        Command::Revoke(args) => revoke(args).await,
        Command::Rooms(command) => api_cli::rooms(command).await,
        Command::Participants(command) => api_cli::participants(command).await,
        Command::Recorder(args) => recorder(args).await,
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
            for room in &args.host_of {
                token = token.host_of(room.as_str());
            }
            if let Some(id) = &args.id {
                token = token.id(id);
            }
            // The id is printed (to stderr) so the token can be revoked later.
            eprintln!("token id (jti): {}", token.token_id());
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

/// How log lines are written (to standard output).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum LogFormat {
    /// For people: one line per event, colored on a terminal.
    #[default]
    Text,
    /// For log shippers: one JSON object per line (`timestamp`, `level`, `target`, `fields`,
    /// and the spans an event is in).
    Json,
}

/// Starts logging at `level` (see [`log_filter`]; `RUST_LOG` overrides it) in `format`. The
/// WebRTC stack's WARN lines are counted (`jrtc_media_stack_warnings_total`) whether or not the
/// filter lets them into the log.
fn init_logs(level: &str, format: LogFormat) -> Result<(), Box<dyn std::error::Error>> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{Layer, filter::filter_fn};

    let filter =
        EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new(log_filter(level)))?;
    // The hint keeps the `log` crate's own level at what some layer wants (else every `trace!`
    // of the WebRTC stack would be formatted and handed over).
    let count = CountMediaStackWarnings.with_filter(
        filter_fn(|meta| {
            *meta.level() == tracing::Level::WARN
                && jrtc::server::is_media_stack_target(meta.target())
        })
        .with_max_level_hint(tracing::Level::WARN),
    );
    // Colors only on a terminal: a log file or a log shipper gets plain text.
    let logs = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    let registry = tracing_subscriber::registry().with(count);
    match format {
        LogFormat::Text => registry.with(logs.with_filter(filter)).try_init()?,
        LogFormat::Json => registry
            .with(logs.json().with_current_span(true).with_filter(filter))
            .try_init()?,
    }
    Ok(())
}

/// Counts the WebRTC stack's WARN lines (its filter picks them).
struct CountMediaStackWarnings;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountMediaStackWarnings {
    fn on_event(
        &self,
        _event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        jrtc::server::count_media_stack_warning();
    }
}

/// The log filter for `--log-level`: ours at that level; the WebRTC stack's at `error` (its
/// WARN lines mostly follow from what clients send: a connection with no candidate pair yet,
/// media before its keys; any client could turn them into a log flood, so they are counted in
/// `jrtc_media_stack_warnings_total` instead); everyone else's at `warn` at most. A filter that
/// names crates itself is taken as it is.
fn log_filter(level: &str) -> String {
    if level.contains('=') || level.contains(',') {
        return level.to_owned();
    }
    let others = match level {
        "error" | "off" => level,
        _ => "warn",
    };
    let stack = match level {
        "off" => "off",
        _ => "error",
    };
    format!("{others},webrtc={stack},rtc={stack},jrtc={level},jrtc_server={level}")
}

async fn serve(args: Serve) -> Result<(), Box<dyn std::error::Error>> {
    init_logs(&args.log_level, args.log_format)?;
    match fdlimit::raise() {
        Some((before, after)) if after > before => {
            tracing::info!(before, after, "raised the open-file limit")
        }
        Some((_, after)) => tracing::info!(limit = after, "open-file limit"),
        None => tracing::warn!("the open-file limit could not be read"),
    }
    let limits = jrtc::Limits::default()
        .max_rooms(args.max_rooms)
        .max_participants(args.max_participants)
        .max_token_lifetime(Duration::from_secs(args.max_token_lifetime))
        .max_unauthenticated(args.max_unauthenticated)
        .max_unauthenticated_per_address(args.max_unauthenticated_per_address);
    let mut builder = jrtc::Server::builder()
        .bind(args.bind)
        .limits(limits)
        .media_addresses(args.media_bind, args.media_public_ip)
        .media_tcp_bind((!args.no_media_tcp).then_some(args.media_tcp_bind))
        .media_workers(args.media_workers)
        .recording_dir(args.recording_dir)
        .embedded_recorder(!args.no_embedded_recorder)
        .grace_period(Duration::from_secs(args.grace_period))
        .invite_timeout(Duration::from_secs(args.invite_timeout))
        .webhook_queue(args.webhook_queue)
        .webhook_retries(
            Duration::from_secs(args.webhook_timeout),
            args.webhook_attempts,
        )
        .drain_delay(Duration::from_secs(args.drain_delay));
    for url in args.webhook_url {
        builder = builder.webhook(url);
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        builder = builder.tls(jrtc::TlsIdentity::from_files(cert, key)?);
    }
    if let Some(secret) = args.secret.load()? {
        builder = builder.secret(secret);
    }
    if args.dev {
        builder = builder.development();
    }
    if let Some(on) = args.call_page {
        builder = builder.call_page(on);
    }
    let server = builder
        .reconnect_after_shutdown(!args.no_reconnect_hint)
        .start()
        .await?;
    println!("jrtc-server listening on {}", server.url());
    if let Some(page) = server.call_page_url() {
        println!("call page: open {page} in two browser tabs");
    }
    tracing::info!(
        http = %server.http_url(),
        "signaling at /signal; /healthz, /readyz, /metrics and the server API (/api/) on the same port"
    );
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

#[cfg(test)]
mod tests {
    use super::log_filter;

    #[test]
    fn other_crates_are_capped_at_warn_unless_the_filter_names_them() {
        assert_eq!(
            log_filter("info"),
            "warn,webrtc=error,rtc=error,jrtc=info,jrtc_server=info"
        );
        assert_eq!(
            log_filter("debug"),
            "warn,webrtc=error,rtc=error,jrtc=debug,jrtc_server=debug"
        );
        assert_eq!(
            log_filter("error"),
            "error,webrtc=error,rtc=error,jrtc=error,jrtc_server=error"
        );
        assert_eq!(
            log_filter("jrtc=trace,webrtc=info"),
            "jrtc=trace,webrtc=info"
        );
    }
}
