//! The `http` and `https` notifier sinks of zaqar-server: one webhook POST
//! per delivery (Zaqar's `tasks/webhook.py`), optionally signed with
//! HMAC-SHA256.
//!
//! One attempt per call, as the [`Notifier`] contract asks: retries, backoff
//! and bookkeeping are the host's. The sink only says whether another
//! attempt could succeed (`DELIVERY_RETRYABLE`: timeouts, connection errors,
//! 5xx, 408, 429) or never will (`DELIVERY_PERMANENT`: other 4xx, a bad URI,
//! a refused private address, too many redirects).
//!
//! Unless the delivery allows private addresses, every address the target
//! (or a redirect target) resolves to is checked when connecting, see
//! [`connect`]. See `docs/notifiers.md` for options, configuration and how a
//! receiver verifies the signature.

mod config;
pub mod connect;
pub mod request;

use std::{future::Future, sync::Arc, time::Duration};

use tokio::time::Instant;

use bytes::Bytes;
use http::{
    header::{HeaderValue, AUTHORIZATION, COOKIE, LOCATION, PROXY_AUTHORIZATION},
    HeaderMap, Request, StatusCode, Uri,
};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::{client::legacy::Client, rt::TokioTimer};
use plugin_api::{
    notification::{Delivery, Notifier},
    ErrorCode, LogLevel, PluginContext, PluginError, PluginResult,
};
use rustls::pki_types::{pem::PemObject as _, CertificateDer};
use url::Url;

pub use config::WebhookConfig;
use connect::{AddressCheck, GuardedConnector, PrivateTarget};
use plugin_api::net::is_private_address;

/// The default `User-Agent`.
pub const DEFAULT_USER_AGENT: &str = concat!("zaqar-rs/", env!("CARGO_PKG_VERSION"));

/// How much of an error answer's body goes into the error message.
const EXCERPT_BYTES: usize = 200;
/// How much of a successful answer's body is read (so the connection can be
/// reused); the rest is dropped with the connection.
const DRAIN_BYTES: usize = 64 * 1024;
/// How long reading an answer's body may take once its status is known
/// (within the attempt's deadline): the status has decided already.
const READ_TIME: Duration = Duration::from_secs(1);

type HttpClient = Client<HttpsConnector<GuardedConnector>, Full<Bytes>>;

/// The webhook sink behind the `http` and `https` entry points.
pub struct WebhookNotifier {
    /// Refuses private addresses (connections checked at connect time).
    guarded: HttpClient,
    /// For deliveries that allow private addresses. A separate pool, so a
    /// connection opened under the permissive rule is never reused under the
    /// strict one.
    open: HttpClient,
    timeout: Duration,
    max_redirects: u32,
    user_agent: HeaderValue,
}

/// Runs the client's background connection tasks on the plugin's runtime.
#[derive(Clone, Copy)]
struct PluginExecutor;

impl<F> hyper::rt::Executor<F> for PluginExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        plugin_api::runtime::spawn(future);
    }
}

fn permanent(message: impl Into<String>) -> PluginError {
    PluginError::new(ErrorCode::DELIVERY_PERMANENT, message)
}

fn retryable(message: impl Into<String>) -> PluginError {
    PluginError::new(ErrorCode::DELIVERY_RETRYABLE, message)
}

impl WebhookNotifier {
    /// The constructor behind both entry points.
    pub async fn open(context: PluginContext) -> PluginResult<Self> {
        let config: WebhookConfig = context.config()?;
        let notifier = Self::new(&config)?;
        context.log(
            LogLevel::DEBUG,
            &format!(
                "webhook sink `{}` ready (timeout {} s, up to {} redirects)",
                context.name, config.timeout_secs, config.max_redirects
            ),
        );
        Ok(notifier)
    }

    /// Builds the sink from its configuration.
    pub fn new(config: &WebhookConfig) -> PluginResult<Self> {
        Self::with_address_check(config, is_private_address)
    }

