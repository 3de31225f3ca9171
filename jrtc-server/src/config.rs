//! `serve`'s configuration file (TOML), layered under the environment and the flags: a flag
//! given on the command line wins, then its environment variable (`JRTC_…`), then the file,
//! then the built-in default. Secrets never go in the file itself: it names a file holding the
//! secret (`secret_file`), or the secret comes from `JRTC_SECRET`; nothing prints a secret.

use std::path::{Path, PathBuf};

use clap::ArgMatches;
use clap::parser::ValueSource;
use serde::Deserialize;

use crate::Serve;

/// Every `serve` option, as the configuration file spells it (the flags' names with `_`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServeConfig {
    bind: Option<String>,
    log_level: Option<String>,
    log_format: Option<crate::LogFormat>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    max_token_lifetime: Option<u64>,
    max_unauthenticated_per_address: Option<usize>,
    max_unauthenticated: Option<usize>,
    no_reconnect_hint: Option<bool>,
    dev: Option<bool>,
    media_bind: Option<std::net::SocketAddr>,
    media_tcp_bind: Option<std::net::SocketAddr>,
    no_media_tcp: Option<bool>,
    media_public_ip: Option<Vec<String>>,
    media_workers: Option<usize>,
    recording_dir: Option<PathBuf>,
    no_embedded_recorder: Option<bool>,
    max_rooms: Option<usize>,
    max_participants: Option<usize>,
    grace_period: Option<u64>,
    invite_timeout: Option<u64>,
    webhook_url: Option<Vec<String>>,
    webhook_queue: Option<usize>,
    webhook_timeout: Option<u64>,
    webhook_attempts: Option<u32>,
    drain_delay: Option<u64>,
    call_page: Option<bool>,
    secret_file: Option<PathBuf>,
}

/// Why a configuration file was not taken.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Only the message and the line: the parser's own report quotes the line, which could
    /// hold a secret someone put in the file by mistake.
    #[error("{path}:{line}: not a valid serve configuration: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

