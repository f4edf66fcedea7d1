//! The two Keystone v3 calls the strategy makes, and how their answers are
//! read:
//!
//! * `POST /v3/auth/tokens` (password, project-scoped) obtains the service
//!   token; Keystone answers 201 with it in `X-Subject-Token`.
//! * `GET /v3/auth/tokens` with `X-Auth-Token: <service token>` and
//!   `X-Subject-Token: <user token>` validates a user's token: 200 with the
//!   token document, 404 for a token that is unknown, revoked or expired,
//!   401 when the *service* token is no longer accepted.
//!
//! As keystonemiddleware does, a Keystone that cannot be reached, times
//! out, answers 5xx or any other unexpected status is a service failure
//! ([`ErrorCode::UNAVAILABLE`]), never a refusal of the user's token.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http::{header::CONTENT_TYPE, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioTimer,
};
use plugin_api::{PluginError, PluginResult};
use rustls::pki_types::{pem::PemObject as _, CertificateDer};
use serde_json::json;

use crate::{config::KeystoneConfig, token::TokenDocument};

/// The largest Keystone answer read (a token document with a big catalog
/// is tens of kilobytes).
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A token the service obtained for itself.
#[derive(Clone)]
pub struct ServiceToken {
    /// The token, ready to send.
    pub header: HeaderValue,
    /// When Keystone said it expires.
    pub expires_ms: u64,
}

/// What Keystone said about a user's token.
pub enum Validation {
    /// Valid; its document.
    Valid(Box<TokenDocument>),
    /// Not valid (404).
    NotFound,
    /// The service token was refused (401): obtain another and ask again.
    ServiceTokenRefused,
}

/// Talks to one Keystone.
pub struct KeystoneClient {
    http: HttpClient,
    tokens_url: String,
    request_timeout: Duration,
    service_auth: Bytes,
}

impl KeystoneClient {
    /// A client for `config`'s Keystone.
    pub fn new(config: &KeystoneConfig) -> PluginResult<Self> {
        let base = config.auth_url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(PluginError::bad_config(format!(
                "auth_url {:?} is not an http:// or https:// URL",
                config.auth_url
            )));
        }
        let v3 = if base.ends_with("/v3") {
            base.to_string()
        } else {
            format!("{base}/v3")
        };
        let tokens_url = format!("{v3}/auth/tokens");
        tokens_url
            .parse::<http::Uri>()
            .map_err(|e| PluginError::bad_config(format!("auth_url {:?}: {e}", config.auth_url)))?;
        if config.http_connect_timeout == 0 || config.http_request_timeout == 0 {
            return Err(PluginError::bad_config(
                "http_connect_timeout and http_request_timeout must be at least 1 second",
            ));
        }
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(config.http_connect_timeout)));
        http.set_nodelay(true);
        let connector = HttpsConnector::from((http, Arc::new(tls_config(config)?)));
        let client = Client::builder(PluginExecutor)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        let service_auth = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": config.username,
                "domain": {"name": config.user_domain_name},
                "password": config.password,
            }}},
            "scope": {"project": {
                "name": config.project_name,
                "domain": {"name": config.project_domain_name},
            }},
        }});
        Ok(Self {
            http: client,
            tokens_url,
            request_timeout: Duration::from_secs(config.http_request_timeout),
            service_auth: Bytes::from(service_auth.to_string()),
        })
    }

    /// Obtains a service token with the configured credentials.
    pub async fn service_token(&self) -> PluginResult<ServiceToken> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(&self.tokens_url)
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(self.service_auth.clone()))
            .map_err(|e| {
                PluginError::internal(format!("building the service token request: {e}"))
            })?;
        let (status, header, body) = self.send(request).await?;
        if status != StatusCode::CREATED && status != StatusCode::OK {
            let why = if status == StatusCode::UNAUTHORIZED {
                " (check the service credentials in [drivers.auth.keystone])"
            } else {
                ""
            };
            return Err(PluginError::unavailable(format!(
                "Keystone refused the service token request with {status}{why}"
            )));
        }
        let header = header.ok_or_else(|| {
            PluginError::unavailable("Keystone issued a token without X-Subject-Token")
        })?;
        let document = TokenDocument::parse(&body).map_err(PluginError::unavailable)?;
        Ok(ServiceToken {
            header,
            expires_ms: document.expires_ms,
        })
    }

    /// Asks Keystone about `token`, as `service`.
    pub async fn validate(
        &self,
        service: &ServiceToken,
        token: HeaderValue,
    ) -> PluginResult<Validation> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(&self.tokens_url)
            .header("x-auth-token", service.header.clone())
            .header("x-subject-token", token)
            .body(Full::new(Bytes::new()))
            .map_err(|e| PluginError::internal(format!("building the validation request: {e}")))?;
        let (status, _, body) = self.send(request).await?;
        match status {
            StatusCode::OK => TokenDocument::parse(&body)
                .map(|d| Validation::Valid(Box::new(d)))
                .map_err(PluginError::unavailable),
            StatusCode::NOT_FOUND => Ok(Validation::NotFound),
            StatusCode::UNAUTHORIZED => Ok(Validation::ServiceTokenRefused),
            StatusCode::FORBIDDEN => Err(PluginError::unavailable(
                "Keystone does not let the service user validate tokens \
                 (give it the `service` role in its project)",
            )),
            other => Err(PluginError::unavailable(format!(
                "Keystone answered a token validation with {other}"
            ))),
        }
    }

    /// Sends one request; any transport failure or timeout is UNAVAILABLE.
    async fn send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> PluginResult<(StatusCode, Option<HeaderValue>, Bytes)> {
        let exchange = async {
            let response = self.http.request(request).await.map_err(|e| {
                PluginError::unavailable(format!(
                    "Keystone at {} unreachable: {e}",
                    self.tokens_url
                ))
            })?;
            let status = response.status();
            let subject = response.headers().get("x-subject-token").cloned();
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| PluginError::unavailable(format!("reading Keystone's answer: {e}")))?
                .to_bytes();
            Ok((status, subject, body))
        };
        tokio::time::timeout(self.request_timeout, exchange)
            .await
            .map_err(|_| {
                PluginError::unavailable(format!(
                    "Keystone at {} did not answer within {:?}",
                    self.tokens_url, self.request_timeout
                ))
            })?
    }
}

/// Runs the HTTP client's background tasks on the plugin's runtime.
#[derive(Clone, Copy)]
struct PluginExecutor;

impl<F> hyper::rt::Executor<F> for PluginExecutor
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        plugin_api::runtime::spawn(future);
    }
}

/// rustls with the ring provider, Mozilla's roots and the operator's
/// `cafile`.
fn tls_config(config: &KeystoneConfig) -> PluginResult<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &config.cafile {
        let bad = |e: &dyn std::fmt::Display| {
            PluginError::bad_config(format!("cafile {}: {e}", path.display()))
        };
        let pem = std::fs::read(path).map_err(|e| bad(&e))?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
            added += 1;
        }
        if added == 0 {
            return Err(bad(&"no PEM certificate in it"));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PluginError::internal(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
