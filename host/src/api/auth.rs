//! Who a request is: the identity an auth strategy establishes, and the
//! policy applied to it.
//!
//! With `auth_strategy = "noauth"` (the default, Zaqar's empty strategy) a
//! request names its project with `X-Project-ID` and `X-Roles: admin`
//! grants the admin role. With an auth plugin, every request (HTTP, or the
//! WebSocket `authenticate` frame) is checked by it: the project comes from
//! the identity, an `X-Project-ID` naming another project is refused, and
//! roles come only from the identity. Pre-signed URLs are checked by their
//! signature instead, and open only what they sign.

use std::{collections::HashMap, sync::Mutex};

use plugin_api::{
    auth::{AuthRequest, Authenticator, AuthenticatorBox, Identity},
    transport::{Header, Protocol},
    ErrorCode,
};

use super::errors::ApiError;

/// The identity behind a request, once authenticated.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The project the request acts on.
    pub project: String,
    /// Whether the identity has the admin role.
    pub admin: bool,
    /// When the credentials expire (ms since the epoch), if they do.
    pub expires_ms: Option<u64>,
}

impl Authenticated {
    fn from_identity(identity: Identity) -> Self {
        Self {
            admin: identity
                .roles
                .iter()
                .any(|role| role.as_str().eq_ignore_ascii_case("admin")),
            project: identity.project.into_string(),
            expires_ms: identity.expires_ms.into_option(),
        }
    }

    /// The project a request acts on: the identity's. A client that names
    /// another one in `X-Project-ID` is refused rather than trusted.
    pub fn project_for(&self, claimed: Option<&str>) -> Result<&str, ApiError> {
        match claimed.map(str::trim) {
            Some(claimed) if !claimed.is_empty() && claimed != self.project => {
                Err(ApiError::Forbidden)
            }
            _ => Ok(&self.project),
        }
    }
}

/// The configured auth strategy, and the identities of authenticated
/// WebSocket connections.
pub struct Auth {
    strategy: AuthenticatorBox,
    sockets: Mutex<HashMap<String, Authenticated>>,
}

impl Auth {
    /// Checks requests with `strategy`.
    pub fn new(strategy: AuthenticatorBox) -> Self {
        Self {
            strategy,
            sockets: Mutex::new(HashMap::new()),
        }
    }

    /// Authenticates one request by its headers.
    pub async fn authenticate(
        &self,
        headers: &[Header],
        protocol: Protocol,
        peer: &str,
        now_ms: u64,
    ) -> Result<Authenticated, ApiError> {
        let request = AuthRequest {
            headers: headers.to_vec().into(),
            protocol,
            peer: peer.into(),
        };
        match self.strategy.authenticate(request, now_ms).await {
            Ok(identity) => Ok(Authenticated::from_identity(identity)),
            Err(error) if error.code == ErrorCode::UNAUTHORIZED => {
                tracing::info!(%peer, reason = %error.message, "request refused: not authenticated");
                Err(ApiError::Unauthorized)
            }
            Err(error) => {
                tracing::warn!(%error, "the auth strategy could not check a request");
                Err(ApiError::Unavailable(
                    "The identity service could not be reached.",
                ))
            }
        }
    }

    fn sockets(&self) -> std::sync::MutexGuard<'_, HashMap<String, Authenticated>> {
        self.sockets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers what a WebSocket authenticated as; later frames on it act
    /// as that identity until it expires.
    pub fn socket_authenticated(&self, connection: &str, identity: Authenticated) {
        self.sockets().insert(connection.to_string(), identity);
    }

    /// The live identity of a WebSocket, if it authenticated and its
    /// credentials have not expired.
    pub fn socket_identity(&self, connection: &str, now_ms: u64) -> Option<Authenticated> {
        let mut sockets = self.sockets();
        let identity = sockets.get(connection)?;
        if identity.expires_ms.is_some_and(|expiry| expiry <= now_ms) {
            sockets.remove(connection);
            return None;
        }
        Some(identity.clone())
    }

    /// Forgets a closed WebSocket.
    pub fn socket_closed(&self, connection: &str) {
        self.sockets().remove(connection);
    }
}