impl ServeConfig {
    /// Reads and checks a configuration file (unknown keys are refused, so a typo is not a
    /// silently ignored option). Relative paths in it are taken from the file's directory.
    pub(crate) fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config: ServeConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            line: e
                .span()
                .map_or(0, |span| text[..span.start].matches('\n').count() + 1),
            message: e.message().to_owned(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [
            &mut config.tls_cert,
            &mut config.tls_key,
            &mut config.recording_dir,
            &mut config.secret_file,
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(config)
    }

    /// Fills each option of `serve` that neither a flag nor the environment set.
    pub(crate) fn apply(self, serve: &mut Serve, matches: &ArgMatches) {
        let unset = |id: &str| {
            !matches!(
                matches.value_source(id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        };
        macro_rules! take {
            ($($field:ident),*) => {
                $(
                    if let Some(v) = self.$field
                        && unset(stringify!($field))
                    {
                        serve.$field = v;
                    }
                )*
            };
        }
        macro_rules! take_some {
            ($($field:ident),*) => {
                $(
                    if self.$field.is_some() && unset(stringify!($field)) {
                        serve.$field = self.$field;
                    }
                )*
            };
        }
        take!(
            bind,
            log_level,
            log_format,
            max_token_lifetime,
            max_unauthenticated_per_address,
            max_unauthenticated,
            no_reconnect_hint,
            dev,
            media_bind,
            media_tcp_bind,
            no_media_tcp,
            media_public_ip,
            media_workers,
            recording_dir,
            no_embedded_recorder,
            max_rooms,
            max_participants,
            grace_period,
            invite_timeout,
            webhook_url,
            webhook_queue,
            webhook_timeout,
            webhook_attempts,
            drain_delay
        );
        take_some!(tls_cert, tls_key, call_page);
        if self.secret_file.is_some() && unset("secret_file") && unset("secret") {
            serve.secret.secret_file = self.secret_file;
        }
    }
}

/// `jrtc-server config example`: every option with its default, commented; `serve --config`
/// takes it as it is.
pub(crate) const EXAMPLE: &str = r#"# jrtc-server serve --config FILE
#
# Every `serve` option. A flag on the command line wins over its environment variable
# (JRTC_ and the name in capitals, e.g. JRTC_BIND), which wins over this file, which wins over
# the default shown. Relative paths are taken from this file's directory.

# Address the server listens on: signaling (/signal), health, metrics and the server API.
bind = "127.0.0.1:7600"

# Log level or filter for jrtc's own logs (other crates are capped at "warn" unless named).
log_level = "info"

# "text" (for people) or "json" (one object per line, for log shippers).
log_format = "text"

# Serve wss:// with this certificate chain and key (PEM); both or neither.
# tls_cert = "cert.pem"
# tls_key = "key.pem"

# The token secret: a file holding it (never the secret itself here), or JRTC_SECRET.
# secret_file = "secret"

# Longest token lifetime accepted, in seconds.
max_token_lifetime = 86400

# Connections not logged in yet: at most this many from one IP address, and in all.
max_unauthenticated_per_address = 64
max_unauthenticated = 1024

# Tell clients not to reconnect when the server stops (default: the goodbye says reconnect).
no_reconnect_hint = false

# A development server: without a secret, a random one is made. Never in production.
dev = false

# The UDP port media goes through, one per media worker from this one on (port 0: free ports;
# media_workers = 1 for a single port), the TCP port for ICE over TCP
# (clients whose network blocks UDP; no_media_tcp = true: UDP only), the addresses to announce
# instead (behind NAT), and the media worker threads (0: one per core).
media_bind = "127.0.0.1:0"
media_tcp_bind = "127.0.0.1:0"
no_media_tcp = false
media_public_ip = []
media_workers = 0

# Where the embedded recorder writes, and whether the server runs one (otherwise recordings
# need a `jrtc-server recorder` process).
recording_dir = "recordings"
no_embedded_recorder = false

# Most rooms at once, and most members in one room.
max_rooms = 10000
max_participants = 256

# Seconds a lost session is held for its client to resume; seconds an invitation rings.
grace_period = 20
invite_timeout = 30

# Where the server POSTs its events (signed with the token secret; docs/api.md), how many may
# wait per URL, how long one delivery may take (seconds), and the tries per event.
webhook_url = []
webhook_queue = 10000
webhook_timeout = 5
webhook_attempts = 8

# On SIGTERM, seconds to keep serving with /readyz answering 503 before the goodbye.
drain_delay = 0

# Serve the call page at / (a browser joins a room there). Unset: only with dev = true.
# call_page = true
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_is_a_valid_configuration_with_every_option() {
        let config: ServeConfig = toml::from_str(EXAMPLE).unwrap();
        assert_eq!(config.bind.as_deref(), Some("127.0.0.1:7600"));
        assert_eq!(config.max_token_lifetime, Some(86_400));
        assert_eq!(config.no_embedded_recorder, Some(false));
        // Every field of the struct appears in the example (commented out or not): the
        // field names are read off its Debug output, so a new option cannot be left out.
        let debug = format!("{:?}", ServeConfig::default());
        let fields = debug
            .trim_start_matches("ServeConfig {")
            .trim_end_matches('}');
        let keys: Vec<&str> = fields
            .split(',')
            .filter_map(|f| f.split(':').next())
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .collect();
        assert!(keys.len() >= 25, "{keys:?}");
        for key in keys {
            assert!(EXAMPLE.contains(&format!("{key} = ")), "{key}");
        }
    }

    #[test]
    fn unknown_keys_and_secrets_in_the_file_are_refused() {
        assert!(toml::from_str::<ServeConfig>("bnid = \"x\"").is_err());
        assert!(toml::from_str::<ServeConfig>("secret = \"hunter2\"").is_err());
    }
}
