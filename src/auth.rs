//! Access tokens: signed statements (JWT, HMAC-SHA256) of who may log in, to which rooms, in
//! which role, and with which grants. An application's backend mints them with the server's
//! secret ([`AccessToken::sign`], or `jrtc-server token`); clients log in with them; the server
//! trusts nothing else about a client's identity.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::model::{MAX_DISPLAY_NAME_LEN, Role, RoomId, UserId, valid_id};
use crate::protocol::{ErrorCode, Refusal};

/// Shortest secret the server accepts, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// Longest token id (`jti`), in bytes.
pub const MAX_TOKEN_ID_LEN: usize = 128;

/// How far in the future a token's `iat` may be (the minter's clock ahead of the server's), in
/// seconds.
pub const CLOCK_SKEW: u64 = 60;

/// Whether `id` may be a token id: 1 to [`MAX_TOKEN_ID_LEN`] bytes.
pub(crate) fn valid_token_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_TOKEN_ID_LEN
}

/// How long a token is valid when the minter does not say.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(6 * 3600);

/// What a token's holder may do. A request needs its grant as well as the room role it needs
/// (kicking needs the host role *and* `moderate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Grants {
    /// Publish media and share the screen.
    pub publish: bool,
    /// Send in-call messages.
    pub message: bool,
    /// Kick members, end the call, change roles (as a host).
    pub moderate: bool,
    /// Start and stop recording (as a host).
    pub record: bool,
    /// Set custom call properties (as a host).
    pub set_properties: bool,
    /// Create rooms: join a room that does not exist yet (its first member hosts it), invite
    /// from outside a room, or join a server-named room. Without it, a holder only joins rooms
    /// that exist. Off by default.
    pub create: bool,
    /// Administer the server: revoke tokens. Off by default; give it to backends, not users.
    pub admin: bool,
    /// Act as a recorder: take recording jobs from the server and join rooms in the
    /// `recorder` role. Off by default; give it to recorder processes only.
    pub recorder: bool,
}

impl Default for Grants {
    /// What an ordinary participant does: publish and send messages.
    fn default() -> Self {
        Grants {
            publish: true,
            message: true,
            moderate: false,
            record: false,
            set_properties: false,
            create: false,
            admin: false,
            recorder: false,
        }
    }
}

impl Grants {
    /// Every grant a person may hold, [`Grants::admin`] included; not [`Grants::recorder`],
    /// which is for recorder processes (`Grants::none().recorder(true)`).
    pub fn all() -> Self {
        Grants {
            publish: true,
            message: true,
            moderate: true,
            record: true,
            set_properties: true,
            create: true,
            admin: true,
            recorder: false,
        }
    }

    /// What a call's organiser needs: every grant but [`Grants::admin`] (and
    /// [`Grants::recorder`]).
    pub fn host() -> Self {
        Grants {
            admin: false,
            ..Grants::all()
        }
    }

    /// No grant at all (a listener).
    pub fn none() -> Self {
        Grants {
            publish: false,
            message: false,
            moderate: false,
            record: false,
            set_properties: false,
            create: false,
            admin: false,
            recorder: false,
        }
    }

    /// Sets [`Grants::create`].
    pub fn create(mut self, on: bool) -> Self {
        self.create = on;
        self
    }
    /// Sets [`Grants::admin`].
    pub fn admin(mut self, on: bool) -> Self {
        self.admin = on;
        self
    }
    /// Sets [`Grants::publish`].
    pub fn publish(mut self, on: bool) -> Self {
        self.publish = on;
        self
    }
    /// Sets [`Grants::message`].
    pub fn message(mut self, on: bool) -> Self {
        self.message = on;
        self
    }
    /// Sets [`Grants::moderate`].
    pub fn moderate(mut self, on: bool) -> Self {
        self.moderate = on;
        self
    }
    /// Sets [`Grants::recorder`].
    pub fn recorder(mut self, on: bool) -> Self {
        self.recorder = on;
        self
    }
    /// Sets [`Grants::record`].
    pub fn record(mut self, on: bool) -> Self {
        self.record = on;
        self
    }
    /// Sets [`Grants::set_properties`].
    pub fn set_properties(mut self, on: bool) -> Self {
        self.set_properties = on;
        self
    }
}

