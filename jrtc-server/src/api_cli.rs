//! `rooms …` and `participants …`: the server API (`docs/api.md`) from the command line, over
//! [`jrtc::server::ServerApi`] with an admin token signed here for the one request.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use jrtc::server::{ApiError, ServerApi};
use jrtc::{AccessToken, BanTerm, Grants, TrackSource};

use crate::SecretArgs;

/// Where the server is and how to sign the request.
#[derive(Debug, Args)]
pub(crate) struct ApiArgs {
    /// The server's HTTP address (`http://HOST:PORT` or `https://…`).
    #[arg(long, default_value = "http://127.0.0.1:7600", env = "JRTC_API_URL")]
    url: String,
    /// A PEM file of the CA that signed an `https://` server's certificate (default: the
    /// platform's roots).
    #[arg(long)]
    ca: Option<PathBuf>,
    #[command(flatten)]
    secret: SecretArgs,
}

/// `rooms` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum RoomsCommand {
    /// List the rooms.
    List(ApiArgs),
    /// Show one room: participants, publications, properties, recording.
    Show {
        #[command(flatten)]
        api: ApiArgs,
        room: String,
    },
    /// Make a room ahead of its call.
    Create {
        #[command(flatten)]
        api: ApiArgs,
        room: String,
        /// Members it takes (recorders aside).
        #[arg(long)]
        max_participants: Option<usize>,
        /// Seconds it lives with no member.
        #[arg(long)]
        empty_timeout_secs: Option<u64>,
        /// Record every call in it from its first member on.
        #[arg(long)]
        auto_record: bool,
    },
    /// End the call: every member is out, the room is gone.
    End {
        #[command(flatten)]
        api: ApiArgs,
        room: String,
    },
}

/// `participants` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ParticipantsCommand {
    /// Remove a member (kick), or ban them with --ban / --ban-secs.
    Remove {
        #[command(flatten)]
        api: ApiArgs,
        room: String,
        user: String,
        /// Ban for as long as the room lives.
        #[arg(long, conflicts_with = "ban_secs")]
        ban: bool,
        /// Ban for this many seconds.
        #[arg(long)]
        ban_secs: Option<u64>,
    },
    /// Mute a member's track (only its publisher unmutes it).
    Mute {
        #[command(flatten)]
        api: ApiArgs,
        room: String,
        user: String,
        /// `microphone`, `camera` or `screen`.
        #[arg(long, default_value = "microphone")]
        source: String,
    },
}

impl ApiArgs {
    fn client(&self) -> Result<ServerApi, Box<dyn std::error::Error>> {
        let secret = self
            .secret
            .load()?
            .ok_or("no secret: set JRTC_SECRET or pass --secret-file")?;
        let token = AccessToken::new("jrtc-admin-cli")
            .ttl(Duration::from_secs(60))
            .grants(Grants::none().admin(true))
            .sign(&secret)?;
        let roots = match &self.ca {
            Some(ca) => jrtc::TlsRoots::pem(std::fs::read(ca)?),
            None => jrtc::TlsRoots::Platform,
        };
        Ok(ServerApi::with_roots(&self.url, token, roots)?)
    }
}

/// Prints `value` as JSON.
fn print(value: &impl serde::Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("answers serialize")
    );
}

/// A refusal says its code and message (and the exit status is 1).
fn refused(e: ApiError) -> Box<dyn std::error::Error> {
    e.to_string().into()
}

pub(crate) async fn rooms(command: RoomsCommand) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        RoomsCommand::List(api) => print(&api.client()?.list_rooms().await.map_err(refused)?),
        RoomsCommand::Show { api, room } => {
            print(&api.client()?.room(&room).await.map_err(refused)?)
        }
        RoomsCommand::Create {
            api,
            room,
            max_participants,
            empty_timeout_secs,
            auto_record,
        } => {
            let mut options = jrtc::RoomOptions::default();
            if let Some(n) = max_participants {
                options = options.max_participants(n);
            }
            if let Some(secs) = empty_timeout_secs {
                options = options.empty_timeout_secs(secs);
            }
            if auto_record {
                options = options.auto_record(jrtc::RecordingOptions::default());
            }
            let made = api.client()?.create_room(&room, options).await;
            print(&made.map_err(refused)?)
        }
        RoomsCommand::End { api, room } => {
            api.client()?.end_room(&room).await.map_err(refused)?;
            println!("ended {room}");
        }
    }
    Ok(())
}

pub(crate) async fn participants(
    command: ParticipantsCommand,
) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        ParticipantsCommand::Remove {
            api,
            room,
            user,
            ban,
            ban_secs,
        } => {
            let term = match (ban, ban_secs) {
                (_, Some(secs)) => Some(BanTerm::lasting(Duration::from_secs(secs))),
                (true, None) => Some(BanTerm::room()),
                (false, None) => None,
            };
            let banned = term.is_some();
            api.client()?
                .remove_participant(&room, &user, term)
                .await
                .map_err(refused)?;
            println!(
                "{} {user} from {room}",
                if banned { "banned" } else { "removed" }
            );
        }
        ParticipantsCommand::Mute {
            api,
            room,
            user,
            source,
        } => {
            let source = TrackSource::from_track_id(&source)
                .ok_or_else(|| format!("unknown source `{source}`"))?;
            api.client()?
                .mute_track(&room, &user, source)
                .await
                .map_err(refused)?;
            println!("muted {user}'s {} in {room}", source.as_str());
        }
    }
    Ok(())
}
