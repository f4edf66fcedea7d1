//! The `keystone` strategy called through the plugin boundary (entry point
//! → constructor → `AuthenticatorBox`, as the host does) against a real
//! Keystone 30 started by `scripts/keystone-env.sh`.
//!
//! Starting Keystone takes seconds, so one Keystone serves the behaviours
//! of the first test in turn, each checked by its own function; the
//! others need no Keystone.

mod support;

use std::{
    future::Future,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use auth_keystone::{UNAUTHORIZED_MESSAGE, UNAVAILABLE_MESSAGE};
use plugin_api::{
    auth::{AuthRequest, Authenticator, AuthenticatorBox, Identity},
    transport::{Header, Protocol},
    types::ROption,
    ErrorCode, PluginContext, PluginError,
};
use serde_json::{json, Value};
use support::Keystone;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpListener,
};

struct Quiet;

impl plugin_api::HostServices for Quiet {
    fn log(&self, _level: plugin_api::LogLevel, _message: plugin_api::types::RStr<'_>) {}
}

async fn strategy(config: Value) -> Result<AuthenticatorBox, PluginError> {
    let entry = auth_keystone::auth_entry_points()
        .into_iter()
        .find(|e| e.name.as_str() == "keystone")
        .expect("the crate has the `keystone` entry point");
    (entry.constructor)(PluginContext {
        name: "keystone".into(),
        config: serde_json::to_vec(&config).unwrap().into(),
        services: plugin_api::wrap_host_services(Quiet),
    })
    .await
    .into_result()
}

/// The configuration an operator would write for `url`, as the `zaqar`
/// service user, with extra keys.
fn config(url: &str, extra: Value) -> Value {
    let mut config = json!({
        "auth_url": format!("{url}/v3"),
        "username": "zaqar",
        "password": "zaqarpw",
        "project_name": "service",
        "user_domain_name": "Default",
        "project_domain_name": "Default",
        "http_connect_timeout": 2,
        "http_request_timeout": 30,
    });
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    config
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn with_token(auth: &AuthenticatorBox, token: &str) -> Result<Identity, PluginError> {
    let request = AuthRequest {
        headers: vec![Header {
            name: "x-auth-token".into(),
            value: token.into(),
        }]
        .into(),
        protocol: Protocol::HTTP,
        peer: "127.0.0.1:1".into(),
    };
    auth.authenticate(request, now_ms()).await
}

fn assert_refused(result: Result<Identity, PluginError>) {
    let error = result.expect_err("refused");
    assert_eq!(error.code, ErrorCode::UNAUTHORIZED, "{error}");
    assert_eq!(error.message.as_str(), UNAUTHORIZED_MESSAGE);
}

fn assert_unavailable(result: Result<Identity, PluginError>) {
    let error = result.expect_err("unavailable");
    assert_eq!(error.code, ErrorCode::UNAVAILABLE, "{error}");
    assert_eq!(error.message.as_str(), UNAVAILABLE_MESSAGE);
}

/// Waits (at most 10 s) until `check` holds: Keystone's access log line is
/// written just after its answer.
async fn eventually<F: Fn() -> bool>(what: &str, check: F) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Keystone's count of token validations once its access log has caught
/// up with the requests already answered (log lines trail the answers).
async fn settled_validations(keystone: &Keystone) -> usize {
    let mut last = keystone.validations();
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = keystone.validations();
        if now == last {
            return now;
        }
        last = now;
    }
}

/// `check` holds now and still does a moment later.
async fn stays<F: Fn() -> bool>(what: &str, check: F) {
    assert!(check(), "{what}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(check(), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_a_real_keystone() {
    let keystone = Keystone::start();
    step(
        "valid token",
        a_valid_token_gives_its_project_user_and_roles(&keystone),
    )
    .await;
    step("invalid", missing_and_invalid_tokens_are_refused(&keystone)).await;
    step(
        "cache",
        a_cached_validation_does_not_ask_keystone_again(&keystone),
    )
    .await;
    step(
        "revoked",
        a_revoked_token_is_refused_once_the_cache_max_age_passed(&keystone),
    )
    .await;
    step(
        "service token",
        a_refused_service_token_is_replaced(&keystone),
    )
    .await;
    step(
        "credentials",
        wrong_service_credentials_are_unavailable_not_unauthorized(&keystone),
    )
    .await;
    step(
        "stopped",
        a_stopped_keystone_is_unavailable_not_unauthorized(&keystone),
    )
    .await;
}

async fn step(name: &str, behaviour: impl Future<Output = ()>) {
    let started = Instant::now();
    behaviour.await;
    eprintln!("{name}: ok in {:?}", started.elapsed());
}

async fn a_valid_token_gives_its_project_user_and_roles(keystone: &Keystone) {
    let auth = strategy(config(&keystone.url, json!({}))).await.unwrap();
    let demo = keystone.issue("demo");
    let token = &demo.document["token"];
    let identity = with_token(&auth, &demo.token).await.unwrap();
    assert_eq!(
        identity.project.as_str(),
        token["project"]["id"].as_str().unwrap()
    );
    assert_eq!(
        identity.user.as_str(),
        token["user"]["id"].as_str().unwrap()
    );
    let roles: Vec<&str> = identity.roles.iter().map(|r| r.as_str()).collect();
    assert!(roles.contains(&"member"), "{roles:?}");
    assert!(!roles.contains(&"admin"), "{roles:?}");
    let ROption::RSome(expires_ms) = identity.expires_ms else {
        panic!("a Keystone token expires");
    };
    let hour_ms = 3_600_000;
    assert!(expires_ms > now_ms() + hour_ms - 120_000 && expires_ms <= now_ms() + hour_ms);

    // The administrator's token carries the admin role the policy checks.
    let admin = with_token(&auth, &keystone.issue("admin").token)
        .await
        .unwrap();
    assert!(admin.roles.iter().any(|r| r.as_str() == "admin"));
    assert_ne!(admin.project, identity.project);
}

async fn missing_and_invalid_tokens_are_refused(keystone: &Keystone) {
    let auth = strategy(config(&keystone.url, json!({}))).await.unwrap();
    let before = settled_validations(keystone).await;
    let empty = AuthRequest {
        headers: Default::default(),
        protocol: Protocol::WEBSOCKET,
        peer: "p".into(),
    };
    assert_refused(auth.authenticate(empty, now_ms()).await);
    assert_refused(with_token(&auth, "line\nbreak").await);
    stays("no token, no call to Keystone", || {
        keystone.validations() == before
    })
    .await;

    assert_refused(with_token(&auth, "not-a-token").await);
    let demo = keystone.issue("demo").token;
    // A character in the middle: every bit of it counts (the last one may
    // carry padding bits, or already be the replacement).
    let middle = demo.len() / 2;
    let replacement = if &demo[middle..=middle] == "A" {
        "B"
    } else {
        "A"
    };
    let tampered = format!("{}{replacement}{}", &demo[..middle], &demo[middle + 1..]);
    assert_refused(with_token(&auth, &tampered).await);
    eventually("both were asked", || keystone.validations() == before + 2).await;
    assert_refused(with_token(&auth, "not-a-token").await);
    stays("a refusal is cached too", || {
        keystone.validations() == before + 2
    })
    .await;
}

async fn a_cached_validation_does_not_ask_keystone_again(keystone: &Keystone) {
    let auth = strategy(config(&keystone.url, json!({}))).await.unwrap();
    let demo = keystone.issue("demo").token;
    let before = settled_validations(keystone).await;
    let first = with_token(&auth, &demo).await.unwrap();
    eventually("the first use is validated", || {
        keystone.validations() == before + 1
    })
    .await;
    for _ in 0..5 {
        assert_eq!(with_token(&auth, &demo).await.unwrap(), first);
    }
    stays("later uses come from the cache", || {
        keystone.validations() == before + 1
    })
    .await;

    let uncached = strategy(config(&keystone.url, json!({"token_cache_time": 0})))
        .await
        .unwrap();
    let before = settled_validations(keystone).await;
    for _ in 0..3 {
        with_token(&uncached, &demo).await.unwrap();
    }
    eventually("token_cache_time = 0 asks every time", || {
        keystone.validations() == before + 3
    })
    .await;
}

async fn a_revoked_token_is_refused_once_the_cache_max_age_passed(keystone: &Keystone) {
    let auth = strategy(config(&keystone.url, json!({"token_cache_time": 2})))
        .await
        .unwrap();
    let demo = keystone.issue("demo").token;
    let validated_at = Instant::now();
    with_token(&auth, &demo).await.unwrap();
    keystone.revoke(&demo);
    if validated_at.elapsed() < Duration::from_millis(1500) {
        assert!(
            with_token(&auth, &demo).await.is_ok(),
            "within token_cache_time the cached validation stands"
        );
    }
    tokio::time::sleep(Duration::from_secs(2).saturating_sub(validated_at.elapsed())).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_refused(with_token(&auth, &demo).await);
}

async fn a_refused_service_token_is_replaced(keystone: &Keystone) {
    let auth = strategy(config(&keystone.url, json!({"token_cache_time": 0})))
        .await
        .unwrap();
    let demo = keystone.issue("demo").token;
    with_token(&auth, &demo).await.unwrap();
    // Disabling the service user revokes its tokens, the one the strategy
    // holds included; Keystone's revocations have one-second granularity,
    // so a token obtained in the same second would be revoked too.
    keystone.set_user_enabled("zaqar", false);
    keystone.set_user_enabled("zaqar", true);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let validated = settled_validations(keystone).await;
    let issued = keystone.issues();
    with_token(&auth, &demo)
        .await
        .expect("validated with a new service token");
    eventually(
        "refused once, then a new service token, then validated",
        || keystone.issues() == issued + 1 && keystone.validations() == validated + 2,
    )
    .await;
}

async fn wrong_service_credentials_are_unavailable_not_unauthorized(keystone: &Keystone) {
    let auth = strategy(config(&keystone.url, json!({"password": "wrong"})))
        .await
        .unwrap();
    assert_unavailable(with_token(&auth, &keystone.issue("demo").token).await);
}

async fn a_stopped_keystone_is_unavailable_not_unauthorized(keystone: &Keystone) {
    let auth = strategy(config(&keystone.url, json!({}))).await.unwrap();
    let cached = keystone.issue("demo").token;
    let other = keystone.issue("demo").token;
    with_token(&auth, &cached).await.unwrap();
    keystone.stop();
    assert_unavailable(with_token(&auth, &other).await);
    assert!(
        with_token(&auth, &cached).await.is_ok(),
        "a cached validation still stands while Keystone is down"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_is_unavailable() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let auth = strategy(config(&format!("http://{closed}"), json!({})))
        .await
        .unwrap();
    assert_unavailable(with_token(&auth, "some-token").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keystone_answering_5xx_is_unavailable() {
    // A stand-in for a failing Keystone (its database down, say): every
    // answer is a 500. A real Keystone cannot be made to fail this way on
    // demand.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            // The whole request first (a GET or a small POST), so the
            // answer is read as an answer, not as a reset connection.
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            while let Ok(n @ 1..) = stream.read(&mut buffer).await {
                request.extend_from_slice(&buffer[..n]);
                let text = String::from_utf8_lossy(&request);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        break;
                    }
                }
            }
            let _ = stream
                .write_all(
                    b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
                )
                .await;
        }
    });
    let auth = strategy(config(&format!("http://{address}"), json!({})))
        .await
        .unwrap();
    assert_unavailable(with_token(&auth, "some-token").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_configuration_is_refused_at_start() {
    for (config, expected) in [
        (json!({"auth_url": "http://k:5000"}), "missing field"),
        (
            config("keystone:5000", json!({})),
            "is not an http:// or https:// URL",
        ),
        (
            config("http://k", json!({"auth_uri": "x"})),
            "unknown field",
        ),
        (
            config("http://k", json!({"http_request_timeout": 0})),
            "at least 1 second",
        ),
        (
            config("http://k", json!({"cafile": "/nonexistent.pem"})),
            "cafile",
        ),
    ] {
        let error = strategy(config).await.err().expect("refused");
        assert_eq!(error.code, ErrorCode::BAD_CONFIG, "{error}");
        assert!(error.message.contains(expected), "{error}");
    }
}
