//! The web console at `/ui/` on the HTTP transport: static HTML, CSS and
//! JavaScript compiled into the binary (the JavaScript client of
//! `clients/js/src` included as it is), plus `/ui/config.json`, which tells
//! the page where the WebSocket transport listens.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::api::http::HttpResponse;

/// `[ui]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UiConfig {
    /// Serve the console at `/ui/` on the HTTP transport.
    pub enabled: bool,
    /// The WebSocket URL the console connects to (`wss://host/ws` behind a
    /// proxy). Unset: the websocket transport's bound port on the host name
    /// the page was loaded from; no websocket transport: SSE.
    pub websocket_url: Option<String>,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            websocket_url: None,
        }
    }
}

/// One file of the console.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $content_type:expr, $file:literal) => {
        Asset {
            path: $path,
            content_type: $content_type,
            body: include_bytes!($file),
        }
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every file served under `/ui/` (the console's own, then the client's
/// modules, which the console imports from `/ui/client/`).
const ASSETS: &[Asset] = &[
    asset!("", HTML, "../ui/index.html"),
    asset!("console.js", JS, "../ui/console.js"),
    asset!("console.css", CSS, "../ui/console.css"),
    asset!("client/index.js", JS, "../../clients/js/src/index.js"),
    asset!("client/client.js", JS, "../../clients/js/src/client.js"),
    asset!("client/http.js", JS, "../../clients/js/src/http.js"),
    asset!("client/longpoll.js", JS, "../../clients/js/src/longpoll.js"),
    asset!("client/sse.js", JS, "../../clients/js/src/sse.js"),
    asset!(
        "client/subscription.js",
        JS,
        "../../clients/js/src/subscription.js"
    ),
    asset!(
        "client/websocket.js",
        JS,
        "../../clients/js/src/websocket.js"
    ),
];

/// The page may run its own scripts and styles only, and talk to its own
/// origin and any WebSocket: message content can never become code.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The console's state: its configuration and, once the websocket
/// transport listens, its bound address.
#[derive(Debug, Default)]
pub struct Console {
    config: UiConfig,
    websocket_address: OnceLock<String>,
}

impl Console {
    /// The console `[ui]` describes.
    pub fn new(config: &UiConfig) -> Self {
        Self {
            config: config.clone(),
            websocket_address: OnceLock::new(),
        }
    }

    /// Records where the websocket transport listens (`host:port`).
    pub fn websocket_listening(&self, address: &str) {
        let _ = self.websocket_address.set(address.to_string());
    }

    /// Serves a request under `/ui`, or `None` when the path is not the
    /// console's (or the console is off), for the API to route.
    pub fn serve(&self, method: &str, path: &str, host: Option<&str>) -> Option<HttpResponse> {
        if !self.config.enabled {
            return None;
        }
        let rest = match path.strip_prefix("/ui") {
            Some("") => {
                return Some(HttpResponse::empty(308).with("location", "/ui/".into()));
            }
            Some(rest) => rest.strip_prefix('/')?,
            None => return None,
        };
        if method != "GET" && method != "HEAD" {
            return Some(
                HttpResponse::empty(405)
                    .with("allow", "GET, HEAD".into())
                    .with("content-length", "0".into()),
            );
        }
        if rest == "config.json" {
            let websocket_url = self.websocket_url(host);
            let body = serde_json::to_vec(&serde_json::json!({ "websocket_url": websocket_url }))
                .unwrap_or_default();
            return Some(HttpResponse::json(200, body).with("cache-control", "no-cache".into()));
        }
        let Some(asset) = ASSETS.iter().find(|a| a.path == rest) else {
            return Some(
                HttpResponse {
                    status: 404,
                    headers: vec![("content-type", "text/plain; charset=utf-8".into())],
                    body: b"Not found\n".to_vec(),
                }
                .with("x-content-type-options", "nosniff".into()),
            );
        };
        Some(HttpResponse {
            status: 200,
            headers: vec![
                ("content-type", asset.content_type.into()),
                ("cache-control", "no-cache".into()),
                ("x-content-type-options", "nosniff".into()),
                ("content-security-policy", CONTENT_SECURITY_POLICY.into()),
                ("referrer-policy", "no-referrer".into()),
            ],
            body: asset.body.to_vec(),
        })
    }

    /// `[ui] websocket_url`, else `ws://` + the name the page was loaded
    /// by + the websocket transport's port; `None` without the transport.
    fn websocket_url(&self, host: Option<&str>) -> Option<String> {
        if let Some(url) = &self.config.websocket_url {
            return Some(url.clone());
        }
        let bound = self.websocket_address.get()?;
        let (bound_host, port) = bound.rsplit_once(':')?;
        let name = host.map(host_name).unwrap_or(bound_host);
        Some(format!("ws://{name}:{port}"))
    }
}

/// The name part of a `Host` header (`[::1]:8888` → `[::1]`).
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    host.split(':').next().unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(response: &'a HttpResponse, name: &str) -> Option<&'a str> {
        response
            .headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn every_client_module_is_served() {
        // The console imports the client's modules from /ui/client/: a new
        // module in clients/js/src must be listed in ASSETS too.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../clients/js/src");
        for entry in std::fs::read_dir(dir).expect("clients/js/src") {
            let name = entry.expect("entry").file_name();
            let path = format!("client/{}", name.to_string_lossy());
            assert!(
                ASSETS.iter().any(|a| a.path == path),
                "{path} is not in the console's ASSETS"
            );
        }
    }

    #[test]
    fn config_names_the_websocket_on_the_page_host() {
        let console = Console::new(&UiConfig::default());
        let answer = console
            .serve("GET", "/ui/config.json", Some("dash.example:8888"))
            .expect("served");
        assert_eq!(answer.body, br#"{"websocket_url":null}"#);
        console.websocket_listening("0.0.0.0:9000");
        let answer = console
            .serve("GET", "/ui/config.json", Some("dash.example:8888"))
            .expect("served");
        assert_eq!(
            answer.body,
            br#"{"websocket_url":"ws://dash.example:9000"}"#
        );
        let answer = console
            .serve("GET", "/ui/config.json", Some("[::1]:8888"))
            .expect("served");
        assert_eq!(answer.body, br#"{"websocket_url":"ws://[::1]:9000"}"#);
        let configured = Console::new(&UiConfig {
            enabled: true,
            websocket_url: Some("wss://dash.example/ws".into()),
        });
        let answer = configured
            .serve("GET", "/ui/config.json", None)
            .expect("served");
        assert_eq!(answer.body, br#"{"websocket_url":"wss://dash.example/ws"}"#);
    }

    #[test]
    fn pages_routes_and_methods() {
        let console = Console::new(&UiConfig::default());
        let page = console.serve("GET", "/ui/", None).expect("served");
        assert_eq!(page.status, 200);
        assert_eq!(header(&page, "content-type"), Some(HTML));
        assert!(header(&page, "content-security-policy").is_some());
        let redirect = console.serve("GET", "/ui", None).expect("served");
        assert_eq!(
            (redirect.status, header(&redirect, "location")),
            (308, Some("/ui/"))
        );
        assert_eq!(
            console
                .serve("GET", "/ui/nothing.js", None)
                .map(|r| r.status),
            Some(404)
        );
        assert_eq!(
            console.serve("POST", "/ui/", None).map(|r| r.status),
            Some(405)
        );
        assert!(console.serve("GET", "/v2/queues", None).is_none());
        assert!(console.serve("GET", "/uix", None).is_none());
        let off = Console::new(&UiConfig {
            enabled: false,
            websocket_url: None,
        });
        assert!(off.serve("GET", "/ui/", None).is_none());
    }
}