/// The claims a token carries (the JWT payload).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Claims {
    /// The user id.
    sub: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    name: String,
    /// The token's id, for revoking it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    /// Expiry, seconds since the Unix epoch.
    exp: u64,
    /// Not valid before, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
    /// Issued at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    /// The rooms the holder may be in; absent: any room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rooms: Option<Vec<RoomId>>,
    /// `host`: joins every room as a host. Absent or `guest`: the room decides (its first
    /// member hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<Role>,
    /// Rooms the holder joins as a host (whatever `role` says).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    hosts: Vec<RoomId>,
    /// What the holder may do.
    #[serde(default)]
    grants: Grants,
    /// A room this token creates records from its start, with these options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    record: Option<crate::model::RecordingOptions>,
}

/// Why a token could not be minted.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The user id breaks the id rules.
    #[error(
        "`{0}` is not a valid user id (1 to 64 bytes of [A-Za-z0-9+_.-], not starting with - _ or .)"
    )]
    InvalidUserId(String),
    /// A room id breaks the id rules.
    #[error("`{0}` is not a valid room id")]
    InvalidRoomId(String),
    /// The token id is empty or longer than [`MAX_TOKEN_ID_LEN`] bytes.
    #[error("a token id must be 1 to {MAX_TOKEN_ID_LEN} bytes, not {} bytes", .0.len())]
    InvalidId(String),
    /// The secret is shorter than [`MIN_SECRET_LEN`].
    #[error("the secret must be at least {MIN_SECRET_LEN} bytes")]
    WeakSecret,
    /// Signing failed.
    #[error("signing failed: {0}")]
    Signing(String),
}

/// A token being minted: `AccessToken::new("alice").name("Alice").room("standup").sign(secret)`.
#[derive(Clone, Debug)]
pub struct AccessToken {
    claims: Claims,
    ttl: Duration,
    expires_at: Option<SystemTime>,
    not_before: Option<SystemTime>,
    issued_at: Option<SystemTime>,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl AccessToken {
    /// A token for `user_id`, valid for [`DEFAULT_TOKEN_TTL`], any room, [`Grants::default`].
    pub fn new(user_id: impl Into<String>) -> Self {
        AccessToken {
            claims: Claims {
                sub: user_id.into(),
                name: String::new(),
                jti: Some(random_id()),
                exp: 0,
                nbf: None,
                iat: None,
                rooms: None,
                role: None,
                hosts: Vec::new(),
                grants: Grants::default(),
                record: None,
            },
            ttl: DEFAULT_TOKEN_TTL,
            expires_at: None,
            not_before: None,
            issued_at: None,
        }
    }

    /// The display name (default: the user id).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.claims.name = name.into();
        self
    }

