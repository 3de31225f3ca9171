//! The browser side served from the server's port: the JavaScript client (`/jrtc.js`, its
//! TypeScript declarations `/jrtc.d.ts`), the call page at `/` with its script and style, and
//! in development mode the endpoint the page gets its tokens from (`POST /dev/token`). The files
//! are built into the binary (`web/` in the repository; no build step, nothing read at run time).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State as Shared;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::State;
use super::api::api_error;
use crate::auth::{AccessToken, Grants, random_hex};
use crate::model::valid_id;

/// A file of `web/`: its path on the server, its media type, its bytes.
pub(super) struct Asset {
    pub(super) path: &'static str,
    media_type: &'static str,
    body: &'static str,
    /// Part of the call page (served only when the page is on); the client library is always
    /// served.
    page: bool,
}

macro_rules! asset {
    ($path:literal, $file:literal, $type:literal, $page:literal) => {
        Asset {
            path: $path,
            media_type: $type,
            body: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $file)),
            page: $page,
        }
    };
}

/// The call page's content security policy.
const CALL_PAGE_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; media-src 'self' blob: mediastream:; connect-src 'self' ws: wss:; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Every file served.
pub(super) const ASSETS: &[Asset] = &[
    asset!(
        "/jrtc.js",
        "jrtc.js",
        "text/javascript; charset=utf-8",
        false
    ),
    asset!(
        "/jrtc/session.js",
        "jrtc/session.js",
        "text/javascript; charset=utf-8",
        false
    ),
    asset!(
        "/jrtc/events.js",
        "jrtc/events.js",
        "text/javascript; charset=utf-8",
        false
    ),
    asset!(
        "/jrtc/media.js",
        "jrtc/media.js",
        "text/javascript; charset=utf-8",
        false
    ),
    asset!(
        "/jrtc/sdp.js",
        "jrtc/sdp.js",
        "text/javascript; charset=utf-8",
        false
    ),
    asset!(
        "/jrtc/statistics.js",
        "jrtc/statistics.js",
        "text/javascript; charset=utf-8",
        false
    ),
    asset!(
        "/jrtc/errors.js",
        "jrtc/errors.js",
        "text/javascript; charset=utf-8",
        false
    ),
    asset!(
        "/jrtc.d.ts",
        "jrtc.d.ts",
        "application/typescript; charset=utf-8",
        false
    ),
    asset!("/", "index.html", "text/html; charset=utf-8", true),
    asset!("/app.js", "app.js", "text/javascript; charset=utf-8", true),
    asset!("/style.css", "style.css", "text/css; charset=utf-8", true),
];

impl Asset {
    /// The file, or 404 when it belongs to a call page that is off.
    pub(super) fn serve(&self, state: &State) -> Response {
        if self.page && !state.call_page() {
            return api_error(
                StatusCode::NOT_FOUND,
                "not_found",
                "the call page is off on this server (serve --call-page turns it on)",
            );
        }
        let mut response = (
            [
                (header::CONTENT_TYPE, self.media_type),
                // Served from the binary: a new server version may change them.
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::REFERRER_POLICY, "no-referrer"),
            ],
            self.body,
        )
            .into_response();
        if !self.page {
            // The client library is public: any origin's page may load it (as a module
            // script, which needs CORS), and embed it under a cross-origin isolation policy.
            let headers = response.headers_mut();
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                header::HeaderValue::from_static("*"),
            );
            headers.insert(
                header::HeaderName::from_static("cross-origin-resource-policy"),
                header::HeaderValue::from_static("cross-origin"),
            );
        }
        if self.path == "/" {
            // The page runs its own files only; it may open a WebSocket to another signaling
            // URL (`?signal=`), and plays the media streams it receives.
            response.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                header::HeaderValue::from_static(CALL_PAGE_POLICY),
            );
            response.headers_mut().insert(
                header::X_FRAME_OPTIONS,
                header::HeaderValue::from_static("DENY"),
            );
        }
        response
    }
}

