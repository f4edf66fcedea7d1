//! python-zaqarclient 4.7.0, the client existing Zaqar users run, drives the
//! real server unchanged (`tests/python/test_zaqarclient.py`), and Python's
//! `websockets` + `msgpack` speak the persistent transport
//! (`tests/python/test_websocket.py`).
//!
//! `scripts/test.sh` creates the virtualenv and sets `PYTHON_ZAQARCLIENT`.

use std::process::Command;

use zaqar_tests::{output_text, workspace_root, TestServer};

#[test]
fn python_clients_work_unchanged() {
    let python = std::env::var("PYTHON_ZAQARCLIENT").expect(
        "PYTHON_ZAQARCLIENT is not set: run the suite with `bash scripts/test.sh`, \
         which creates the python-zaqarclient virtualenv",
    );
    let server = TestServer::start_with(
        "[drivers]\ntransports = [\"wsgi\", \"websocket\"]\n[drivers.transport.websocket]\nport = 0\n",
    );
    let output = Command::new(&python)
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/python",
        ])
        .current_dir(workspace_root())
        .env("ZAQAR_URL", server.http_url())
        .env(
            "ZAQAR_WS_URL",
            format!("ws://{}", server.address("websocket")),
        )
        .output()
        .expect("run pytest");
    let report = output_text(&output);
    assert!(
        output.status.success(),
        "python-zaqarclient checks failed:\n{report}\nserver log:\n{}",
        server.log()
    );
    assert!(report.contains("passed"), "pytest ran nothing:\n{report}");
    assert!(
        !report.contains("skipped"),
        "pytest skipped checks:\n{report}"
    );
}

/// python-zaqarclient's pool and flavor calls against a pooled server
/// (`tests/python_pools/test_pools.py`).
#[test]
fn python_zaqarclient_pool_and_flavor_calls_work() {
    let python = std::env::var("PYTHON_ZAQARCLIENT").expect(
        "PYTHON_ZAQARCLIENT is not set: run the suite with `bash scripts/test.sh`, \
         which creates the python-zaqarclient virtualenv",
    );
    let server = TestServer::start_with("[server]\npooling = true\n");
    let pools = tempfile::tempdir().expect("pool directory");
    let output = Command::new(&python)
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/python_pools",
        ])
        .current_dir(workspace_root())
        .env("ZAQAR_URL", server.http_url())
        .env("ZAQAR_POOL_DIR", pools.path())
        .output()
        .expect("run pytest");
    let report = output_text(&output);
    assert!(
        output.status.success(),
        "python-zaqarclient pool checks failed:\n{report}\nserver log:\n{}",
        server.log()
    );
    assert!(
        report.contains("4 passed"),
        "pytest ran something else:\n{report}"
    );
}
