//! A real Keystone for tests, started by `scripts/keystone-env.sh` in a
//! temporary directory and stopped when dropped, with the accounts that
//! script creates; and the few Keystone calls the tests make as its users.
//! Used by the `auth-keystone` crate's tests and the end-to-end tests of
//! the server (`tests/tests/auth_keystone_e2e.rs`).

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    path::PathBuf,
    process::Command,
    time::Duration,
};

use serde_json::{json, Value};
use tempfile::TempDir;

/// One running Keystone.
pub struct Keystone {
    dir: TempDir,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

/// A token Keystone issued.
pub struct Issued {
    /// The token (`X-Subject-Token`).
    pub token: String,
    /// Keystone's token document (`{"token": {...}}`).
    pub document: Value,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/keystone-env.sh")
}

impl Keystone {
    /// Starts one (installs the cached venv on first use).
    pub fn start() -> Self {
        let dir = TempDir::new().unwrap();
        let output = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(dir.path())
            .output()
            .expect("runs scripts/keystone-env.sh");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let url = stdout
            .lines()
            .find_map(|l| l.strip_prefix("url="))
            .unwrap_or_else(|| {
                panic!(
                    "keystone-env.sh start failed: {}\n{}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                )
            })
            .to_string();
        Self { dir, url }
    }

    /// Stops it (also done on drop).
    pub fn stop(&self) {
        let status = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(self.dir.path())
            .status()
            .expect("runs scripts/keystone-env.sh");
        assert!(status.success());
    }

    /// How many token validations (`GET /v3/auth/tokens`) Keystone served.
    pub fn validations(&self) -> usize {
        self.count_requests("\"GET /v3/auth/tokens ")
    }

    /// How many tokens were requested (`POST /v3/auth/tokens`).
    pub fn issues(&self) -> usize {
        self.count_requests("\"POST /v3/auth/tokens ")
    }

    fn count_requests(&self, request_line: &str) -> usize {
        std::fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(request_line))
            .count()
    }

    /// A token for `user` scoped to the project of the same name as in
    /// scripts/keystone-env.sh (`admin`, `zaqar` → `service`, `demo`).
    pub fn issue(&self, user: &str) -> Issued {
        let (password, project) = match user {
            "admin" => ("adminpw", "admin"),
            "zaqar" => ("zaqarpw", "service"),
            "demo" => ("demopw", "demo"),
            other => panic!("no account {other}"),
        };
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}});
        let (status, headers, body) = self.call("POST", "/v3/auth/tokens", &[], Some(&body));
        assert_eq!(status, 201, "issuing a token for {user}: {body}");
        let token = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("x-subject-token"))
            .map(|(_, v)| v.clone())
            .expect("X-Subject-Token");
        Issued {
            token,
            document: serde_json::from_str(&body).unwrap(),
        }
    }

    /// Revokes `token` (`DELETE /v3/auth/tokens`) as the admin.
    pub fn revoke(&self, token: &str) {
        let admin = self.issue("admin").token;
        let (status, _, body) = self.call(
            "DELETE",
            "/v3/auth/tokens",
            &[("X-Auth-Token", &admin), ("X-Subject-Token", token)],
            None,
        );
        assert_eq!(status, 204, "revoking: {body}");
    }

    /// Enables or disables the user `name` (disabling revokes its tokens).
    pub fn set_user_enabled(&self, name: &str, enabled: bool) {
        let admin = self.issue("admin").token;
        let (status, _, body) = self.call(
            "GET",
            &format!("/v3/users?name={name}"),
            &[("X-Auth-Token", &admin)],
            None,
        );
        assert_eq!(status, 200, "{body}");
        let users: Value = serde_json::from_str(&body).unwrap();
        let id = users["users"][0]["id"].as_str().unwrap().to_string();
        let (status, _, body) = self.call(
            "PATCH",
            &format!("/v3/users/{id}"),
            &[("X-Auth-Token", &admin)],
            Some(&json!({"user": {"enabled": enabled}})),
        );
        assert_eq!(status, 200, "{body}");
    }

    /// One HTTP/1.1 exchange with Keystone (gunicorn closes each
    /// connection after its answer).
    fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> (u16, Vec<(String, String)>, String) {
        let address = self.url.strip_prefix("http://").unwrap();
        let mut stream = TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(&body);
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        (status, headers, body.to_string())
    }
}

impl Drop for Keystone {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}
