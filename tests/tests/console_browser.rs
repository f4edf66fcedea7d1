//! The web console in a real headless Chromium (Debian's `chromium`,
//! driven by Playwright for Python: `tests/browser/console_test.py`):
//! the page loads without console errors, a message posted over HTTP shows
//! in the live tail within a second, the tail resumes across a server
//! restart with every message once, claim and delete work, and without the
//! websocket transport the page streams over SSE. Screenshots go to
//! `target/test-artifacts/`.
//!
//! `scripts/test.sh` makes the Playwright venv (`scripts/browser-env.sh`)
//! and sets `ZAQAR_BROWSER_PYTHON`; without it the script is run here.

use std::{net::TcpListener, path::Path, process::Command};

use zaqar_tests::{output_text, server_binary, workspace_root};

/// A port nothing listens on now (the script restarts the server on it, so
/// it cannot be port 0).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

fn browser_python() -> String {
    if let Ok(python) = std::env::var("ZAQAR_BROWSER_PYTHON") {
        return python;
    }
    let output = Command::new("bash")
        .arg("scripts/browser-env.sh")
        .current_dir(workspace_root())
        .output()
        .expect("run scripts/browser-env.sh");
    assert!(
        output.status.success(),
        "scripts/browser-env.sh failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn console_works_in_chromium() {
    let chromium = std::env::var("ZAQAR_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} not found: install Debian's chromium (`apt-get install -y chromium`, as .ci/run does) \
         or set ZAQAR_CHROMIUM"
    );
    let python = browser_python();
    let binary = server_binary();
    let artifacts = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
        .join("test-artifacts");
    let output = Command::new(&python)
        .arg("tests/browser/console_test.py")
        .arg("--server")
        .arg(&binary)
        .args(["--wsgi-port", &free_port().to_string()])
        .args(["--websocket-port", &free_port().to_string()])
        .arg("--artifacts")
        .arg(&artifacts)
        .args(["--chromium", &chromium])
        .current_dir(workspace_root())
        .output()
        .expect("run the browser checks");
    let report = output_text(&output);
    assert!(output.status.success(), "console checks failed:\n{report}");
    for check in [
        "check_live_tail_and_restart",
        "check_claim_and_delete",
        "check_sse_fallback",
    ] {
        assert!(
            report.contains(&format!("ok {check}")),
            "{check} did not pass:\n{report}"
        );
    }
    assert!(artifacts.join("console-live-tail.png").is_file());
}

/// The console's files come from the binary with a content security policy;
/// `config.json` names the websocket transport on the page's host name;
/// `[ui] enabled = false` leaves `/ui/` to the API's 404.
#[test]
fn console_is_served_from_the_binary_and_can_be_turned_off() {
    let server = zaqar_tests::TestServer::start_with(
        "[drivers]\ntransports = [\"wsgi\", \"websocket\"]\n[drivers.transport.websocket]\nport = 0\n",
    );
    let client = server.client();
    let page = client.get("/ui/").without_header("client-id").send();
    assert_eq!(page.status, 200);
    assert!(page.text().contains("zaqar-rs console"));
    assert!(page
        .header("content-security-policy")
        .is_some_and(|p| p.contains("script-src 'self'")));
    let module = client.get("/ui/client/index.js").send();
    assert_eq!(module.status, 200);
    assert!(module
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/javascript")));
    let config = client.get("/ui/config.json").send().json();
    let port = server.address("websocket").rsplit(':').next().unwrap();
    assert_eq!(
        config["websocket_url"],
        serde_json::json!(format!("ws://127.0.0.1:{port}"))
    );
    assert_eq!(client.get("/ui/missing.js").send().status, 404);

    let off = zaqar_tests::TestServer::start_with("[ui]\nenabled = false\n");
    let client = off.client();
    let refused = client.get("/ui/").send();
    assert_eq!(refused.status, 404);
    assert_eq!(client.get("/ui/config.json").send().status, 404);
}
