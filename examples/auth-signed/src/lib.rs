//! An out-of-tree auth strategy for zaqar-server: tokens your own issuer
//! signs with a key the server shares, checked without a database or a
//! network call.
//!
//! ```toml
//! [plugins]
//! paths = ["target/release/libzaqar_auth_signed.so"]
//!
//! [server]
//! auth_strategy = "signed"
//!
//! [drivers.auth.signed]
//! key = "a long random secret shared with the issuer"
//! ```
//!
//! A token is `PROJECT.USER.ROLES.EXPIRES.SIGNATURE`: roles joined by `+`
//! (may be empty), `EXPIRES` in seconds since the epoch, and `SIGNATURE`
//! the lowercase hex HMAC-SHA256, under the key, of everything before the
//! last dot. The fields cannot contain dots.

use hmac::{Hmac, Mac};
use plugin_api::{
    auth::{AuthRequest, Authenticator, Identity},
    types::{ROption, RString},
    ErrorCode, LogLevel, PluginContext, PluginError, PluginResult,
};
use serde::Deserialize;
use sha2::Sha256;

/// `[drivers.auth.signed]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The shared signing key.
    key: String,
}

/// The `signed` strategy.
pub struct SignedTokens {
    key: Vec<u8>,
}

/// What every refusal says: the host answers 401 with its own body, and
/// which check failed is nobody's business but the log's.
fn refused(why: &str) -> PluginError {
    PluginError::new(ErrorCode::UNAUTHORIZED, format!("token refused: {why}"))
}

impl SignedTokens {
    async fn open(context: PluginContext) -> PluginResult<Self> {
        let config: Config = context.config()?;
        if config.key.len() < 32 {
            return Err(PluginError::bad_config(
                "`key` must be at least 32 characters: a short key can be guessed",
            ));
        }
        context.log(LogLevel::INFO, "signed tokens: ready");
        Ok(Self {
            key: config.key.into_bytes(),
        })
    }

    fn check(&self, token: &str, now_ms: u64) -> PluginResult<Identity> {
        let (signed, signature) = token.rsplit_once('.').ok_or_else(|| refused("malformed"))?;
        let signature = decode_hex(signature).ok_or_else(|| refused("malformed signature"))?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(signed.as_bytes());
        // Constant time: how long this takes says nothing about the
        // signature's first wrong byte.
        mac.verify_slice(&signature)
            .map_err(|_| refused("bad signature"))?;
        let fields: Vec<&str> = signed.split('.').collect();
        let [project, user, roles, expires] = fields[..] else {
            return Err(refused("malformed"));
        };
        let expires_ms = expires
            .parse::<u64>()
            .map_err(|_| refused("malformed expiry"))?
            .saturating_mul(1000);
        if project.is_empty() || user.is_empty() {
            return Err(refused("no project or user"));
        }
        if expires_ms <= now_ms {
            return Err(refused("expired"));
        }
        Ok(Identity {
            project: project.into(),
            user: user.into(),
            roles: roles
                .split('+')
                .filter(|r| !r.is_empty())
                .map(RString::from)
                .collect(),
            expires_ms: ROption::RSome(expires_ms),
        })
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Authenticator for SignedTokens {
    async fn authenticate(&self, request: AuthRequest, now_ms: u64) -> PluginResult<Identity> {
        let token = request.token().ok_or_else(|| refused("no token"))?;
        self.check(token, now_ms)
    }
}

plugin_api::auth_entry_points! {
    pub fn auth_entry_points;
    auth "signed" => SignedTokens::open,
}

plugin_api::export_plugin!(auth = auth_entry_points);
