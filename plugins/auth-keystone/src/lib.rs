//! The `keystone` auth strategy of zaqar-server: every request's
//! `X-Auth-Token` (or `Authorization: Bearer`) is validated against
//! OpenStack Keystone v3, as keystonemiddleware does in front of Zaqar.
//!
//! | module | what it does |
//! |---|---|
//! | [`config`] | `[drivers.auth.keystone]`, with keystonemiddleware's option names |
//! | [`client`] | the two Keystone calls: obtaining the service token, validating a user's |
//! | [`token`] | Keystone's token document → the request's identity |
//! | [`cache`] | validations reused until the token expires or `token_cache_time` passes |
//!
//! A missing, unknown, revoked, expired or not project-scoped token is
//! refused with [`ErrorCode::UNAUTHORIZED`] (401); a Keystone that cannot
//! be asked gives [`ErrorCode::UNAVAILABLE`] (503), never 401. See
//! `docs/auth.md`.

pub mod cache;
pub mod client;
pub mod config;
pub mod token;

use std::sync::Mutex;

use http::HeaderValue;
use plugin_api::{
    auth::{AuthRequest, Authenticator, Identity},
    ErrorCode, LogLevel, PluginContext, PluginError, PluginResult,
};

use cache::{ValidationCache, Verdict};
use client::{KeystoneClient, ServiceToken, Validation};
pub use config::KeystoneConfig;
use token::TokenDocument;

/// What a refused request is told: keystonemiddleware's words.
pub const UNAUTHORIZED_MESSAGE: &str = "The request you have made requires authentication.";

/// What a request is told when Keystone cannot be asked: keystonemiddleware's
/// words.
pub const UNAVAILABLE_MESSAGE: &str = "The Keystone service is temporarily unavailable.";

/// Tokens longer than this are refused without asking Keystone (Fernet
/// tokens are under 300 bytes; Keystone's own limit is 8 KiB).
const MAX_TOKEN_BYTES: usize = 8192;

/// A service token is renewed this long before it expires, so a validation
/// never goes out with a token about to lapse.
const SERVICE_TOKEN_MARGIN_MS: u64 = 60_000;

/// The `keystone` strategy.
pub struct KeystoneAuth {
    client: KeystoneClient,
    /// The service's own token; one fetch at a time.
    service: tokio::sync::Mutex<Option<ServiceToken>>,
    cache: Mutex<ValidationCache>,
    cache_time_ms: u64,
    context: PluginContext,
}

impl KeystoneAuth {
    /// Builds the strategy from its configuration. Keystone is not
    /// contacted yet: the server starts even while Keystone is down, and
    /// requests get 503 until it is back.
    pub async fn open(context: PluginContext) -> PluginResult<Self> {
        let config: KeystoneConfig = context.config()?;
        let client = KeystoneClient::new(&config)?;
        context.log(
            LogLevel::INFO,
            &format!(
                "validating tokens with Keystone at {} as {}; cache: {} entries for at most {} s",
                config.auth_url, config.username, config.token_cache_size, config.token_cache_time
            ),
        );
        Ok(Self {
            client,
            service: tokio::sync::Mutex::new(None),
            cache: Mutex::new(ValidationCache::new(config.token_cache_size)),
            cache_time_ms: config.token_cache_time.saturating_mul(1000),
            context,
        })
    }

    fn refuse(&self, request: &AuthRequest, why: &str) -> PluginError {
        self.context.log(
            LogLevel::INFO,
            &format!("refused a request from {}: {why}", request.peer),
        );
        PluginError::unauthorized(UNAUTHORIZED_MESSAGE)
    }

    /// The service token, obtained anew when there is none or it is about
    /// to expire.
    async fn service_token(&self, now_ms: u64) -> PluginResult<ServiceToken> {
        let mut service = self.service.lock().await;
        if let Some(token) = service.as_ref() {
            if token.expires_ms > now_ms.saturating_add(SERVICE_TOKEN_MARGIN_MS) {
                return Ok(token.clone());
            }
        }
        let token = self.client.service_token().await?;
        *service = Some(token.clone());
        Ok(token)
    }

    /// Drops `refused` unless another request has replaced it already.
    async fn forget_service_token(&self, refused: &ServiceToken) {
        let mut service = self.service.lock().await;
        if service.as_ref().map(|t| &t.header) == Some(&refused.header) {
            *service = None;
        }
    }

    /// Asks Keystone about `token`: its document, or `None` when Keystone
    /// does not know it. A new service token is obtained once if Keystone
    /// no longer accepts the current one.
    async fn ask(
        &self,
        token: HeaderValue,
        now_ms: u64,
    ) -> PluginResult<Option<Box<TokenDocument>>> {
        for _ in 0..2 {
            let service = self.service_token(now_ms).await?;
            match self.client.validate(&service, token.clone()).await? {
                Validation::Valid(document) => return Ok(Some(document)),
                Validation::NotFound => return Ok(None),
                Validation::ServiceTokenRefused => self.forget_service_token(&service).await,
            }
        }
        Err(PluginError::unavailable(
            "Keystone refused a service token it had just issued",
        ))
    }

    fn cached(&self, key: &[u8; 32], now_ms: u64) -> Option<Verdict> {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key, now_ms)
    }

    fn remember(&self, key: [u8; 32], verdict: Verdict, until_ms: u64, now_ms: u64) {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, verdict, until_ms, now_ms);
    }
}

impl Authenticator for KeystoneAuth {
    async fn authenticate(&self, request: AuthRequest, now_ms: u64) -> PluginResult<Identity> {
        let Some(token) = request.token() else {
            return Err(self.refuse(&request, "no token"));
        };
        if token.len() > MAX_TOKEN_BYTES {
            return Err(self.refuse(&request, "token too long"));
        }
        let Ok(header) = HeaderValue::from_str(token) else {
            return Err(self.refuse(&request, "malformed token"));
        };
        let key = cache::key(token);
        match self.cached(&key, now_ms) {
            Some(Verdict::Valid(identity)) => return Ok(identity),
            Some(Verdict::Refused) => return Err(self.refuse(&request, "invalid token (cached)")),
            None => {}
        }
        let answer = self.ask(header, now_ms).await.inspect_err(|e| {
            if e.code == ErrorCode::UNAVAILABLE {
                self.context.log(
                    LogLevel::WARN,
                    &format!("cannot validate a token: {}", e.message),
                );
            }
        });
        let answer = answer.map_err(|e| match e.code {
            ErrorCode::UNAVAILABLE => PluginError::unavailable(UNAVAILABLE_MESSAGE),
            _ => e,
        })?;
        let cache_until = now_ms.saturating_add(self.cache_time_ms);
        let refused = |why: &str| {
            self.remember(key, Verdict::Refused, cache_until, now_ms);
            Err(self.refuse(&request, why))
        };
        match answer {
            Some(document) => match document.identity(now_ms) {
                Ok(identity) => {
                    let until = cache_until.min(document.expires_ms);
                    self.remember(key, Verdict::Valid(identity.clone()), until, now_ms);
                    Ok(identity)
                }
                Err(why) => refused(why),
            },
            None => refused("Keystone does not know the token"),
        }
    }
}

plugin_api::auth_entry_points! {
    pub fn auth_entry_points;
    auth "keystone" => KeystoneAuth::open,
}

plugin_api::register_builtin!(auth = auth_entry_points);