    /// Like [`WebhookNotifier::new`] with another rule for the addresses
    /// refused when a delivery does not allow private ones. For tests that
    /// need a "public" first hop on a machine with only loopback addresses.
    #[doc(hidden)]
    pub fn with_address_check(config: &WebhookConfig, refuse: AddressCheck) -> PluginResult<Self> {
        if config.timeout_secs == 0 {
            return Err(PluginError::bad_config("timeout_secs must be at least 1"));
        }
        let user_agent =
            HeaderValue::from_str(config.user_agent.as_deref().unwrap_or(DEFAULT_USER_AGENT))
                .map_err(|_| PluginError::bad_config("user_agent is not a valid header value"))?;
        let tls = Arc::new(tls_config(config)?);
        let client = |refuse: Option<AddressCheck>| -> HttpClient {
            let connector =
                HttpsConnector::from((GuardedConnector::with_check(refuse), Arc::clone(&tls)));
            Client::builder(PluginExecutor)
                .pool_timer(TokioTimer::new())
                .timer(TokioTimer::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .pool_max_idle_per_host(8)
                .build(connector)
        };
        Ok(Self {
            guarded: client(Some(refuse)),
            open: client(None),
            timeout: Duration::from_secs(config.timeout_secs),
            max_redirects: config.max_redirects,
            user_agent,
        })
    }

    /// One attempt, redirects included, ending by `deadline`.
    async fn attempt(&self, delivery: &Delivery, deadline: Instant) -> PluginResult<()> {
        let options = request::parse_options(&delivery.options)?;
        let body = request::body(&delivery.payload, &options)?;
        let mut headers = request::headers(&self.user_agent, &options, &body)?;
        let mut target = parse_target(delivery.subscriber.as_str())?;
        set_basic_auth(&mut headers, &mut target)?;
        let client = if delivery.allow_private_addresses {
            &self.open
        } else {
            &self.guarded
        };
        let mut hop = 0;
        loop {
            let uri: Uri = target
                .as_str()
                .parse()
                .map_err(|e| permanent(format!("invalid subscriber URI {target}: {e}")))?;
            let mut post = Request::post(uri)
                .body(Full::new(body.clone()))
                .map_err(|e| permanent(format!("cannot build a request for {target}: {e}")))?;
            *post.headers_mut() = headers.clone();
            let response = match tokio::time::timeout_at(deadline, client.request(post)).await {
                Ok(answer) => answer.map_err(|e| send_error(&target, &e))?,
                Err(_) => {
                    return Err(retryable(format!(
                        "POST {target} timed out (timeout_secs = {})",
                        self.timeout.as_secs()
                    )))
                }
            };
            let status = response.status();
            // 303: the receiver processed the POST and points at a result
            // to GET, which a notifier has no use for.
            if status.is_success() || status == StatusCode::SEE_OTHER {
                // Delivered, whatever happens next. Reading the rest of
                // the answer only lets the connection be reused: bounded.
                let until = deadline.min(Instant::now() + READ_TIME);
                let _ =
                    tokio::time::timeout_at(until, read_limited(response.into_body(), DRAIN_BYTES))
                        .await;
                return Ok(());
            }
            if matches!(status.as_u16(), 301 | 302 | 307 | 308) {
                let location = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        permanent(format!(
                            "POST {target} answered {status} without a Location"
                        ))
                    })?;
                if hop >= self.max_redirects {
                    return Err(permanent(format!(
                        "POST {target} answered {status} to {location}: too many redirects \
                         (max_redirects = {})",
                        self.max_redirects
                    )));
                }
                let next = redirect_target(&target, &location)?;
                if next.origin() != target.origin() {
                    // Credentials meant for one host never go to another.
                    for name in [AUTHORIZATION, PROXY_AUTHORIZATION, COOKIE] {
                        headers.remove(name);
                    }
                }
                target = next;
                set_basic_auth(&mut headers, &mut target)?;
                hop += 1;
                continue;
            }
            // The status decides; the excerpt is only read while time is left.
            let until = deadline.min(Instant::now() + READ_TIME);
            let answer = tokio::time::timeout_at(
                until,
                read_limited(response.into_body(), EXCERPT_BYTES + 1),
            )
            .await
            .unwrap_or_default();
            let excerpt = excerpt(&answer);
            let message = format!("POST {target} answered {status}{excerpt}");
            return Err(match status.as_u16() {
                408 | 429 | 500..=599 => retryable(message),
                _ => permanent(message),
            });
        }
    }
}

impl Notifier for WebhookNotifier {
    async fn deliver(&self, delivery: Delivery) -> PluginResult<()> {
        let deadline = Instant::now() + self.timeout;
        self.attempt(&delivery, deadline).await
    }
}

