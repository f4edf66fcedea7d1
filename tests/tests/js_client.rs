//! The JavaScript client's own tests (`clients/js`, `node --test`) against
//! the real server binary: live tail, history, filters, fallbacks from
//! WebSocket to SSE to long-poll, and resuming across a server restart.
//!
//! Needs Node.js 20+ and npm (CI installs them); without `node` on the PATH
//! the test says so and passes without running anything.

use std::process::Command;

use zaqar_tests::{output_text, server_binary, workspace_root};

#[test]
fn javascript_client_suite_passes_against_the_server() {
    if Command::new("node").arg("--version").output().is_err() {
        eprintln!("SKIPPED: `node` is not installed, so the JavaScript client's tests cannot run");
        return;
    }
    let binary = server_binary();
    let package = workspace_root().join("clients/js");
    if !package.join("node_modules").is_dir() {
        let output = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&package)
            .output()
            .expect("run npm ci");
        assert!(
            output.status.success(),
            "npm ci failed:\n{}",
            output_text(&output)
        );
    }
    let output = Command::new("node")
        .args(["--test", "--test-concurrency=1", "test/"])
        .current_dir(&package)
        .env("ZAQAR_SERVER_BINARY", &binary)
        .output()
        .expect("run node --test");
    let text = output_text(&output);
    assert!(
        output.status.success(),
        "the JavaScript client's tests failed:\n{text}"
    );
    let passed = text
        .lines()
        .find_map(|l| l.strip_prefix("# pass "))
        .and_then(|n| n.trim().parse::<u32>().ok())
        .unwrap_or(0);
    assert!(passed > 10, "node --test ran too little:\n{text}");
    assert!(text.contains("# fail 0"), "{text}");
    assert!(
        text.contains("# skipped 0"),
        "node --test skipped checks:\n{text}"
    );
}
