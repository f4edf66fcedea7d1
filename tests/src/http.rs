//! A small blocking HTTP client for tests, with Zaqar's required headers
//! set by default.

use std::time::Duration;

use ureq::{http, Agent};

/// Talks to one server as one client (Client-ID) of one project.
#[derive(Clone)]
pub struct Client {
    agent: Agent,
    base: String,
    headers: Vec<(String, String)>,
}

impl Client {
    /// A client of `base` (`http://host:port`) with a random Client-ID and
    /// project `test-project`.
    pub fn new(base: &str) -> Self {
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Self {
            agent,
            base: base.trim_end_matches('/').to_string(),
            headers: vec![
                ("Client-ID".into(), uuid::Uuid::new_v4().to_string()),
                ("X-Project-ID".into(), "test-project".into()),
            ],
        }
    }

    fn with_header(&self, name: &str, value: &str) -> Self {
        let mut client = self.clone();
        client
            .headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        client.headers.push((name.into(), value.into()));
        client
    }

    /// The same client with another Client-ID.
    pub fn with_client_id(&self, id: &str) -> Self {
        self.with_header("Client-ID", id)
    }

    /// The same client in another project.
    pub fn with_project(&self, project: &str) -> Self {
        self.with_header("X-Project-ID", project)
    }

    /// The same client sending `X-Auth-Token: token` with every request
    /// (for servers with an auth strategy).
    pub fn with_token(&self, token: &str) -> Self {
        self.with_header("X-Auth-Token", token)
    }

    /// The same client with `X-Roles` (with no auth strategy, `admin`
    /// unlocks the admin API).
    pub fn with_roles(&self, roles: &str) -> Self {
        self.with_header("X-Roles", roles)
    }

    /// This client's Client-ID.
    pub fn client_id(&self) -> &str {
        &self
            .headers
            .iter()
            .find(|(n, _)| n == "Client-ID")
            .expect("client id")
            .1
    }

    /// A request with any method.
    pub fn request(&self, method: &str, path: &str) -> RequestBuilder {
        RequestBuilder {
            client: self.clone(),
            method: method.to_string(),
            url: format!("{}{path}", self.base),
            headers: self.headers.clone(),
            body: None,
        }
    }

    /// GET `path`.
    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request("GET", path)
    }

    /// HEAD `path`.
    pub fn head(&self, path: &str) -> RequestBuilder {
        self.request("HEAD", path)
    }

    /// PUT `path`.
    pub fn put(&self, path: &str) -> RequestBuilder {
        self.request("PUT", path)
    }

    /// POST `path`.
    pub fn post(&self, path: &str) -> RequestBuilder {
        self.request("POST", path)
    }

    /// PATCH `path`.
    pub fn patch(&self, path: &str) -> RequestBuilder {
        self.request("PATCH", path)
    }

    /// DELETE `path`.
    pub fn delete(&self, path: &str) -> RequestBuilder {
        self.request("DELETE", path)
    }
}

/// One request being built.
pub struct RequestBuilder {
    client: Client,
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

impl RequestBuilder {
    /// Sets a header (replacing one of the same name).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Leaves out a header the client would send.
    pub fn without_header(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    /// A JSON body (`Content-Type: application/json`).
    pub fn json(self, value: &serde_json::Value) -> Self {
        self.header("Content-Type", "application/json")
            .body(serde_json::to_vec(value).expect("serializable"))
    }

    /// A raw body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Sends it and reads the whole response. Panics on transport errors
    /// (connection refused, reset): a server that drops a connection is a
    /// test failure.
    pub fn send(self) -> Response {
        let what = format!("{} {}", self.method, self.url);
        self.try_send()
            .unwrap_or_else(|e| panic!("{what} failed: {e}"))
    }

    /// Sends it; transport errors (refused, reset, cut off mid-body) are
    /// returned, for tests that kill the server on purpose.
    pub fn try_send(self) -> Result<Response, String> {
        let mut request = http::Request::builder()
            .method(self.method.as_str())
            .uri(&self.url);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let result = match self.body {
            Some(body) => self
                .client
                .agent
                .run(request.body(body).expect("valid request")),
            None => self
                .client
                .agent
                .run(request.body(()).expect("valid request")),
        };
        let mut response = result.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    v.to_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()
            .map_err(|e| e.to_string())?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// A whole response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers (lowercase names).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON; panics (showing the body) if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: body is not JSON ({e}): {:?}",
                self.status,
                self.text()
            )
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
