//! docs/openapi.yaml against the live server: schemathesis generates
//! requests for every operation of the document and checks that none is
//! answered with a 5xx and that every answer conforms to the document
//! (status, content type, headers, body schema). `scripts/schemathesis.sh`
//! makes its virtualenv once and bounds the run in time.

use std::process::Command;

use zaqar_tests::{workspace_root, TestServer};

#[test]
fn the_server_answers_as_its_openapi_document_says() {
    let server = TestServer::start_with(
        "[server]\nadmin_mode = true\n[signed_url]\nsecret_key = \"schemathesis\"\n",
    );
    let output = Command::new("bash")
        .arg("scripts/schemathesis.sh")
        .arg(server.http_url())
        .current_dir(workspace_root())
        .output()
        .expect("run scripts/schemathesis.sh");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{report}\nserver log:\n{}",
        server.log()
    );
    assert!(report.contains("No issues found"), "{report}");
    assert!(
        !report.contains("Tested: 0"),
        "schemathesis tested nothing:\n{report}"
    );
}
