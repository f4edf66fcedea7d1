//! What an operator or plugin author meets around a plugin: `zaqar-server
//! plugins --check` (one library, or every configured plugin), configuration
//! errors named by their TOML key, the rule for notifier sinks that cannot be
//! built, and a panicking sink logged where its author sees it. Everything
//! through the real binary.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use serde_json::json;
use zaqar_tests::{example_library, plugin_library, TestServer};

fn notifier_file_library() -> PathBuf {
    example_library("notifier-file", "zaqar_notifier_file")
}

fn incompatible_library() -> PathBuf {
    plugin_library(
        "zaqar-fixture-incompatible-plugin",
        "zaqar_fixture_incompatible_plugin",
    )
}

fn fixture_plugins_library() -> PathBuf {
    plugin_library("zaqar-fixture-plugins", "zaqar_fixture_plugins")
}

fn paths(libraries: &[&PathBuf]) -> String {
    let quoted: Vec<String> = libraries
        .iter()
        .map(|l| format!("{:?}", l.display().to_string()))
        .collect();
    format!("[plugins]\npaths = [{}]\n", quoted.join(", "))
}

#[test]
fn check_of_a_library_lists_its_entry_points_and_accepts_it() {
    let library = notifier_file_library();
    let path = library.display().to_string();
    let exited = TestServer::run_to_exit("", &["plugins", "--check", &path], &[]);
    assert!(exited.status.success(), "{exited:?}");
    let out = &exited.stdout;
    assert!(out.contains(&path), "{out}");
    assert!(
        out.contains(&format!("plugin-api: {}", plugin_api::PLUGIN_API_VERSION)),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["zaqar.notification", "file"]),
        "{out}"
    );
    assert!(out.contains("accepted"), "{out}");
}

#[test]
fn check_of_another_major_refuses_it_naming_both_versions() {
    let library = incompatible_library();
    let exited = TestServer::run_to_exit(
        "",
        &["plugins", "--check", &library.display().to_string()],
        &[],
    );
    assert_eq!(exited.status.code(), Some(1), "{exited:?}");
    let out = &exited.stdout;
    assert!(out.contains("refused"), "{out}");
    assert!(
        out.contains("the library was built against plugin-api 2.0.0"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "this host uses plugin-api {}",
            plugin_api::PLUGIN_API_VERSION
        )),
        "{out}"
    );
}

#[test]
fn check_of_a_file_that_is_no_plugin_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("libnot_a_plugin.so");
    std::fs::write(&bogus, b"not an ELF file").unwrap();
    let exited = TestServer::run_to_exit(
        "",
        &["plugins", "--check", &bogus.display().to_string()],
        &[],
    );
    assert_eq!(exited.status.code(), Some(1), "{exited:?}");
    assert!(exited.stdout.contains("refused: cannot open"), "{exited:?}");
}

#[test]
fn check_of_the_configuration_builds_every_selected_plugin() {
    let exited = TestServer::run_to_exit("", &["plugins", "--check"], &[]);
    assert!(exited.status.success(), "{exited:?}");
    for row in [
        "zaqar.storage.message",
        "zaqar.storage.management",
        "zaqar.transport",
    ] {
        assert!(
            exited
                .stdout
                .lines()
                .any(|l| l.starts_with("ok") && l.contains(row)),
            "{row} not checked ok:\n{}",
            exited.stdout
        );
    }
}

#[test]
fn check_of_the_configuration_names_a_typo_by_file_and_toml_key() {
    let library = notifier_file_library();
    let overlay = format!(
        "{}[drivers.notification.file]\npathh = \"x.jsonl\"\n",
        paths(&[&library])
    );
    let exited = TestServer::run_to_exit(&overlay, &["plugins", "--check"], &[]);
    assert_eq!(exited.status.code(), Some(1), "{exited:?}");
    let line = exited
        .stdout
        .lines()
        .find(|l| l.starts_with("FAILED"))
        .unwrap_or_else(|| panic!("no failure in:\n{}", exited.stdout));
    assert!(line.contains("`drivers.notification.file.pathh`"), "{line}");
    assert!(line.contains("zaqar.toml"), "{line}");
    assert!(line.contains("unknown field `pathh`"), "{line}");
    assert!(!line.contains("line 1 column"), "{line}");
}

#[test]
fn check_of_the_configuration_builds_the_auth_strategy_and_names_its_typo() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(
        &tokens,
        "[[tokens]]\ntoken = \"t\"\nproject = \"p\"\nuser = \"u\"\n",
    )
    .unwrap();
    let good = format!(
        "[server]\nauth_strategy = \"static\"\n[drivers.auth.static]\ntokens_file = {:?}\n",
        tokens.display().to_string()
    );
    let exited = TestServer::run_to_exit(&good, &["plugins", "--check"], &[]);
    assert!(exited.status.success(), "{exited:?}");
    assert!(
        exited
            .stdout
            .lines()
            .any(|l| l.starts_with("ok") && l.contains("zaqar.auth") && l.contains("static")),
        "{}",
        exited.stdout
    );

    let typo = good.replace("tokens_file", "tokens_fiel");
    for args in [&["plugins", "--check"][..], &[]] {
        let exited = TestServer::run_to_exit(&typo, args, &[]);
        assert_eq!(exited.status.code(), Some(1), "{args:?}: {exited:?}");
        let out = format!("{}{}", exited.stdout, exited.stderr);
        assert!(out.contains("`drivers.auth.static.tokens_fiel`"), "{out}");
        assert!(out.contains("zaqar.toml"), "{out}");
    }
}