    /// Valid for this long from signing.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self.expires_at = None;
        self
    }

    /// Valid until this moment.
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Dated as issued at this moment (`iat`; by default the moment of signing). The lifetime
    /// the server allows counts from here.
    pub fn issued_at(mut self, at: SystemTime) -> Self {
        self.issued_at = Some(at);
        self
    }

    /// Not valid before this moment.
    pub fn not_before(mut self, at: SystemTime) -> Self {
        self.not_before = Some(at);
        self
    }

    /// Allows this room (call it again for more); without any, every room is allowed.
    pub fn room(mut self, room: impl Into<RoomId>) -> Self {
        self.claims
            .rooms
            .get_or_insert_with(Vec::new)
            .push(room.into());
        self
    }

    /// Joins every room as `role` (`Host`), or lets the room decide (`Guest`).
    pub fn role(mut self, role: Role) -> Self {
        self.claims.role = Some(role);
        self
    }

    /// Joins `room` as a host (call it again for more rooms), whatever [`AccessToken::role`]
    /// says for other rooms. It does not allow creating the room: that is [`Grants::create`].
    pub fn host_of(mut self, room: impl Into<RoomId>) -> Self {
        self.claims.hosts.push(room.into());
        self
    }

    /// The token's id (`jti`), for revoking it later: 1 to 128 bytes. By default a random one
    /// (128 bits) made with the builder, so every token signed from one builder carries the same
    /// id.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.claims.jti = Some(id.into());
        self
    }

    /// The token's id (`jti`), for revoking it later.
    pub fn token_id(&self) -> &str {
        self.claims.jti.as_deref().unwrap_or("")
    }

    /// A room the holder creates (its first member) records from its start, with `options`
    /// (claim `record`; needs [`Grants::record`] to take effect).
    pub fn record_from_start(mut self, options: crate::model::RecordingOptions) -> Self {
        self.claims.record = Some(options);
        self
    }

    /// What the holder may do.
    pub fn grants(mut self, grants: Grants) -> Self {
        self.claims.grants = grants;
        self
    }

    /// Signs the token with the server's secret (HMAC-SHA256).
    pub fn sign(&self, secret: &[u8]) -> Result<String, TokenError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(TokenError::WeakSecret);
        }
        if !valid_id(&self.claims.sub) {
            return Err(TokenError::InvalidUserId(self.claims.sub.clone()));
        }
        if let Some(id) = &self.claims.jti
            && !valid_token_id(id)
        {
            return Err(TokenError::InvalidId(id.clone()));
        }
        for room in self.claims.rooms.iter().flatten().chain(&self.claims.hosts) {
            if !valid_id(room.as_str()) {
                return Err(TokenError::InvalidRoomId(room.to_string()));
            }
        }
        let now = SystemTime::now();
        let mut claims = self.claims.clone();
        claims.iat = Some(unix(self.issued_at.unwrap_or(now)));
        claims.exp = unix(self.expires_at.unwrap_or(now + self.ttl));
        claims.nbf = self.not_before.map(unix);
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .map_err(|e| TokenError::Signing(e.to_string()))
    }
}

/// Who a verified token says its holder is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) user: UserId,
    pub(crate) name: String,
    pub(crate) rooms: Option<Vec<RoomId>>,
    pub(crate) role: Option<Role>,
    pub(crate) hosts: Vec<RoomId>,
    pub(crate) grants: Grants,
    /// The token's id, if it has one.
    pub(crate) jti: Option<String>,
    /// When the token was issued (seconds since the Unix epoch).
    pub(crate) issued_at: u64,
    /// When the token expires (seconds since the Unix epoch).
    pub(crate) expires_at: u64,
    /// A room the holder creates records from its start, so.
    pub(crate) record: Option<crate::model::RecordingOptions>,
}

impl Identity {
    /// Whether the token lets its holder into `room`.
    pub(crate) fn may_enter(&self, room: &RoomId) -> bool {
        self.rooms.as_ref().is_none_or(|rooms| rooms.contains(room))
    }

    /// When the token expires, in milliseconds since the Unix epoch (the core's clock).
    pub(crate) fn expires_at_ms(&self) -> u64 {
        self.expires_at.saturating_mul(1000)
    }

    /// Whether the holder joins `room` as a host.
    pub(crate) fn hosts(&self, room: &RoomId) -> bool {
        self.role == Some(Role::Host) || self.hosts.contains(room)
    }
}