/// `POST /dev/token`: who the page's user is.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DevTokenRequest {
    /// The display name (also the start of a made-up user id).
    #[serde(default)]
    name: String,
    /// Keep this user id (a page refreshing its token, a test naming its users).
    #[serde(default)]
    user_id: Option<String>,
}

/// A user id made from a display name: its letters and digits, lower-cased, and a random
/// suffix, so that two tabs named alike are two users.
fn user_id_for(name: &str) -> String {
    let mut base: String = name
        .chars()
        .filter_map(|c| {
            if c.is_ascii_alphanumeric() {
                Some(c.to_ascii_lowercase())
            } else if c == ' ' || c == '-' || c == '_' || c == '.' {
                Some('-')
            } else {
                None
            }
        })
        .collect();
    base = base.trim_matches('-').chars().take(40).collect();
    if base.is_empty() {
        base.push_str("guest");
    }
    format!("{base}-{}", random_hex::<2>())
}

/// Lets a page of any origin use a development server's `/dev/token` (an application under
/// development on its own port); nothing on a production server has it.
fn any_origin(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::HeaderValue::from_static("*"),
    );
    response
}

/// `OPTIONS /dev/token`: the preflight of a page of another origin posting JSON, answered on a
/// development server only (`404` otherwise, as every `/dev/token` request there).
pub(super) async fn dev_token_preflight(Shared(state): Shared<Arc<State>>) -> Response {
    if !state.options.development {
        return no_dev_tokens();
    }
    let mut response = any_origin(StatusCode::NO_CONTENT.into_response());
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        header::HeaderValue::from_static("GET, POST"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        header::HeaderValue::from_static("content-type"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        header::HeaderValue::from_static("600"),
    );
    response
}

/// `GET /dev/token`: whether this server mints tokens for the call page (`200` on a development
/// server, `404` otherwise), without minting one.
pub(super) async fn dev_token_offered(Shared(state): Shared<Arc<State>>) -> Response {
    if state.options.development {
        any_origin(axum::Json(serde_json::json!({ "development": true })).into_response())
    } else {
        no_dev_tokens()
    }
}

/// What a server that is not in development mode answers at `/dev/token`.
fn no_dev_tokens() -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "not_found",
        "tokens are minted here only on a development server",
    )
}

/// Mints a token with every grant but `admin`, for any room, in development mode only (404
/// otherwise: a production server's tokens come from the application's backend).
pub(super) async fn dev_token(Shared(state): Shared<Arc<State>>, body: Bytes) -> Response {
    if !state.options.development {
        return no_dev_tokens();
    }
    any_origin(mint_dev_token(&state, &body))
}

/// The answer to a development server's `POST /dev/token`: a token, or why not.
fn mint_dev_token(state: &State, body: &[u8]) -> Response {
    let request: DevTokenRequest = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(e) => return api_error(StatusCode::BAD_REQUEST, "invalid_param", &e.to_string()),
    };
    if request.name.len() > 128 {
        return api_error(
            StatusCode::BAD_REQUEST,
            "invalid_param",
            "the display name is longer than 128 bytes",
        );
    }
    let user_id = match request.user_id {
        Some(id) if valid_id(&id) => id,
        Some(_) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "invalid_param",
                "user_id breaks the id rules (1-64 bytes of [A-Za-z0-9+_.-])",
            );
        }
        None => user_id_for(&request.name),
    };
    let name = if request.name.is_empty() {
        user_id.clone()
    } else {
        request.name
    };
    let token = AccessToken::new(user_id.clone())
        .name(name)
        .grants(Grants::host());
    match token.sign(&state.secret) {
        Ok(token) => {
            axum::Json(serde_json::json!({ "token": token, "user_id": user_id })).into_response()
        }
        Err(e) => api_error(StatusCode::BAD_REQUEST, "invalid_param", &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::user_id_for;

    #[test]
    fn made_up_user_ids_keep_the_id_rules() {
        for name in ["Alice", "", "  --Bob Smith__", "日本語", &"x".repeat(300)] {
            let id = user_id_for(name);
            assert!(crate::model::valid_id(&id), "{name:?} gave {id:?}");
        }
        assert!(user_id_for("Bob Smith").starts_with("bob-smith-"));
    }
}
