//! [`ServerApi`]: the server API (`docs/api.md`) from Rust, for an application's backend.

use std::collections::BTreeMap;

use bytes::Bytes;
use hyper::Method;
use serde::de::DeserializeOwned;
use thiserror::Error;
use tokio::sync::Mutex;

use crate::http_client::{HttpClient, HttpError};
use crate::model::{
    BanTerm, RecordingOptions, RoomDetails, RoomOptions, RoomSummary, TrackSource, valid_id,
};
use crate::protocol::ErrorCode;
use crate::tls::TlsRoots;

/// Why a server API call did not succeed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No answer: the URL, the connection, TLS or HTTP failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// A room or user id that cannot be one (nothing was sent).
    #[error("not a valid id: {id}")]
    InvalidId {
        /// The id given.
        id: String,
    },
    /// The server refused (nothing was done).
    #[error("refused ({status} {}): {message}", .code.wire_name())]
    Refused {
        /// The HTTP status.
        status: u16,
        /// Why, for programs.
        code: ErrorCode,
        /// Why, for humans.
        message: String,
    },
    /// No answer within the client's timeout (10 s).
    #[error("no answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The answer is not what the API returns.
    #[error("an unexpected answer ({status}): {source}")]
    BadAnswer {
        /// The HTTP status.
        status: u16,
        /// What did not parse.
        source: serde_json::Error,
    },
}

/// A client of one server's API, with a token carrying the `admin` grant:
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use jrtc::{AccessToken, Grants, server::ServerApi};
/// let token = AccessToken::new("backend")
///     .grants(Grants::none().admin(true))
///     .sign(b"the server's secret, 32 bytes or more")?;
/// let api = ServerApi::new("http://127.0.0.1:7600", token)?;
/// for room in api.list_rooms().await? {
///     println!("{}: {} members", room.room, room.participants);
/// }
/// # Ok(()) }
/// ```
pub struct ServerApi {
    client: Mutex<HttpClient>,
    authorization: String,
}

impl std::fmt::Debug for ServerApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token stays out of logs.
        f.debug_struct("ServerApi").finish_non_exhaustive()
    }
}

impl ServerApi {
    /// A client of the server at `url` (`http://HOST:PORT` or `https://…`), trusting the
    /// platform's roots for `https://`.
    pub fn new(url: &str, token: impl Into<String>) -> Result<Self, ApiError> {
        Self::with_roots(url, token, TlsRoots::Platform)
    }

    /// The same, trusting `roots` for `https://` (a private CA, a self-signed certificate).
    pub fn with_roots(
        url: &str,
        token: impl Into<String>,
        roots: TlsRoots,
    ) -> Result<Self, ApiError> {
        Ok(ServerApi {
            client: Mutex::new(HttpClient::new(url.trim_end_matches('/'), roots)?),
            authorization: format!("Bearer {}", token.into()),
        })
    }

    /// Every room.
    pub async fn list_rooms(&self) -> Result<Vec<RoomSummary>, ApiError> {
        #[derive(serde::Deserialize)]
        struct Rooms {
            rooms: Vec<RoomSummary>,
        }
        let rooms: Rooms = self.call(Method::GET, "/api/rooms".into(), None).await?;
        Ok(rooms.rooms)
    }

    /// One room in full.
    pub async fn room(&self, room: &str) -> Result<RoomDetails, ApiError> {
        let path = format!("/api/rooms/{}", id(room)?);
        self.call(Method::GET, path, None).await
    }

    /// What the server measures of a room's media: each member's link over the latest second,
    /// each published track's packets in and lost, layer rates, and receivers.
    pub async fn room_statistics(
        &self,
        room: &str,
    ) -> Result<crate::model::RoomStatistics, ApiError> {
        let path = format!("/api/rooms/{}/statistics", id(room)?);
        self.call(Method::GET, path, None).await
    }

    /// Makes a room ahead of its call.
    pub async fn create_room(
        &self,
        room: &str,
        options: RoomOptions,
    ) -> Result<RoomDetails, ApiError> {
        let mut body = serde_json::to_value(options).expect("options serialize");
        body["room"] = serde_json::Value::from(id(room)?);
        self.call(Method::POST, "/api/rooms".into(), Some(body))
            .await
    }

    /// Ends the call in `room`: every member is out, the room is gone.
    pub async fn end_room(&self, room: &str) -> Result<(), ApiError> {
        let path = format!("/api/rooms/{}", id(room)?);
        self.done(Method::DELETE, path, None).await.map(drop)
    }

