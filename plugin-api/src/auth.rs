//! The authentication contract (`zaqar.auth`), since 1.1: turning a
//! request's credentials into an identity.
//!
//! The operator picks one strategy with `[server] auth_strategy`; the host
//! calls it for every HTTP request and for the WebSocket `authenticate`
//! action, then applies the identity: the project a request acts on, and
//! the roles its policy checks (admin-only routes need `admin`).

use abi_stable::{
    std_types::{ROption, RString, RVec},
    StableAbi,
};

use crate::{
    macros::plugin_trait,
    transport::{Header, Protocol},
};

/// The credentials a request carries.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct AuthRequest {
    /// The request headers (for WebSocket, the `authenticate` frame's
    /// headers), lowercase names. Tokens usually come in `x-auth-token`
    /// or `authorization: Bearer ...`.
    pub headers: RVec<Header>,
    /// How the request arrived.
    pub protocol: Protocol,
    /// The peer address, for logs.
    pub peer: RString,
}

impl AuthRequest {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.as_str() == name)
            .map(|h| h.value.as_str())
    }

    /// The token of `X-Auth-Token`, or else of `Authorization: Bearer`.
    pub fn token(&self) -> Option<&str> {
        self.header("x-auth-token")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .or_else(|| {
                let value = self.header("authorization")?.trim();
                let (scheme, token) = value.split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then(|| token.trim())
                    .filter(|t| !t.is_empty())
            })
    }
}

/// Who a request is, as an auth plugin established it.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The project (tenant) the request acts on.
    pub project: RString,
    /// The user, for logs.
    pub user: RString,
    /// The roles the policy checks (`admin` opens admin-only routes).
    pub roles: RVec<RString>,
    /// When the credentials expire (ms since the epoch), if they do; a
    /// WebSocket that authenticated with them must authenticate again
    /// before then.
    pub expires_ms: ROption<u64>,
}

plugin_trait! {
    /// An auth strategy: implement this for a `zaqar.auth` plugin.
    ///
    /// Refuse with [`crate::ErrorCode::UNAUTHORIZED`] (the host answers 401)
    /// when credentials are missing, invalid or expired, and with
    /// [`crate::ErrorCode::UNAVAILABLE`] (503, never 401) when the identity
    /// service cannot be asked.
    native Authenticator;
    abi AuthenticatorAbi, object AuthenticatorAbi_TO, boxed AuthenticatorBox, adapter AuthenticatorAdapter, wrap wrap_authenticator;
    methods {}
    last {
        /// The identity behind `request`'s credentials at `now_ms`.
        fn authenticate(&self, request: AuthRequest, now_ms: u64) -> Identity;
    }
}
