//! Cross-origin requests from browsers (`[server.cors] allowed_origins`):
//! answers preflight `OPTIONS` requests and adds `Access-Control-*`
//! headers to answers (HTTP API and event streams) for allowed origins.
//! With no origin configured (the default) nothing is added: a page can
//! only call the API from the server's own origin.

use plugin_api::transport::{ApiRequest, ApiResponse, Header};
use plugin_api::types::RVec;

/// Request headers a browser may send.
const ALLOWED_HEADERS: &str =
    "Client-ID, X-Project-ID, X-Auth-Token, Content-Type, Last-Event-ID, Accept, URL-Signature, URL-Expires, URL-Methods, URL-Paths";
/// Methods of the API.
const ALLOWED_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";
/// Answer headers a page may read.
const EXPOSED_HEADERS: &str = "Location, X-OpenStack-Request-ID";
/// Seconds a browser may cache a preflight answer.
const MAX_AGE: &str = "600";

/// The allowed origins.
#[derive(Debug, Clone, Default)]
pub struct Cors {
    origins: Vec<String>,
    any: bool,
}

fn header<'a>(request: &'a ApiRequest, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|h| h.name.as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

impl Cors {
    /// From `[server.cors] allowed_origins` (`"*"` allows any origin).
    pub fn new(origins: &[String]) -> Self {
        Self {
            any: origins.iter().any(|o| o == "*"),
            origins: origins
                .iter()
                .filter(|o| *o != "*")
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether a page of `origin` may call the API.
    pub fn allows(&self, origin: &str) -> bool {
        self.any || self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }

    /// The request's `Origin` when it is an allowed one.
    pub fn allowed_origin(&self, request: &ApiRequest) -> Option<String> {
        header(request, "origin")
            .filter(|origin| self.allows(origin))
            .map(str::to_string)
    }

    /// The answer to a preflight request (`OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`) from an allowed origin; `None`
    /// for anything else, which is served as usual.
    pub fn preflight(&self, request: &ApiRequest) -> Option<ApiResponse> {
        if request.method.as_str() != "OPTIONS"
            || header(request, "access-control-request-method").is_none()
        {
            return None;
        }
        let origin = self.allowed_origin(request)?;
        let mut headers = RVec::new();
        for (name, value) in [
            ("access-control-allow-origin", origin.as_str()),
            ("access-control-allow-methods", ALLOWED_METHODS),
            ("access-control-allow-headers", ALLOWED_HEADERS),
            ("access-control-expose-headers", EXPOSED_HEADERS),
            ("access-control-max-age", MAX_AGE),
            ("vary", "Origin"),
        ] {
            headers.push(Header::new(name, value));
        }
        Some(ApiResponse {
            status: 204,
            headers,
            body: RVec::new(),
        })
    }

    /// Adds the headers that let a page of an allowed origin read an
    /// answer.
    pub fn decorate(&self, origin: Option<&str>, headers: &mut RVec<Header>) {
        let Some(origin) = origin else {
            return;
        };
        headers.push(Header::new("access-control-allow-origin", origin));
        headers.push(Header::new(
            "access-control-expose-headers",
            EXPOSED_HEADERS,
        ));
        headers.push(Header::new("vary", "Origin"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_exactly_or_through_the_wildcard() {
        let cors = Cors::new(&["https://dash.example/".into()]);
        assert!(cors.allows("https://dash.example"));
        assert!(cors.allows("HTTPS://DASH.EXAMPLE"));
        assert!(!cors.allows("https://dash.example.evil"));
        assert!(!cors.allows("http://dash.example"));
        assert!(Cors::new(&["*".into()]).allows("https://anything"));
        assert!(!Cors::default().allows("https://dash.example"));
    }
}
