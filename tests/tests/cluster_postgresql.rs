//! Several `zaqar-server` hosts on one PostgreSQL database are one
//! service (the scenarios are in `cluster_scenarios`): cross-host socket
//! pushes, claims that never overlap, and webhook delivery that survives
//! the delivering host's SIGKILL. Each test has its own throw-away database.

mod cluster_scenarios;

use zaqar_tests::{postgres::TestDatabase, TestServer};

#[test]
fn a_socket_on_one_host_gets_what_is_posted_through_the_others_in_order_once() {
    let database = TestDatabase::create();
    let start = |overlay: &str| TestServer::start_on_postgresql(&database.uri, overlay);
    cluster_scenarios::a_socket_on_one_host_gets_what_is_posted_through_the_others_in_order_once(
        &start,
    );
}

#[test]
fn claims_by_consumers_on_different_hosts_never_overlap() {
    let database = TestDatabase::create();
    let start = |overlay: &str| TestServer::start_on_postgresql(&database.uri, overlay);
    cluster_scenarios::claims_by_consumers_on_different_hosts_never_overlap(&start);
}

#[test]
fn webhook_delivery_resumes_on_another_host_after_the_delivering_host_is_killed() {
    let database = TestDatabase::create();
    let start = |overlay: &str| TestServer::start_on_postgresql(&database.uri, overlay);
    cluster_scenarios::webhook_delivery_resumes_on_another_host_after_the_delivering_host_is_killed(
        &start,
    );
}