    /// Removes `user` from `room`, and bans them for `ban` if given.
    pub async fn remove_participant(
        &self,
        room: &str,
        user: &str,
        ban: Option<BanTerm>,
    ) -> Result<(), ApiError> {
        let path = format!("/api/rooms/{}/participants/{}/remove", id(room)?, id(user)?);
        let body = serde_json::json!({ "ban": ban });
        self.done(Method::POST, path, Some(body)).await.map(drop)
    }

    /// Mutes `user`'s `source` track (only its publisher unmutes it).
    pub async fn mute_track(
        &self,
        room: &str,
        user: &str,
        source: TrackSource,
    ) -> Result<(), ApiError> {
        let path = format!("/api/rooms/{}/participants/{}/mute", id(room)?, id(user)?);
        let body = serde_json::json!({ "source": source });
        self.done(Method::POST, path, Some(body)).await.map(drop)
    }

    /// Sets custom call properties (`None` removes one).
    pub async fn set_properties(
        &self,
        room: &str,
        custom: BTreeMap<String, Option<String>>,
    ) -> Result<(), ApiError> {
        let path = format!("/api/rooms/{}/properties", id(room)?);
        let body = serde_json::json!({ "custom": custom });
        self.done(Method::PATCH, path, Some(body)).await.map(drop)
    }

    /// Sends a message from the backend to `room`, or to `to` alone; a group message's room
    /// sequence number.
    pub async fn send_message(
        &self,
        room: &str,
        to: Option<&str>,
        content_type: &str,
        content: &str,
    ) -> Result<Option<u64>, ApiError> {
        let path = format!("/api/rooms/{}/messages", id(room)?);
        let to = to.map(id).transpose()?;
        let body =
            serde_json::json!({ "to": to, "content_type": content_type, "content": content });
        self.done(Method::POST, path, Some(body)).await
    }

    /// Starts recording `room`.
    pub async fn start_recording(
        &self,
        room: &str,
        options: RecordingOptions,
    ) -> Result<(), ApiError> {
        let path = format!("/api/rooms/{}/recording", id(room)?);
        let body = serde_json::to_value(options).expect("options serialize");
        self.done(Method::POST, path, Some(body)).await.map(drop)
    }

    /// Stops `room`'s recording.
    pub async fn stop_recording(&self, room: &str) -> Result<(), ApiError> {
        let path = format!("/api/rooms/{}/recording", id(room)?);
        self.done(Method::DELETE, path, None).await.map(drop)
    }

    /// A call answered `{"done":true}` (and a `seq` for a group message).
    async fn done(
        &self,
        method: Method,
        path: String,
        body: Option<serde_json::Value>,
    ) -> Result<Option<u64>, ApiError> {
        #[derive(serde::Deserialize)]
        struct Done {
            #[serde(default)]
            seq: Option<u64>,
        }
        let done: Done = self.call(method, path, body).await?;
        Ok(done.seq)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: String,
        body: Option<serde_json::Value>,
    ) -> Result<T, ApiError> {
        let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
        let headers = [
            ("authorization", self.authorization.as_str()),
            ("content-type", "application/json"),
        ];
        let mut client = self.client.lock().await;
        let answer =
            tokio::time::timeout(TIMEOUT, client.request(method, Some(&path), &headers, body))
                .await;
        let (status, answer) = match answer {
            Ok(answer) => answer?,
            Err(_) => {
                // The connection may be stuck: the next call makes a new one.
                client.reset();
                return Err(ApiError::Timeout(TIMEOUT));
            }
        };
        drop(client);
        let status = status.as_u16();
        if (200..300).contains(&status) {
            return serde_json::from_slice(&answer)
                .map_err(|source| ApiError::BadAnswer { status, source });
        }
        #[derive(serde::Deserialize)]
        struct Refusal {
            code: ErrorCode,
            message: String,
        }
        match serde_json::from_slice::<Refusal>(&answer) {
            Ok(Refusal { code, message }) => Err(ApiError::Refused {
                status,
                code,
                message,
            }),
            Err(source) => Err(ApiError::BadAnswer { status, source }),
        }
    }
}

/// How long a call may take.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `value` if it is a valid room or user id.
fn id(value: &str) -> Result<&str, ApiError> {
    if valid_id(value) {
        Ok(value)
    } else {
        Err(ApiError::InvalidId {
            id: value.to_owned(),
        })
    }
}
