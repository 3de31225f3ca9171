//! The HTTP routes beside signaling: `/healthz`, `/readyz`, `/metrics`, and the server API under
//! `/api/` (`docs/api.md`). Every API request goes to the core as an [`AdminRequest`], under the
//! same lock and through the same room code as members' requests.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State as Shared};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tower::ServiceExt;

use super::State;
use crate::model::{BanTerm, RecordingOptions, RoomId, RoomOptions, Text, TrackSource, UserId};
use crate::protocol::{ErrorCode, Refusal};
use crate::server::hub::{AdminReply, AdminRequest};

/// Answers one HTTP request that is not a WebSocket upgrade.
pub(super) async fn route(state: Arc<State>, request: axum::http::Request<Body>) -> Response {
    let router = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/rooms", get(list_rooms).post(create_room))
        .route("/api/rooms/{room}", get(get_room).delete(end_room))
        .route("/api/rooms/{room}/statistics", get(get_statistics))
        .route(
            "/api/rooms/{room}/participants/{user}/remove",
            post(remove_participant),
        )
        .route(
            "/api/rooms/{room}/participants/{user}/mute",
            post(mute_track),
        )
        .route(
            "/api/rooms/{room}/properties",
            axum::routing::patch(set_properties),
        )
        .route("/api/rooms/{room}/messages", post(send_message))
        .route(
            "/api/rooms/{room}/recording",
            post(start_recording).delete(stop_recording),
        )
        .route(
            "/dev/token",
            get(super::web::dev_token_offered)
                .post(super::web::dev_token)
                .options(super::web::dev_token_preflight),
        );
    let router = super::web::ASSETS.iter().fold(router, |router, asset| {
        router.route(
            asset.path,
            get(move |Shared(state): Shared<Arc<State>>| async move { asset.serve(&state) }),
        )
    });
    let router = router
        .fallback(|| async { api_error(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            api_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        .with_state(state);
    match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

async fn readyz(Shared(state): Shared<Arc<State>>) -> Response {
    let reasons = state.not_ready();
    let status = if reasons.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({ "ready": reasons.is_empty(), "reasons": reasons });
    (status, axum::Json(body)).into_response()
}

/// `GET /metrics`: OpenMetrics when the scraper prefers it, else the classic text format.
async fn metrics(Shared(state): Shared<Arc<State>>, headers: HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    let format = super::metrics::Format::negotiate(accept);
    (
        [(header::CONTENT_TYPE, format.content_type())],
        format.write(state.render_metrics()),
    )
        .into_response()
}

async fn list_rooms(Shared(state): Shared<Arc<State>>, headers: HeaderMap) -> Response {
    call(&state, &headers, AdminRequest::ListRooms)
}

async fn get_room(
    Shared(state): Shared<Arc<State>>,
    Path(room): Path<String>,
    headers: HeaderMap,
) -> Response {
    let room = RoomId::from(room);
    call(&state, &headers, AdminRequest::GetRoom { room })
}

/// `POST /api/rooms`: the room's id and its options.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRoom {
    room: RoomId,
    #[serde(flatten)]
    options: RoomOptions,
}

async fn get_statistics(
    Shared(state): Shared<Arc<State>>,
    Path(room): Path<String>,
    headers: HeaderMap,
) -> Response {
    let room = RoomId::from(room);
    call(&state, &headers, AdminRequest::GetRoomStatistics { room })
}

async fn create_room(
    Shared(state): Shared<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    call_with(
        &state,
        &headers,
        &body,
        false,
        |CreateRoom { room, options }| AdminRequest::CreateRoom { room, options },
    )
}

async fn end_room(
    Shared(state): Shared<Arc<State>>,
    Path(room): Path<String>,
    headers: HeaderMap,
) -> Response {
    let room = RoomId::from(room);
    call(&state, &headers, AdminRequest::EndRoom { room })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Remove {
    #[serde(default)]
    ban: Option<BanTerm>,
}

async fn remove_participant(
    Shared(state): Shared<Arc<State>>,
    Path((room, user)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    call_with(&state, &headers, &body, true, |Remove { ban }| {
        AdminRequest::RemoveParticipant {
            room: RoomId::from(room),
            user: UserId::from(user),
            ban,
        }
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Mute {
    source: TrackSource,
}

async fn mute_track(
    Shared(state): Shared<Arc<State>>,
    Path((room, user)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    call_with(&state, &headers, &body, false, |Mute { source }| {
        AdminRequest::MuteTrack {
            room: RoomId::from(room),
            user: UserId::from(user),
            source,
        }
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Properties {
    custom: BTreeMap<String, Option<String>>,
}

async fn set_properties(
    Shared(state): Shared<Arc<State>>,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    call_with(&state, &headers, &body, false, |Properties { custom }| {
        AdminRequest::SetProperties {
            room: RoomId::from(room),
            custom,
        }
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Message {
    #[serde(default)]
    to: Option<UserId>,
    #[serde(default = "text_plain")]
    content_type: Text,
    content: Text,
}

fn text_plain() -> Text {
    Text::from("text/plain")
}

async fn send_message(
    Shared(state): Shared<Arc<State>>,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    call_with(&state, &headers, &body, false, |m: Message| {
        AdminRequest::SendMessage {
            room: RoomId::from(room),
            to: m.to,
            content_type: m.content_type,
            content: m.content,
        }
    })
}

async fn start_recording(
    Shared(state): Shared<Arc<State>>,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    call_with(
        &state,
        &headers,
        &body,
        true,
        |options: RecordingOptions| AdminRequest::StartRecording {
            room: RoomId::from(room),
            options,
        },
    )
}

async fn stop_recording(
    Shared(state): Shared<Arc<State>>,
    Path(room): Path<String>,
    headers: HeaderMap,
) -> Response {
    let room = RoomId::from(room);
    call(&state, &headers, AdminRequest::StopRecording { room })
}

/// Reads the JSON body (`{}` when empty and `empty_ok`) and hands the request `make` builds
/// from it to the core; a body that does not read is refused before anything is done.
fn call_with<T: serde::de::DeserializeOwned>(
    state: &State,
    headers: &HeaderMap,
    body: &[u8],
    empty_ok: bool,
    make: impl FnOnce(T) -> AdminRequest,
) -> Response {
    match parse::<T>(body, empty_ok) {
        Ok(body) => call(state, headers, make(body)),
        Err(refused) => refusal(refused),
    }
}

/// A JSON body (`{}` when empty and `empty_ok`), or the refusal.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8], empty_ok: bool) -> Result<T, Refusal> {
    if empty_ok && body.iter().all(u8::is_ascii_whitespace) {
        return serde_json::from_slice(b"{}").map_err(|e| invalid(&e));
    }
    serde_json::from_slice(body).map_err(|e| invalid(&e))
}

fn invalid(e: &serde_json::Error) -> Refusal {
    let code = if e.is_syntax() || e.is_eof() {
        ErrorCode::BadJson
    } else {
        ErrorCode::InvalidFrame
    };
    Refusal::new(code, format!("the request body: {e}"))
}

/// Hands the request to the core with the caller's token; answers with its reply or refusal.
fn call(state: &State, headers: &HeaderMap, request: AdminRequest) -> Response {
    let Some(token) = bearer(headers) else {
        let response = refusal(Refusal::new(
            ErrorCode::InvalidToken,
            "send the admin token as Authorization: Bearer <token>",
        ));
        state.count_api(Err(ErrorCode::InvalidToken));
        return response;
    };
    let answer = state.admin(token, request);
    state.count_api(answer.as_ref().map(|_| ()).map_err(|r| r.code));
    match answer {
        Ok(AdminReply::Rooms(rooms)) => {
            axum::Json(serde_json::json!({ "rooms": rooms })).into_response()
        }
        Ok(AdminReply::Room(room)) => axum::Json(room).into_response(),
        Ok(AdminReply::Statistics(mut statistics, media)) => {
            state.sfu().fill_statistics(&mut statistics, &media);
            axum::Json(statistics).into_response()
        }
        Ok(AdminReply::Done { seq }) => {
            let body = match seq {
                Some(seq) => serde_json::json!({ "done": true, "seq": seq }),
                None => serde_json::json!({ "done": true }),
            };
            axum::Json(body).into_response()
        }
        Err(refused) => refusal(refused),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// A refusal as an HTTP answer: a status for its kind, the code and message as JSON.
fn refusal(refused: Refusal) -> Response {
    let status = status_of(refused.code);
    let code = serde_json::to_value(refused.code).unwrap_or_default();
    let body = serde_json::json!({ "code": code, "message": refused.message });
    (status, axum::Json(body)).into_response()
}

pub(super) fn api_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "code": code, "message": message });
    (status, axum::Json(body)).into_response()
}

/// The HTTP status of a refusal.
pub(crate) fn status_of(code: ErrorCode) -> StatusCode {
    use ErrorCode as E;
    match code {
        E::InvalidToken
        | E::BadSignature
        | E::TokenExpired
        | E::TokenNotYetValid
        | E::TokenRevoked
        | E::TokenTooLongLived
        | E::InvalidUserId => StatusCode::UNAUTHORIZED,
        E::MissingGrant | E::PermissionDenied => StatusCode::FORBIDDEN,
        E::NoSuchRoom | E::NoSuchParticipant | E::NoSuchTrack | E::NoSuchRecording => {
            StatusCode::NOT_FOUND
        }
        E::RoomExists
        | E::AlreadyRecording
        | E::NotRecording
        | E::ScreenShareBusy
        | E::RoomFull => StatusCode::CONFLICT,
        E::TooManyRooms | E::TooManyBans | E::NoRecorder => StatusCode::SERVICE_UNAVAILABLE,
        E::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}