/// Checks a token at `now` (seconds since the Unix epoch): signature, algorithm, time window,
/// lifetime (at most `max_lifetime` seconds from issue to expiry, and from now to expiry),
/// claims. Returns the refusal's code and a detail otherwise.
pub(crate) fn verify(
    token: &str,
    secret: &[u8],
    now: u64,
    max_lifetime: u64,
) -> Result<Identity, Refusal> {
    let mut validation = Validation::new(Algorithm::HS256);
    // Time is checked below against the caller's clock, so the core stays deterministic.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.required_spec_claims.clear();
    let data =
        jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(secret), &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => Refusal::new(
                    ErrorCode::BadSignature,
                    "the token's signature does not match its contents".to_owned(),
                ),
                ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => Refusal::new(
                    ErrorCode::InvalidToken,
                    "tokens must be signed with HS256".to_owned(),
                ),
                _ => Refusal::new(ErrorCode::InvalidToken, format!("malformed token: {e}")),
            })?;
    let claims = data.claims;
    if claims.exp <= now {
        return Err(Refusal::new(
            ErrorCode::TokenExpired,
            format!("expired at {}", claims.exp),
        ));
    }
    if let Some(nbf) = claims.nbf
        && nbf > now
    {
        return Err(Refusal::new(
            ErrorCode::TokenNotYetValid,
            format!("valid from {nbf}"),
        ));
    }
    if !valid_id(&claims.sub) {
        return Err(Refusal::new(
            ErrorCode::InvalidUserId,
            "the token's user id breaks the id rules".to_owned(),
        ));
    }
    if claims.name.len() > MAX_DISPLAY_NAME_LEN {
        return Err(Refusal::new(
            ErrorCode::InvalidToken,
            "the display name is longer than 128 bytes",
        ));
    }
    if claims
        .rooms
        .iter()
        .flatten()
        .chain(&claims.hosts)
        .any(|r| !valid_id(r.as_str()))
    {
        return Err(Refusal::new(
            ErrorCode::InvalidToken,
            "a room id breaks the id rules",
        ));
    }
    if claims.jti.as_ref().is_some_and(|j| !valid_token_id(j)) {
        return Err(Refusal::new(
            ErrorCode::InvalidToken,
            format!("the token id (jti) must be 1 to {MAX_TOKEN_ID_LEN} bytes"),
        ));
    }
    // `iat` bounds the token's life, so that a revocation need only be kept for the maximum
    // lifetime: a token without it, or dated in the future, could outlive any revocation.
    let Some(iat) = claims.iat else {
        return Err(Refusal::new(
            ErrorCode::InvalidToken,
            "the token has no `iat` (issued at) claim",
        ));
    };
    if iat > now + CLOCK_SKEW {
        return Err(Refusal::new(
            ErrorCode::TokenNotYetValid,
            format!("issued at {iat}, in the future"),
        ));
    }
    let lifetime = claims.exp - iat.min(now);
    if lifetime > max_lifetime {
        return Err(Refusal::new(
            ErrorCode::TokenTooLongLived,
            format!(
                "the token is valid for {lifetime} s; this server takes tokens valid for at most {max_lifetime} s"
            ),
        ));
    }
    let name = if claims.name.is_empty() {
        claims.sub.clone()
    } else {
        claims.name
    };
    Ok(Identity {
        user: UserId::from(claims.sub),
        name,
        rooms: claims.rooms,
        role: claims.role,
        hosts: claims.hosts,
        grants: claims.grants,
        jti: claims.jti,
        issued_at: iat,
        expires_at: claims.exp,
        record: claims.record,
    })
}

/// A random token id: 128 bits, hex.
fn random_id() -> String {
    random_hex::<16>()
}

/// `bytes` in lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `N` random bytes, in hex.
pub(crate) fn random_hex<const N: usize>() -> String {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    hex(&bytes)
}

/// A random secret of [`MIN_SECRET_LEN`] bytes, for development servers.
pub(crate) fn random_secret() -> Vec<u8> {
    let mut secret = vec![0; MIN_SECRET_LEN];
    getrandom::fill(&mut secret).expect("the operating system's random source works");
    secret
}

/// Tokens the server must refuse from now on, though their signature is good (see
/// [`ServerHandle::revoke`](crate::ServerHandle::revoke) and the `revoke` frame). Sessions
/// logged in with such a token end at once, with reason
/// [`TokenRevoked`](crate::Reason::TokenRevoked).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Revocation {
    /// The token with this id (`jti`).
    Token {
        /// The token's id.
        jti: String,
    },
    /// Every token of `user_id` issued (`iat`) before `issued_before` (seconds since the Unix
    /// epoch).
    User {
        /// Whose tokens.
        user_id: UserId,
        /// Tokens issued before this moment are refused.
        issued_before: u64,
    },
}

impl Revocation {
    /// Revokes the token with this id.
    pub fn token(jti: impl Into<String>) -> Self {
        Revocation::Token { jti: jti.into() }
    }

    /// Revokes every token of `user` issued before `at`.
    pub fn user_before(user: impl Into<UserId>, at: SystemTime) -> Self {
        Revocation::User {
            user_id: user.into(),
            issued_before: unix(at),
        }
    }

    /// Whether a token of this identity is revoked by this.
    pub(crate) fn covers(&self, identity: &Identity) -> bool {
        match self {
            Revocation::Token { jti } => identity.jti.as_deref() == Some(jti.as_str()),
            Revocation::User {
                user_id,
                issued_before,
            } => &identity.user == user_id && identity.issued_at < *issued_before,
        }
    }
}