#[test]
fn check_of_the_configuration_names_a_transport_key_of_the_wrong_type() {
    let exited = TestServer::run_to_exit(
        "[drivers.transport.wsgi]\nport = \"eighty\"\n",
        &["plugins", "--check"],
        &[],
    );
    assert_eq!(exited.status.code(), Some(1), "{exited:?}");
    assert!(
        exited.stdout.contains("`drivers.transport.wsgi.port`"),
        "{}",
        exited.stdout
    );
}

#[test]
fn a_configured_sink_that_cannot_be_built_fails_start_up() {
    let library = notifier_file_library();
    let overlay = format!(
        "{}[drivers.notification.file]\npathh = \"x.jsonl\"\n",
        paths(&[&library])
    );
    let exited = TestServer::run_to_exit(&overlay, &[], &[]);
    assert_eq!(exited.status.code(), Some(1), "{exited:?}");
    let stderr = &exited.stderr;
    assert!(stderr.contains("notifier sink `file`"), "{stderr}");
    assert!(
        stderr.contains("`drivers.notification.file.pathh`"),
        "{stderr}"
    );
    assert!(stderr.contains("unknown field `pathh`"), "{stderr}");
}

#[test]
fn a_table_for_a_scheme_no_sink_provides_fails_start_up() {
    let exited = TestServer::run_to_exit(
        "[drivers.notification.fiel]\npath = \"x.jsonl\"\n",
        &[],
        &[],
    );
    assert_eq!(exited.status.code(), Some(1), "{exited:?}");
    assert!(
        exited.stderr.contains("[drivers.notification.fiel]"),
        "{}",
        exited.stderr
    );
    assert!(exited.stderr.contains("available:"), "{}", exited.stderr);
}

#[test]
fn subscriptions_need_a_working_sink_and_a_library_sink_needs_no_listing() {
    // The file sink needs a `path`: unconfigured, it cannot be built, so its
    // scheme is refused; the fixture's `noop` sink builds, so its scheme is
    // accepted though `subscriber_types` does not list it.
    let server = TestServer::start_with(&paths(&[
        &notifier_file_library(),
        &fixture_plugins_library(),
    ]));
    let client = server.client();
    let subscribe = |subscriber: &str| {
        client
            .post("/v2/queues/q/subscriptions")
            .json(&json!({"subscriber": subscriber, "ttl": 3600}))
            .send()
    };
    let response = subscribe("noop:anything");
    assert_eq!(response.status, 201, "{}", response.text());

    for refused in ["file:audit", "trust+http://example.com/hook"] {
        let response = subscribe(refused);
        assert_eq!(response.status, 400, "{refused}: {}", response.text());
        let body = response.json();
        assert_eq!(body["title"], "Invalid API request");
        let description = body["description"].as_str().unwrap();
        assert!(
            description.starts_with("The subscriber type of subscription must be supported in the list ['http', 'https', 'mailto', "),
            "{description}"
        );
        assert!(description.contains("'noop'"), "{description}");
        assert!(!description.contains("'file'"), "{description}");
    }
    let listed = client.get("/v2/queues/q/subscriptions").send().json();
    assert_eq!(listed["subscriptions"].as_array().unwrap().len(), 1);
    assert!(
        server
            .log()
            .contains("subscriptions with this scheme are refused"),
        "{}",
        server.log()
    );
}

#[test]
fn a_panic_in_deliver_is_logged_at_warn_with_the_plugins_name() {
    let server = TestServer::start_with(&paths(&[&fixture_plugins_library()]));
    let client = server.client();
    let response = client
        .post("/v2/queues/q/subscriptions")
        .json(&json!({"subscriber": "panic-in-deliver:x", "ttl": 3600}))
        .send();
    assert_eq!(response.status, 201, "{}", response.text());
    let response = client
        .post("/v2/queues/q/messages")
        .json(&json!({"messages": [{"body": 1, "ttl": 300}]}))
        .send();
    assert_eq!(response.status, 201, "{}", response.text());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = server.log();
        let panicked = log.lines().find(|l| l.contains("notifier sink panicked"));
        if let Some(line) = panicked {
            assert!(line.contains("WARN"), "{line}");
            assert!(
                line.contains("zaqar.notification:panic-in-deliver"),
                "{line}"
            );
            assert!(
                line.contains("asked to deliver to panic-in-deliver:x"),
                "{line}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no WARN for the panic:\n{log}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn mismatched_layout_library() -> PathBuf {
    plugin_library(
        "zaqar-fixture-mismatched-layout-plugin",
        "zaqar_fixture_mismatched_layout_plugin",
    )
}

#[test]
fn a_library_with_the_right_version_and_another_layout_is_refused_and_the_host_serves() {
    let library = mismatched_layout_library();
    let exited = TestServer::run_to_exit(
        "",
        &["plugins", "--check", &library.display().to_string()],
        &[],
    );
    assert_eq!(exited.status.code(), Some(1), "{exited:?}");
    assert!(
        exited
            .stdout
            .contains("refused: its plugin-api types do not match the host's"),
        "{}",
        exited.stdout
    );

    let server = TestServer::start_with(&paths(&[&library, &incompatible_library()]));
    assert_eq!(server.client().get("/v2/ping").send().status, 204);
    let log = server.log();
    assert!(log.contains("ABI layout mismatch"), "{log}");
    assert!(
        log.contains("the library was built against plugin-api 2.0.0"),
        "{log}"
    );
}
