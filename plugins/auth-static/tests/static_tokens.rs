//! The `static` strategy called through the plugin boundary, as the host
//! does: built by its entry point's constructor and called through the
//! ABI-stable `AuthenticatorBox`, against real files.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use auth_static::UNAUTHORIZED_MESSAGE;
use plugin_api::{
    auth::{AuthRequest, Authenticator, AuthenticatorBox, Identity},
    transport::{Header, Protocol},
    types::ROption,
    ErrorCode, PluginContext, PluginError,
};
use serde_json::{json, Value};
use tempfile::TempDir;

struct Quiet;

impl plugin_api::HostServices for Quiet {
    fn log(&self, _level: plugin_api::LogLevel, _message: plugin_api::types::RStr<'_>) {}
}

/// Builds the strategy the way the host does: entry point → constructor →
/// `AuthenticatorBox`.
async fn strategy(config: Value) -> Result<AuthenticatorBox, PluginError> {
    let entry = auth_static::auth_entry_points()
        .into_iter()
        .find(|e| e.name.as_str() == "static")
        .expect("the crate has the `static` entry point");
    (entry.constructor)(PluginContext {
        name: "static".into(),
        config: serde_json::to_vec(&config).unwrap().into(),
        services: plugin_api::wrap_host_services(Quiet),
    })
    .await
    .into_result()
}

fn request(headers: &[(&str, &str)]) -> AuthRequest {
    AuthRequest {
        headers: headers
            .iter()
            .map(|(name, value)| Header {
                name: (*name).into(),
                value: (*value).into(),
            })
            .collect(),
        protocol: Protocol::HTTP,
        peer: "127.0.0.1:1".into(),
    }
}

async fn with_token(auth: &AuthenticatorBox, token: &str) -> Result<Identity, PluginError> {
    auth.authenticate(request(&[("x-auth-token", token)]), now_ms())
        .await
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn assert_refused(result: Result<Identity, PluginError>) {
    let error = result.expect_err("refused");
    assert_eq!(error.code, ErrorCode::UNAUTHORIZED, "{error}");
    assert_eq!(error.message.as_str(), UNAUTHORIZED_MESSAGE);
}

fn write(path: &Path, text: &str) {
    // Write then rename, as editors and config tools do, so the watcher
    // never reads a half-written file.
    let partial = path.with_extension("partial");
    std::fs::write(&partial, text).unwrap();
    std::fs::rename(&partial, path).unwrap();
}

fn entry(token: &str, project: &str) -> String {
    format!("[[tokens]]\ntoken = \"{token}\"\nproject = \"{project}\"\nuser = \"u-{project}\"\n")
}

/// Waits until `check` holds, for at most five seconds.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_token_gives_its_identity_from_either_header() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("tokens.toml");
    let hashed = hex_sha256("hashed-token");
    write(
        &file,
        &format!(
            "[[tokens]]\ntoken = \"clear-token\"\nproject = \"p1\"\nuser = \"alice\"\nroles = [\"admin\"]\n\
             [[tokens]]\nsha256 = \"{hashed}\"\nproject = \"p2\"\nuser = \"bob\"\nexpires_at = \"2999-01-01T00:00:00Z\"\n"
        ),
    );
    let auth = strategy(json!({"tokens_file": file})).await.unwrap();

    let alice = with_token(&auth, "clear-token").await.unwrap();
    assert_eq!(alice.project.as_str(), "p1");
    assert_eq!(alice.user.as_str(), "alice");
    assert_eq!(
        alice.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        ["admin"]
    );
    assert_eq!(alice.expires_ms, ROption::RNone);

    let bearer = request(&[("authorization", "Bearer hashed-token")]);
    let bob = auth.authenticate(bearer, now_ms()).await.unwrap();
    assert_eq!(bob.project.as_str(), "p2");
    assert!(bob.roles.is_empty());
    assert_eq!(bob.expires_ms, ROption::RSome(32_472_144_000_000));

    let mut frame = request(&[("x-auth-token", "clear-token")]);
    frame.protocol = Protocol::WEBSOCKET;
    assert_eq!(auth.authenticate(frame, now_ms()).await.unwrap(), alice);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_unknown_and_expired_tokens_are_refused_as_keystonemiddleware_does() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("tokens.json");
    write(
        &file,
        &json!({"tokens": [
            {"token": "old", "project": "p", "user": "u", "expires_at": "2001-01-01T00:00:00Z"},
            {"token": "good", "project": "p", "user": "u2"},
        ]})
        .to_string(),
    );
    let auth = strategy(json!({"tokens_file": file})).await.unwrap();
    assert_refused(auth.authenticate(request(&[]), now_ms()).await);
    assert_refused(with_token(&auth, "").await);
    assert_refused(with_token(&auth, "goo").await);
    assert_refused(with_token(&auth, "bad").await);
    assert_refused(with_token(&auth, "old").await);
    assert_refused(
        auth.authenticate(request(&[("authorization", "Basic good")]), now_ms())
            .await,
    );
    assert!(with_token(&auth, "good").await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_configuration_or_file_is_refused_at_start() {
    let dir = TempDir::new().unwrap();
    let missing = strategy(json!({"tokens_file": dir.path().join("none.toml")}))
        .await
        .err()
        .unwrap();
    assert_eq!(missing.code, ErrorCode::BAD_CONFIG);
    assert!(missing.message.contains("none.toml"), "{missing}");

    let file = dir.path().join("tokens.toml");
    write(&file, "[[tokens]]\ntoken = \"t\"\n");
    let invalid = strategy(json!({"tokens_file": file})).await.err().unwrap();
    assert_eq!(invalid.code, ErrorCode::BAD_CONFIG);
    assert!(
        invalid.message.contains("missing field `project`"),
        "{invalid}"
    );

    let typo = strategy(json!({"token_file": file})).await.err().unwrap();
    assert_eq!(typo.code, ErrorCode::BAD_CONFIG);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_is_reloaded_and_a_broken_one_keeps_the_last_good_tokens() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("tokens.toml");
    write(&file, &entry("first", "p1"));
    let auth = strategy(json!({"tokens_file": file, "poll_interval_ms": 20}))
        .await
        .unwrap();
    assert!(with_token(&auth, "first").await.is_ok());

    write(&file, &entry("second", "p2"));
    eventually("the new token is accepted", || async {
        with_token(&auth, "second").await.is_ok()
    })
    .await;
    assert_refused(with_token(&auth, "first").await);

    write(&file, "[[tokens]]\nthis is not toml");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        with_token(&auth, "second").await.unwrap().project.as_str(),
        "p2",
        "a broken file does not replace the tokens in force"
    );

    write(&file, &entry("third", "p3"));
    eventually("the file is read again once fixed", || async {
        with_token(&auth, "third").await.is_ok()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_file_when_polling_is_off() {
    // Listening here first installs the process's SIGHUP handler, so a
    // SIGHUP raised before the strategy's watcher listens cannot kill the
    // test process.
    let _listening = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .expect("SIGHUP handler");
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("tokens.toml");
    write(&file, &entry("before", "p1"));
    let auth = strategy(json!({"tokens_file": file, "poll_interval_ms": 0}))
        .await
        .unwrap();

    write(&file, &entry("after", "p2"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_refused(with_token(&auth, "after").await);
    assert!(
        with_token(&auth, "before").await.is_ok(),
        "without polling nor SIGHUP the file is not read again"
    );

    eventually("SIGHUP reloads the file", || async {
        // SAFETY: raising a signal whose handler is installed (above).
        unsafe { libc::raise(libc::SIGHUP) };
        tokio::time::sleep(Duration::from_millis(50)).await;
        with_token(&auth, "after").await.is_ok()
    })
    .await;
    assert_refused(with_token(&auth, "before").await);
}

fn hex_sha256(token: &str) -> String {
    auth_static::token_file::token_hash(token)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
