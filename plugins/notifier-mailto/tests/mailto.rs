//! The mailto sink against a real SMTP server (Python's aiosmtpd, started
//! from `tests/smtp_server.py`), called through the plugin boundary: built
//! by its entry point's constructor and called through the ABI-stable
//! `NotifierBox`, as the host does.
//!
//! The interpreter comes from `PYTHON_ZAQARCLIENT`, which `scripts/test.sh`
//! sets after creating the virtualenv from `tests/python/requirements.txt`.

use std::{
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    time::{Duration, Instant},
};

use plugin_api::{
    notification::{Delivery, Notifier, NotifierBox},
    Constructor, ErrorCode, PluginContext, PluginError,
};
use serde_json::{json, Value};

const PAYLOAD: &str = r#"{"body":{"event":"BackupStarted","note":"café ✓"},"ttl":300,"Message_Type":"Notification","queue_name":"q"}"#;

fn python() -> String {
    std::env::var("PYTHON_ZAQARCLIENT").unwrap_or_else(|_| {
        panic!(
            "PYTHON_ZAQARCLIENT is not set: run the suite with `bash scripts/test.sh`, which \
             creates the Python virtualenv (with aiosmtpd) and sets it"
        )
    })
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A running aiosmtpd; killed when dropped.
struct SmtpServer {
    child: Child,
    _stdin: ChildStdin,
    port: u16,
    maildir: tempfile::TempDir,
}

impl SmtpServer {
    fn start(tls: &str, auth: Option<&str>) -> Self {
        let maildir = tempfile::tempdir().unwrap();
        let stderr_path = maildir.path().join("server.stderr");
        let mut command = Command::new(python());
        command
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_server.py"))
            .arg("--maildir")
            .arg(maildir.path())
            .args(["--tls", tls])
            .arg("--cert")
            .arg(fixtures().join("server.pem"))
            .arg("--key")
            .arg(fixtures().join("server.key"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).unwrap());
        if let Some(auth) = auth {
            command.args(["--auth", auth]);
        }
        let mut child = command.spawn().expect("start the SMTP server");
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some(port) = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
        else {
            let _ = child.kill();
            let _ = child.wait();
            let mut stderr = String::new();
            let _ =
                std::fs::File::open(&stderr_path).and_then(|mut f| f.read_to_string(&mut stderr));
            panic!("the SMTP server did not start (is aiosmtpd in the venv? run `bash scripts/test.sh`): {line}\n{stderr}");
        };
        Self {
            child,
            _stdin: stdin,
            port,
            maildir,
        }
    }

    /// The mails received so far, oldest first.
    fn mails(&self) -> Vec<Value> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.maildir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Quiet;

impl plugin_api::HostServices for Quiet {
    fn log(&self, _level: plugin_api::LogLevel, _message: plugin_api::types::RStr<'_>) {}
}

/// Builds the sink the way the host does: entry point → constructor →
/// `NotifierBox`.
async fn sink(config: Value) -> Result<NotifierBox, PluginError> {
    let build = notifier_mailto::entry_points()
        .into_iter()
        .find(|e| e.name.as_str() == "mailto")
        .and_then(|e| match e.constructor {
            Constructor::Notifier(build) => Some(build),
            _ => None,
        })
        .expect("the crate has a mailto entry point");
    build(PluginContext {
        name: "mailto".into(),
        config: serde_json::to_vec(&config).unwrap().into(),
        services: plugin_api::wrap_host_services(Quiet),
    })
    .await
    .into_result()
}

async fn sink_for(server: &SmtpServer) -> NotifierBox {
    sink(json!({"smtp_port": server.port}))
        .await
        .expect("builds")
}

fn delivery(subscriber: &str, options: Value) -> Delivery {
    Delivery {
        subscriber: subscriber.into(),
        project: "p".into(),
        queue: "q".into(),
        subscription_id: "s".into(),
        options: serde_json::to_vec(&options).unwrap().into(),
        payload: PAYLOAD.as_bytes().to_vec().into(),
        allow_private_addresses: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_one_plain_text_mail() {
    let server = SmtpServer::start("none", None);
    let sink = sink_for(&server).await;
    sink.deliver(delivery(
        "mailto:ops@example.com?subject=Queue%20alert",
        json!({}),
    ))
    .await
    .expect("delivered");
    let mails = server.mails();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail["rcpt_tos"], json!(["ops@example.com"]));
    assert_eq!(mail["to"], "ops@example.com");
    assert_eq!(mail["mail_from"], "no-reply@localhost");
    assert_eq!(mail["from"], "Zaqar Notifications <no-reply@localhost>");
    assert_eq!(mail["subject"], "Queue alert");
    assert_eq!(mail["content_type"], "text/plain");
    assert_eq!(mail["charset"], "utf-8");
    assert_eq!(mail["body"].as_str().unwrap().trim_end(), PAYLOAD);
    assert_eq!(mail["tls"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subject_and_sender_follow_uri_then_options_then_defaults() {
    let server = SmtpServer::start("none", None);
    let sink = sink(json!({"smtp_port": server.port, "from": "Ops Queue <queue@example.org>"}))
        .await
        .unwrap();
    let options = json!({"subject": "From the options", "from": "Alerts <alerts@example.com>"});
    for (subscriber, options) in [
        // URI subject (any case) beats the option.
        ("mailto:a@example.com?SUBJECT=From+the+URI", options.clone()),
        ("mailto:a@example.com", options),
        ("mailto:a@example.com,b@example.com", json!({})),
    ] {
        sink.deliver(delivery(subscriber, options))
            .await
            .unwrap_or_else(|e| panic!("{subscriber}: {e}"));
    }
    let mails = server.mails();
    assert_eq!(mails.len(), 3);
    assert_eq!(mails[0]["subject"], "From the URI");
    assert_eq!(mails[0]["from"], "Alerts <alerts@example.com>");
    assert_eq!(mails[0]["mail_from"], "alerts@example.com");
    assert_eq!(mails[1]["subject"], "From the options");
    assert_eq!(mails[2]["subject"], notifier_mailto::DEFAULT_SUBJECT);
    assert_eq!(mails[2]["from"], "Ops Queue <queue@example.org>");
    assert_eq!(
        mails[2]["rcpt_tos"],
        json!(["a@example.com", "b@example.com"])
    );
    assert_eq!(mails[2]["to"], "a@example.com, b@example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_addresses_are_permanent() {
    let server = SmtpServer::start("none", None);
    let sink = sink_for(&server).await;
    for (subscriber, options) in [
        ("mailto:not-an-address", json!({})),
        ("mailto:", json!({})),
        ("mailto:ok@example.com", json!({"from": "not an address"})),
    ] {
        let error = sink
            .deliver(delivery(subscriber, options.clone()))
            .await
            .unwrap_err();
        assert_eq!(
            error.code,
            ErrorCode::DELIVERY_PERMANENT,
            "{subscriber} {options}: {error}"
        );
    }
    assert!(server.mails().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_answers_are_classified() {
    let server = SmtpServer::start("none", None);
    let sink = sink_for(&server).await;
    let error = sink
        .deliver(delivery("mailto:reject-permanent@example.com", json!({})))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::DELIVERY_PERMANENT, "{error}");
    assert!(error.message.contains("550"), "{error}");
    let error = sink
        .deliver(delivery("mailto:reject-transient@example.com", json!({})))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::DELIVERY_RETRYABLE, "{error}");
    assert!(error.message.contains("451"), "{error}");
    assert!(server.mails().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_is_retryable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let sink = sink(json!({"smtp_port": port})).await.unwrap();
    let error = sink
        .deliver(delivery("mailto:ops@example.com", json!({})))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::DELIVERY_RETRYABLE, "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_times_out_as_retryable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = tokio::spawn(async move {
        // Accept and never greet.
        let (_stream, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let sink = sink(json!({"smtp_port": port, "timeout_secs": 1}))
        .await
        .unwrap();
    let start = Instant::now();
    let error = sink
        .deliver(delivery("mailto:ops@example.com", json!({})))
        .await
        .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(error.code, ErrorCode::DELIVERY_RETRYABLE, "{error}");
    holder.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_with_authentication() {
    let server = SmtpServer::start("starttls", Some("zaqar:s3cret"));
    let ca_file = fixtures().join("ca.pem");
    let good = sink(json!({
        "smtp_port": server.port, "tls": "starttls", "ca_file": ca_file,
        "username": "zaqar", "password": "s3cret"
    }))
    .await
    .unwrap();
    good.deliver(delivery("mailto:ops@example.com", json!({})))
        .await
        .expect("delivered over STARTTLS");
    let mails = server.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0]["tls"], true);
    assert_eq!(mails[0]["authenticated"], true);
    assert_eq!(mails[0]["body"].as_str().unwrap().trim_end(), PAYLOAD);

    let wrong = sink(json!({
        "smtp_port": server.port, "tls": "starttls", "ca_file": ca_file,
        "username": "zaqar", "password": "wrong"
    }))
    .await
    .unwrap();
    let error = wrong
        .deliver(delivery("mailto:ops@example.com", json!({})))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::DELIVERY_PERMANENT, "{error}");
    assert!(error.message.contains("535"), "{error}");

    // Without the test CA the server's certificate is not trusted.
    let untrusting = sink(json!({"smtp_port": server.port, "tls": "starttls"}))
        .await
        .unwrap();
    let error = untrusting
        .deliver(delivery("mailto:ops@example.com", json!({})))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::DELIVERY_RETRYABLE, "{error}");
    assert_eq!(server.mails().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls() {
    let server = SmtpServer::start("tls", None);
    let sink = sink(json!({
        "smtp_port": server.port, "tls": "tls", "ca_file": fixtures().join("ca.pem")
    }))
    .await
    .unwrap();
    sink.deliver(delivery(
        "mailto:ops@example.com?subject=over%20TLS",
        json!({}),
    ))
    .await
    .expect("delivered over SMTPS");
    let mails = server.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0]["tls"], true);
    assert_eq!(mails[0]["subject"], "over TLS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_is_checked() {
    for (config, needle) in [
        (json!({"smtp_server": "x"}), "smtp_server"),
        (json!({"tls": "ssl"}), "ssl"),
        (json!({"from": "nobody"}), "from"),
        (json!({"username": "u"}), "password"),
        (json!({"timeout_secs": 0}), "timeout_secs"),
        (json!({"ca_file": fixtures().join("ca.pem")}), "ca_file"),
        (
            json!({"tls": "starttls", "ca_file": fixtures().join("README.md")}),
            "ca_file",
        ),
    ] {
        let error = sink(config.clone()).await.err().unwrap();
        assert_eq!(error.code, ErrorCode::BAD_CONFIG, "{config}: {error}");
        assert!(error.message.contains(needle), "{config}: {error}");
    }
}
