//! python-zaqarclient 4.7.0, the client existing Zaqar users run, drives the
//! real server unchanged (`tests/python/test_zaqarclient.py`).
//!
//! `scripts/test.sh` creates the virtualenv and sets `ZAQAR_TEST_PYTHON`.

use std::process::Command;

use zaqar_tests::{workspace_root, TestServer};

#[test]
fn python_zaqarclient_works_unchanged() {
    let python = std::env::var("ZAQAR_TEST_PYTHON").expect(
        "ZAQAR_TEST_PYTHON is not set: run the suite with `bash scripts/test.sh`, \
         which creates the python-zaqarclient virtualenv",
    );
    let server = TestServer::start();
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
        .output()
        .expect("run pytest");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "python-zaqarclient checks failed:\n{report}\nserver log:\n{}",
        server.log()
    );
    assert!(report.contains("passed"), "pytest ran nothing:\n{report}");
}
