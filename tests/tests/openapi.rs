//! docs/openapi.yaml against the live server: schemathesis generates
//! requests for every operation of the document and checks that none is
//! answered with a 5xx and that every answer conforms to the document
//! (status, content type, headers, body schema). `scripts/schemathesis.sh`
//! makes its virtualenv once and bounds the run in time.

use std::process::Command;

use zaqar_tests::{output_text, workspace_root, TestServer};

#[test]
fn the_server_answers_as_its_openapi_document_says() {
    let server = TestServer::start_with(
        "[server]\nadmin_mode = true\n[signed_url]\nsecret_key = \"schemathesis\"\n",
    );
    let (mut passed, mut report) = schemathesis(&server);
    if !passed && nothing_recorded(&report) {
        // Seen once in CI: an operation's fuzzing ended as failed with no
        // failing check and no error recorded (hypothesis gave up on a
        // replay), so there is no answer of the server to blame. One more
        // run, which must then pass on its own.
        eprintln!("schemathesis failed with nothing recorded; running it again:\n{report}");
        (passed, report) = schemathesis(&server);
    }
    assert!(
        passed,
        "schemathesis found problems:\n{report}\nserver log:\n{}",
        server.log()
    );
    assert!(report.contains("No issues found"), "{report}");
    assert!(
        !report.contains("Tested: 0"),
        "schemathesis tested nothing:\n{report}"
    );
}

/// Runs `scripts/schemathesis.sh` against `server`: whether it passed, and
/// what it printed.
fn schemathesis(server: &TestServer) -> (bool, String) {
    let output = Command::new("bash")
        .arg("scripts/schemathesis.sh")
        .arg(server.http_url())
        .current_dir(workspace_root())
        .output()
        .expect("run scripts/schemathesis.sh");
    let report = output_text(&output);
    (output.status.success(), report)
}

/// Whether a failed run's report holds no failing check and no error: every
/// answer it saw conformed, yet a phase ended as failed.
fn nothing_recorded(report: &str) -> bool {
    report.contains("No issues found")
        && !report.contains("Failures:")
        && !report.contains("Errors:")
}
