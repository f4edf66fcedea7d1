//! The webhook sink against real HTTP receivers on 127.0.0.1, called through
//! the plugin boundary: built by its entry point's constructor and called
//! through the ABI-stable `NotifierBox`, as the host does.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use hmac::{Hmac, Mac};
use notifier_webhook::{WebhookConfig, WebhookNotifier};
use plugin_api::{
    notification::{wrap_notifier, Delivery, Notifier, NotifierBox},
    Constructor, ErrorCode, PluginContext, PluginError,
};
use serde_json::{json, Value};
use sha2::Sha256;
use zaqar_test_support::{receiver, Receiver, Reply};

const PAYLOAD: &str = r#"{"body":{"event":"BackupStarted"},"ttl":300,"Message_Type":"Notification","queue_name":"q"}"#;

struct Quiet;

impl plugin_api::HostServices for Quiet {
    fn log(&self, _level: plugin_api::LogLevel, _message: plugin_api::types::RStr<'_>) {}
}

/// Builds the sink the way the host does: entry point → constructor →
/// `NotifierBox`.
async fn sink(scheme: &str, config: Value) -> Result<NotifierBox, PluginError> {
    let build = notifier_webhook::entry_points()
        .into_iter()
        .find(|e| e.name.as_str() == scheme)
        .and_then(|e| match e.constructor {
            Constructor::Notifier(build) => Some(build),
            _ => None,
        })
        .expect("the crate has this notifier entry point");
    build(PluginContext {
        name: scheme.into(),
        config: serde_json::to_vec(&config).unwrap().into(),
        services: plugin_api::wrap_host_services(Quiet),
    })
    .await
    .into_result()
}

async fn http_sink() -> NotifierBox {
    sink("http", json!({})).await.expect("builds")
}

fn delivery(subscriber: &str, options: Value, allow_private: bool) -> Delivery {
    let mut delivery = zaqar_test_support::delivery(subscriber)
        .queue("p", "q")
        .options(options)
        .allow_private_addresses(allow_private)
        .build();
    delivery.subscription_id = "s".into();
    // The exact bytes, so tests can compare what arrives with what was sent.
    delivery.payload = PAYLOAD.as_bytes().to_vec().into();
    delivery
}

fn ok_receiver() -> impl Fn(&receiver::Received) -> Reply + Send + Sync + 'static {
    |_| Reply::status(200).body("{}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_schemes_are_entry_points_and_config_is_checked() {
    assert!(sink("http", json!({})).await.is_ok());
    assert!(sink(
        "https",
        json!({"timeout_secs": 5, "max_redirects": 0, "user_agent": "x"})
    )
    .await
    .is_ok());
    let unknown = sink("http", json!({"timeout": 5})).await.err().unwrap();
    assert_eq!(unknown.code, ErrorCode::BAD_CONFIG);
    assert!(unknown.message.contains("timeout"), "{}", unknown.message);
    let zero = sink("http", json!({"timeout_secs": 0}))
        .await
        .err()
        .unwrap();
    assert_eq!(zero.code, ErrorCode::BAD_CONFIG);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_the_payload_with_json_headers() {
    let receiver = Receiver::start("127.0.0.1", ok_receiver()).await;
    let sink = http_sink().await;
    sink.deliver(delivery(&receiver.url("/hook?x=1#frag"), json!({}), true))
        .await
        .expect("delivered");
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    let request = &got[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.target, "/hook?x=1");
    assert_eq!(request.body, PAYLOAD.as_bytes());
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.header("content-length"),
        Some(PAYLOAD.len().to_string().as_str())
    );
    assert_eq!(
        request.header("user-agent"),
        Some(notifier_webhook::DEFAULT_USER_AGENT)
    );
    assert!(notifier_webhook::DEFAULT_USER_AGENT.starts_with("zaqar-rs/"));
    assert_eq!(
        request.header("host"),
        Some(receiver.addr.to_string().as_str())
    );
    assert_eq!(request.header("x-zaqar-signature"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_headers_and_post_data_are_applied() {
    let receiver = Receiver::start("127.0.0.1", ok_receiver()).await;
    let sink = sink("http", json!({"user_agent": "my-agent/1"}))
        .await
        .unwrap();
    let options = json!({
        "post_headers": {"X-Custom": "yes", "Content-Type": "application/vnd.test+json"},
        "post_data": "{\"wrapped\": \"$zaqar_message$\", \"source\": \"zaqar\"}"
    });
    sink.deliver(delivery(&receiver.url("/"), options, true))
        .await
        .expect("delivered");
    let request = &receiver.received()[0];
    assert_eq!(request.header("x-custom"), Some("yes"));
    assert_eq!(
        request.header("content-type"),
        Some("application/vnd.test+json")
    );
    assert_eq!(request.header("user-agent"), Some("my-agent/1"));
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        body,
        json!({"wrapped": serde_json::from_str::<Value>(PAYLOAD).unwrap(), "source": "zaqar"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_verifies_over_the_exact_body() {
    let receiver = Receiver::start("127.0.0.1", ok_receiver()).await;
    let sink = http_sink().await;
    let secret = "s3cret-ключ";
    for options in [
        json!({"secret": secret}),
        json!({"secret": secret, "post_data": "[\"$zaqar_message$\"]"}),
    ] {
        sink.deliver(delivery(&receiver.url("/signed"), options, true))
            .await
            .expect("delivered");
    }
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    for request in &got {
        let header = request.header("x-zaqar-signature").expect("signed");
        let hex = header.strip_prefix("sha256=").expect("sha256= prefix");
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(&request.body);
        let expected: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, expected);
    }
    assert!(got[1].body.starts_with(b"[{"));
    // An empty secret signs nothing.
    sink.deliver(delivery(&receiver.url("/"), json!({"secret": ""}), true))
        .await
        .unwrap();
    assert_eq!(receiver.received()[0].header("x-zaqar-signature"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_codes_are_classified() {
    let receiver = Receiver::start("127.0.0.1", |r| {
        let status: u16 = r.target.trim_start_matches('/').parse().unwrap();
        Reply::status(status).body(&format!("answer {status}\nsecond line"))
    })
    .await;
    let sink = http_sink().await;
    for status in [200, 201, 202, 204, 303] {
        sink.deliver(delivery(
            &receiver.url(&format!("/{status}")),
            json!({}),
            true,
        ))
        .await
        .unwrap_or_else(|e| panic!("{status}: {e}"));
    }
    for (status, code) in [
        (500, ErrorCode::DELIVERY_RETRYABLE),
        (502, ErrorCode::DELIVERY_RETRYABLE),
        (503, ErrorCode::DELIVERY_RETRYABLE),
        (408, ErrorCode::DELIVERY_RETRYABLE),
        (429, ErrorCode::DELIVERY_RETRYABLE),
        (400, ErrorCode::DELIVERY_PERMANENT),
        (401, ErrorCode::DELIVERY_PERMANENT),
        (404, ErrorCode::DELIVERY_PERMANENT),
        (410, ErrorCode::DELIVERY_PERMANENT),
        (300, ErrorCode::DELIVERY_PERMANENT),
        (304, ErrorCode::DELIVERY_PERMANENT),
    ] {
        let error = sink
            .deliver(delivery(
                &receiver.url(&format!("/{status}")),
                json!({}),
                true,
            ))
            .await
            .expect_err(&status.to_string());
        assert_eq!(error.code, code, "{status}: {error}");
        assert!(
            error.message.contains(&status.to_string()),
            "{status}: {error}"
        );
        if status != 304 {
            assert!(
                error
                    .message
                    .contains(&format!("answer {status} second line")),
                "{status}: {error}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_times_out_as_retryable() {
    let receiver = Receiver::start("127.0.0.1", |_| {
        Reply::status(200).delay(Duration::from_secs(5))
    })
    .await;
    let sink = sink("http", json!({"timeout_secs": 1})).await.unwrap();
    let start = Instant::now();
    let error = sink
        .deliver(delivery(&receiver.url("/slow"), json!({}), true))
        .await
        .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(error.code, ErrorCode::DELIVERY_RETRYABLE, "{error}");
    assert!(error.message.contains("timed out"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_decides_even_if_the_body_never_ends() {
    let receiver = Receiver::start("127.0.0.1", |r| {
        let status = if r.target == "/ok" { 200 } else { 404 };
        Reply::status(status).body("partial").stall_body()
    })
    .await;
    let sink = sink("http", json!({"timeout_secs": 5})).await.unwrap();
    let start = Instant::now();
    sink.deliver(delivery(&receiver.url("/ok"), json!({}), true))
        .await
        .expect("a 2xx status is a delivery");
    let error = sink
        .deliver(delivery(&receiver.url("/gone"), json!({}), true))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::DELIVERY_PERMANENT, "{error}");
    assert!(error.message.contains("404"), "{error}");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_is_retryable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let sink = http_sink().await;
    let error = sink
        .deliver(delivery(
            &format!("http://127.0.0.1:{port}/"),
            json!({}),
            true,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::DELIVERY_RETRYABLE, "{error}");
    assert!(error.message.contains("refused"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_targets_are_refused_unless_allowed() {
    let receiver = Receiver::start("127.0.0.1", ok_receiver()).await;
    let sink = http_sink().await;
    let port = receiver.addr.port();
    for target in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
        format!("http://[::1]:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        // Other spellings of 127.0.0.1 (normalized by the URL parser).
        format!("http://2130706433:{port}/"),
        format!("http://0x7f.0.0.1:{port}/"),
        format!("http://127.1:{port}/"),
        format!("http://10.0.0.1:{port}/"),
        format!("http://169.254.169.254:{port}/latest/meta-data"),
        format!("https://localhost:{port}/"),
    ] {
        let error = sink
            .deliver(delivery(&target, json!({}), false))
            .await
            .unwrap_err();
        assert_eq!(
            error.code,
            ErrorCode::DELIVERY_PERMANENT,
            "{target}: {error}"
        );
        assert!(error.message.contains("refused"), "{target}: {error}");
        assert!(
            error.message.contains("allow_private_subscribers"),
            "{target}: {error}"
        );
    }
    assert!(
        receiver.received().is_empty(),
        "nothing may reach the receiver"
    );
    // The same target is fine when the operator allows private addresses.
    sink.deliver(delivery(
        &format!("http://localhost:{port}/"),
        json!({}),
        true,
    ))
    .await
    .expect("allowed");
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_followed_with_the_same_post() {
    let target = Receiver::start("127.0.0.1", ok_receiver()).await;
    let location = target.url("/moved");
    let first = Receiver::start("127.0.0.1", move |r| {
        let status = match r.target.as_str() {
            "/301" => 301,
            "/302" => 302,
            "/307" => 307,
            _ => 308,
        };
        Reply::status(status).header("Location", &location)
    })
    .await;
    let sink = http_sink().await;
    for status in [301, 302, 307, 308] {
        sink.deliver(delivery(
            &first.url(&format!("/{status}")),
            json!({"secret": "k", "post_headers": {"Authorization": "Bearer t", "X-Keep": "1"}}),
            true,
        ))
        .await
        .unwrap_or_else(|e| panic!("{status}: {e}"));
    }
    let moved = target.received();
    assert_eq!(moved.len(), 4);
    for request in &moved {
        assert_eq!(request.method, "POST");
        assert_eq!(request.target, "/moved");
        assert_eq!(request.body, PAYLOAD.as_bytes());
        assert!(request.header("x-zaqar-signature").is_some());
        assert_eq!(request.header("x-keep"), Some("1"));
        // Another origin (port): credentials stay behind.
        assert_eq!(request.header("authorization"), None);
    }
    assert_eq!(first.received().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_loops_stop_at_max_redirects() {
    let looping = Receiver::start("127.0.0.1", |_| {
        Reply::status(302).header("Location", "/again")
    })
    .await;
    let sink = sink("http", json!({"max_redirects": 2})).await.unwrap();
    let error = sink
        .deliver(delivery(&looping.url("/"), json!({}), true))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::DELIVERY_PERMANENT, "{error}");
    assert!(error.message.contains("too many redirects"), "{error}");
    assert_eq!(
        looping.received().len(),
        3,
        "the first POST and two redirects"
    );

    let no_location = Receiver::start("127.0.0.1", |_| Reply::status(307)).await;
    let error = sink
        .deliver(delivery(&no_location.url("/"), json!({}), true))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::DELIVERY_PERMANENT, "{error}");
}

/// Refuses what `is_private_address` refuses except 127.0.0.2, which stands
/// in for a public webhook host (this machine has no other address to use;
/// all of 127/8 is loopback).
fn private_but_127_0_0_2(address: IpAddr) -> bool {
    address != IpAddr::from([127, 0, 0, 2]) && plugin_api::net::is_private_address(address)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_into_private_ranges_are_refused() {
    let private = Receiver::start("127.0.0.1", ok_receiver()).await;
    let by_address = private.url("/internal");
    let by_name = format!("http://localhost:{}/internal", private.addr.port());
    let public = Receiver::start("127.0.0.2", move |r| {
        let location = if r.target == "/by-name" {
            &by_name
        } else {
            &by_address
        };
        Reply::status(307).header("Location", location)
    })
    .await;
    let native =
        WebhookNotifier::with_address_check(&WebhookConfig::default(), private_but_127_0_0_2)
            .unwrap();
    let sink = wrap_notifier(native);
    for path in ["/by-address", "/by-name"] {
        let error = sink
            .deliver(delivery(&public.url(path), json!({}), false))
            .await
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::DELIVERY_PERMANENT, "{path}: {error}");
        assert!(error.message.contains("refused"), "{path}: {error}");
    }
    assert_eq!(public.received().len(), 2, "the first hop is allowed");
    assert!(
        private.received().is_empty(),
        "the redirect is not followed"
    );
    // With private addresses allowed, the same redirects are followed.
    for path in ["/by-address", "/by-name"] {
        sink.deliver(delivery(&public.url(path), json!({}), true))
            .await
            .expect("followed");
    }
    assert_eq!(private.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_subscribers_and_options_are_permanent() {
    let receiver = Receiver::start("127.0.0.1", ok_receiver()).await;
    let sink = http_sink().await;
    for (subscriber, options) in [
        ("http://".to_string(), json!({})),
        ("http//nope".to_string(), json!({})),
        (receiver.url("/"), json!({"post_headers": "not an object"})),
        (
            receiver.url("/"),
            json!({"post_headers": {"Bad Name": "x"}}),
        ),
    ] {
        let error = sink
            .deliver(delivery(&subscriber, options.clone(), true))
            .await
            .unwrap_err();
        assert_eq!(
            error.code,
            ErrorCode::DELIVERY_PERMANENT,
            "{subscriber} {options}: {error}"
        );
    }
    assert!(receiver.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_reused_between_deliveries() {
    let receiver = Receiver::start("127.0.0.1", ok_receiver()).await;
    let sink = http_sink().await;
    for _ in 0..5 {
        sink.deliver(delivery(&receiver.url("/"), json!({}), true))
            .await
            .unwrap();
        // The connection goes back to the pool from its own task, just
        // after the answer was read: give it that moment.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(receiver.received().len(), 5);
    assert!(
        receiver.connections() <= 2,
        "pooled keep-alive connections are reused: {} connections for 5 posts",
        receiver.connections()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_is_verified_against_the_trusted_roots() {
    let receiver = Receiver::start_tls("127.0.0.1", ok_receiver()).await;
    let ca_file = receiver::fixtures().join("ca.pem");
    let trusting = sink("https", json!({"ca_file": ca_file})).await.unwrap();
    for host in ["127.0.0.1", "localhost"] {
        let url = format!("https://{host}:{}/tls", receiver.addr.port());
        trusting
            .deliver(delivery(&url, json!({"secret": "k"}), true))
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
    }
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].body, PAYLOAD.as_bytes());
    assert!(got[0].header("x-zaqar-signature").is_some());

    // Without the test CA the certificate is not trusted: no delivery.
    let default_roots = sink("https", json!({})).await.unwrap();
    let error = default_roots
        .deliver(delivery(&receiver.url("/tls"), json!({}), true))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::DELIVERY_RETRYABLE, "{error}");
    assert!(
        error.message.to_lowercase().contains("certificate"),
        "{error}"
    );
    assert!(receiver.received().is_empty());

    // A CA file that is missing or holds no certificate is a config error.
    for bad in [
        receiver::fixtures().join("missing.pem"),
        receiver::fixtures().join("README.md"),
    ] {
        let error = sink("https", json!({"ca_file": bad})).await.err().unwrap();
        assert_eq!(error.code, ErrorCode::BAD_CONFIG, "{error}");
    }
}