/// The rustls client configuration: the ring provider, Mozilla's roots and
/// the operator's `ca_file`.
fn tls_config(config: &WebhookConfig) -> PluginResult<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &config.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| PluginError::bad_config(format!("ca_file {}: {e}", path.display())))?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert
                .map_err(|e| PluginError::bad_config(format!("ca_file {}: {e}", path.display())))?;
            roots
                .add(cert)
                .map_err(|e| PluginError::bad_config(format!("ca_file {}: {e}", path.display())))?;
            added += 1;
        }
        if added == 0 {
            return Err(PluginError::bad_config(format!(
                "ca_file {}: no PEM certificate in it",
                path.display()
            )));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PluginError::internal(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The subscriber URI as an `http`/`https` URL with a host; the fragment is
/// dropped (it is never sent).
fn parse_target(subscriber: &str) -> PluginResult<Url> {
    let mut url = Url::parse(subscriber)
        .map_err(|e| permanent(format!("invalid subscriber URI {subscriber:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(permanent(format!(
            "subscriber URI {subscriber:?} is not http or https"
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(permanent(format!(
            "subscriber URI {subscriber:?} has no host"
        )));
    }
    url.set_fragment(None);
    Ok(url)
}

/// Resolves a `Location` against the current target; refuses other schemes
/// and a downgrade from `https` to `http`.
fn redirect_target(current: &Url, location: &str) -> PluginResult<Url> {
    let next = current
        .join(location)
        .map_err(|e| permanent(format!("invalid redirect Location {location:?}: {e}")))?;
    let next = parse_target(next.as_str())?;
    if current.scheme() == "https" && next.scheme() == "http" {
        return Err(permanent(format!(
            "refused redirect from {current} to {next}: a downgrade from https to http"
        )));
    }
    Ok(next)
}

/// Moves `user:password@` of the URL into an `Authorization: Basic` header
/// (as python-requests does), so it is never sent in the request line.
fn set_basic_auth(headers: &mut HeaderMap, url: &mut Url) -> PluginResult<()> {
    if url.username().is_empty() && url.password().is_none() {
        return Ok(());
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let credentials = format!(
        "{}:{}",
        decode(url.username()),
        decode(url.password().unwrap_or(""))
    );
    let value = HeaderValue::from_str(&format!("Basic {}", base64(credentials.as_bytes())))
        .map_err(|_| permanent("invalid credentials in the subscriber URI"))?;
    headers.insert(AUTHORIZATION, value);
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Ok(())
}

/// Standard base64 with padding (only for Basic credentials).
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Classifies a failure to get an answer: a refused private target is
/// permanent, everything else (resolution, connection, TLS, a connection
/// cut mid-answer) may succeed later.
fn send_error(target: &Url, error: &hyper_util::client::legacy::Error) -> PluginError {
    let mut chain = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(private) = e.downcast_ref::<PrivateTarget>() {
            return permanent(format!("POST {target}: {private}"));
        }
        let text = e.to_string();
        if !chain.iter().any(|c: &String| c.contains(&text)) {
            chain.push(text);
        }
        source = e.source();
    }
    retryable(format!("POST {target} failed: {}", chain.join(": ")))
}

/// Reads at most about `limit` bytes of a body; errors end the read.
async fn read_limited(mut body: Incoming, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < limit {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    out.extend_from_slice(&data);
                }
            }
            _ => break,
        }
    }
    out
}

/// `": <first bytes of the body>"` on one line, or nothing for an empty body.
fn excerpt(body: &[u8]) -> String {
    let cut = &body[..body.len().min(EXCERPT_BYTES)];
    let text: String = String::from_utf8_lossy(cut)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        String::new()
    } else if body.len() > EXCERPT_BYTES {
        format!(": {text}…")
    } else {
        format!(": {text}")
    }
}

plugin_api::entry_points! {
    pub fn entry_points;
    notifier "http" => WebhookNotifier::open,
    notifier "https" => WebhookNotifier::open,
}

plugin_api::register_builtin!(entry_points);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648() {
        for (input, output) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), output);
        }
    }

    #[test]
    fn credentials_move_to_a_basic_header() {
        let mut url = parse_target("http://al%40ice:p%3Ass@example.com/hook#frag").unwrap();
        let mut headers = HeaderMap::new();
        set_basic_auth(&mut headers, &mut url).unwrap();
        assert_eq!(url.as_str(), "http://example.com/hook");
        assert_eq!(
            headers[AUTHORIZATION],
            format!("Basic {}", base64(b"al@ice:p:ss"))
        );
    }

    #[test]
    fn bad_targets_are_permanent() {
        for uri in ["not a uri", "ftp://example.com/", "http://", "mailto:a@b.c"] {
            assert_eq!(
                parse_target(uri).unwrap_err().code,
                ErrorCode::DELIVERY_PERMANENT,
                "{uri}"
            );
        }
    }

    #[test]
    fn redirects_resolve_relative_locations_and_refuse_downgrades() {
        let base = parse_target("https://example.com/a/b").unwrap();
        assert_eq!(
            redirect_target(&base, "c").unwrap().as_str(),
            "https://example.com/a/c"
        );
        assert_eq!(
            redirect_target(&base, "//other.example/x")
                .unwrap()
                .as_str(),
            "https://other.example/x"
        );
        assert_eq!(
            redirect_target(&base, "http://example.com/")
                .unwrap_err()
                .code,
            ErrorCode::DELIVERY_PERMANENT
        );
        assert_eq!(
            redirect_target(&base, "file:///etc/passwd")
                .unwrap_err()
                .code,
            ErrorCode::DELIVERY_PERMANENT
        );
    }

    #[test]
    fn excerpts_are_one_short_line() {
        assert_eq!(excerpt(b""), "");
        assert_eq!(excerpt(b"no\r\nsuch  hook"), ": no such hook");
        let long = vec![b'x'; EXCERPT_BYTES + 10];
        assert!(excerpt(&long).ends_with('…'));
    }
}
