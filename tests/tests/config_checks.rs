//! Every configuration key is checked: a misspelt choice or a table that
//! nothing reads stops the server at start-up with a message naming the
//! key, like an unknown key does.

use zaqar_tests::TestServer;

fn refused(overlay: &str) -> String {
    let exited = TestServer::run_to_exit(overlay, &[], &[]);
    assert_eq!(exited.status.code(), Some(2), "{exited:?}");
    exited.stderr
}

#[test]
fn a_misspelt_log_format_is_refused_naming_the_key_and_the_choices() {
    let stderr = refused("[server]\nlog_format = \"jsn\"\n");
    assert!(stderr.contains("server.log_format"), "{stderr}");
    assert!(stderr.contains("\"jsn\""), "{stderr}");
    assert!(stderr.contains("\"text\", \"json\""), "{stderr}");
}

#[test]
fn a_misspelt_client_id_mode_is_refused_naming_the_key_and_the_choices() {
    let stderr = refused("[transport]\nclient_id_uuid_safe = \"of\"\n");
    assert!(stderr.contains("transport.client_id_uuid_safe"), "{stderr}");
    assert!(stderr.contains("\"strict\", \"off\""), "{stderr}");
}

#[test]
fn a_table_for_a_transport_not_selected_is_refused() {
    let stderr = refused("[drivers.transport.websokcet]\nport = 0\n");
    assert!(stderr.contains("[drivers.transport.websokcet]"), "{stderr}");
    assert!(stderr.contains("not selected"), "{stderr}");
}

#[test]
fn a_sink_table_for_a_scheme_no_sink_provides_is_refused() {
    let exited = TestServer::run_to_exit(
        "[drivers.notification.mailt]\nsendmail = \"/bin/true\"\n",
        &[],
        &[],
    );
    assert_eq!(exited.status.code(), Some(1), "{exited:?}");
    assert!(
        exited.stderr.contains("[drivers.notification.mailt]"),
        "{}",
        exited.stderr
    );
}

#[test]
fn a_sink_table_for_a_listed_scheme_and_the_accepted_spellings_start() {
    let server = TestServer::start_with(
        "[server]\nlog_format = \"json\"\n[transport]\nclient_id_uuid_safe = \"off\"\n\
         [drivers.notification.mailto]\n",
    );
    assert_eq!(server.client().get("/v2/ping").send().status, 204);
}

#[test]
fn a_negative_rate_limit_is_refused_naming_the_key() {
    let stderr = refused("[server]\nrate_limit_per_project = -5\n");
    assert!(stderr.contains("server.rate_limit_per_project"), "{stderr}");
}

#[test]
fn a_metrics_address_without_a_port_is_refused_naming_the_key() {
    let stderr = refused("[server]\nmetrics_listen = \"localhost\"\n");
    assert!(stderr.contains("server.metrics_listen"), "{stderr}");
    assert!(stderr.contains("\"localhost\""), "{stderr}");
}
