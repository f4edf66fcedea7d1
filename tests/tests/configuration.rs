//! Configuration: file, environment, unknown keys, unknown drivers.

use zaqar_tests::TestServer;

#[test]
fn unknown_driver_name_exits_non_zero_listing_what_exists() {
    let exited = TestServer::run_to_exit("[drivers]\nmessage_store = \"mongodb\"\n", &[], &[]);
    assert_eq!(exited.status.code(), Some(1), "{exited:?}");
    assert!(
        exited
            .stderr
            .contains("drivers.message_store = \"mongodb\""),
        "{}",
        exited.stderr
    );
    assert!(
        exited.stderr.contains("available: embedded"),
        "{}",
        exited.stderr
    );
}

#[test]
fn unknown_transport_name_lists_the_transports() {
    let exited =
        TestServer::run_to_exit("[drivers]\ntransports = [\"wsgi\", \"amqp\"]\n", &[], &[]);
    assert_eq!(exited.status.code(), Some(1), "{exited:?}");
    assert!(
        exited
            .stderr
            .contains("no plugin provides `amqp` in zaqar.transport"),
        "{}",
        exited.stderr
    );
    assert!(exited.stderr.contains("wsgi"), "{}", exited.stderr);
}

#[test]
fn unknown_config_key_is_rejected_naming_key_and_file() {
    let exited = TestServer::run_to_exit("[transport]\nmax_messages_per_pag = 3\n", &[], &[]);
    assert_eq!(exited.status.code(), Some(2), "{exited:?}");
    assert!(
        exited.stderr.contains("max_messages_per_pag"),
        "{}",
        exited.stderr
    );
    assert!(exited.stderr.contains("zaqar.toml"), "{}", exited.stderr);
}

#[test]
fn unknown_section_is_rejected() {
    let exited = TestServer::run_to_exit("[trasport]\nmax_messages_per_page = 3\n", &[], &[]);
    assert_eq!(exited.status.code(), Some(2), "{exited:?}");
    assert!(exited.stderr.contains("trasport"), "{}", exited.stderr);
}

#[test]
fn environment_overrides_the_file() {
    // The file selects a driver that exists; the environment one that does not.
    let exited = TestServer::run_to_exit(
        "",
        &[],
        &[("ZAQAR_DRIVERS__MESSAGE_STORE", "from-the-environment")],
    );
    assert_eq!(exited.status.code(), Some(1), "{exited:?}");
    assert!(
        exited.stderr.contains("from-the-environment"),
        "{}",
        exited.stderr
    );
}

#[test]
fn environment_variables_without_a_section_are_not_configuration() {
    let server = TestServer::start_with_env("", &[("ZAQAR_BENCH_HOME", "/tmp/elsewhere")]);
    assert_eq!(server.client().get("/v2/ping").send().status, 204);
}

#[test]
fn a_misspelt_section_in_the_environment_is_rejected() {
    let exited =
        TestServer::run_to_exit("", &[], &[("ZAQAR_TRASPORT__MAX_MESSAGES_PER_PAGE", "5")]);
    assert_eq!(exited.status.code(), Some(2), "{exited:?}");
    assert!(exited.stderr.contains("trasport"), "{}", exited.stderr);
}

#[test]
fn environment_overrides_an_api_limit() {
    let server = TestServer::start_with_env(
        "[transport]\nmax_messages_per_page = 20\n",
        &[("ZAQAR_TRANSPORT__MAX_MESSAGES_PER_PAGE", "5")],
    );
    let client = server.client();
    assert_eq!(
        client.get("/v2/queues/q1/messages?limit=5").send().status,
        200
    );
    let response = client.get("/v2/queues/q1/messages?limit=6").send();
    assert_eq!(response.status, 400, "{}", response.text());
    assert!(
        response.json()["description"]
            .as_str()
            .unwrap()
            .contains("greater than 5"),
        "{}",
        response.text()
    );
}

#[test]
fn sigterm_shuts_down_gracefully() {
    let mut server = TestServer::start();
    assert_eq!(server.client().get("/v2/ping").send().status, 204);
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    assert!(server.log().contains("stopped"));
}

#[test]
fn the_management_store_shares_the_message_stores_table_when_it_has_none() {
    // Only the message store names a path: both stores must open that one
    // directory (the embedded store would refuse a second open of the
    // default ./data in the same process otherwise).
    let server = TestServer::start_with(
        // (Embedded whatever ZAQAR_TEST_STORE says: this is about its directory.)
        "[drivers]\nmanagement_store = \"embedded\"\n[drivers.message_store]\nname = \"embedded\"\n\
         [drivers.message_store.embedded]\npath = \"shared-data\"\n",
    );
    assert_eq!(server.client().get("/v2/ping").send().status, 204);
    let default_dir = server.data_dir();
    let shared = default_dir.parent().unwrap().join("shared-data");
    assert!(
        shared.join("zaqar.redb").is_file(),
        "the named directory is used"
    );
    assert!(
        !default_dir.join("zaqar.redb").exists(),
        "the management store opened a second database in the default directory"
    );
}
