//! Faults against the real PostgreSQL: connections killed under the store,
//! an unreachable database at start-up, a schema newer than the code.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use plugin_api::{
    storage::{MessageListQuery, MessageStore, NewMessage, QueueRef},
    types::{ROption::RNone, RVec},
    ErrorCode, PluginError,
};
use storage_postgresql::{PostgresConfig, PostgresManagementStore, PostgresMessageStore};
use support::TestDatabase;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn one_message(n: usize) -> RVec<NewMessage> {
    vec![NewMessage {
        ttl: 300,
        delay: 0,
        body: format!("{{\"n\":{n}}}").into_bytes().into(),
    }]
    .into()
}

/// Terminates every connection to the test database except the caller's.
async fn terminate_connections(db: &TestDatabase) -> i64 {
    let row = support::admin()
        .await
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&db.name],
        )
        .await
        .expect("pg_terminate_backend");
    row.get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connections_fail_unavailable_then_the_pool_recovers_by_itself() {
    let db = TestDatabase::create().await;
    let store = PostgresMessageStore::open(&db.config()).await.unwrap();
    let queue = QueueRef::new("p", "faults");
    // Open several pooled connections, so that several die at once.
    let warmups: Vec<_> = (0..6)
        .map(|n| store.message_post(queue.clone(), "c".into(), one_message(n), now()))
        .collect();
    for posted in futures_util::future::join_all(warmups).await {
        posted.expect("posts before the fault");
    }
    assert!(
        terminate_connections(&db).await >= 1,
        "the store had connections"
    );

    let mut failures = Vec::new();
    let mut acknowledged = 6;
    for n in 0..30 {
        match store
            .message_post(queue.clone(), "c".into(), one_message(100 + n), now())
            .await
        {
            Ok(_) => acknowledged += 1,
            Err(e) => failures.push((n, e)),
        }
    }
    eprintln!("{} of 30 calls failed after the kill", failures.len());
    for (_, e) in &failures {
        assert_eq!(e.code, ErrorCode::UNAVAILABLE, "{e}");
    }
    // Each dead connection fails at most one call before it is replaced.
    assert!(failures.len() <= 8, "{failures:?}");
    assert!(
        failures.iter().all(|(n, _)| *n < 10),
        "later calls succeed: {failures:?}"
    );
    assert!(store.is_alive().await.unwrap());
    let listed = store
        .message_list(
            queue,
            MessageListQuery {
                after_seq: RNone,
                limit: 100,
                exclude_client: RNone,
                include_claimed: true,
                include_delayed: true,
            },
            now(),
        )
        .await
        .unwrap();
    assert_eq!(
        listed.len(),
        acknowledged,
        "every acknowledged post is there"
    );
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn unreachable_config() -> (PostgresConfig, u16) {
    let port = closed_port();
    let config = PostgresConfig {
        uri: format!("postgresql://zaqar:sekrit-pw@127.0.0.1:{port}/zaqar"),
        connect_timeout_ms: 2000,
        ..PostgresConfig::default()
    };
    (config, port)
}

fn assert_names_redacted_uri(e: &PluginError, port: u16) {
    let text = e.message.as_str();
    assert!(text.contains("postgresql store"), "{text}");
    assert!(
        text.contains(&format!("postgresql://zaqar:***@127.0.0.1:{port}/zaqar")),
        "{text}"
    );
    assert!(!text.contains("sekrit-pw"), "{text}");
}

#[tokio::test]
async fn unreachable_database_at_start_names_the_redacted_uri() {
    let (config, port) = unreachable_config();
    let e = PostgresMessageStore::open(&config).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::UNAVAILABLE, "{e}");
    assert_names_redacted_uri(&e, port);
    let e = PostgresManagementStore::open(&config).await.unwrap_err();
    assert_names_redacted_uri(&e, port);
}

#[tokio::test]
async fn a_uri_of_another_scheme_is_a_config_error() {
    let config = PostgresConfig {
        uri: "mysql://root:pw@127.0.0.1/zaqar".into(),
        ..PostgresConfig::default()
    };
    let e = PostgresMessageStore::open(&config).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::BAD_CONFIG, "{e}");
    assert!(e.message.contains("postgresql://"), "{e}");
    assert!(!e.message.contains(":pw@"), "{e}");
}

#[tokio::test]
async fn a_schema_newer_than_the_code_is_refused_and_left_alone() {
    let db = TestDatabase::create().await;
    drop(PostgresMessageStore::open(&db.config()).await.unwrap());
    let direct = db.connect().await;
    let newer = storage_postgresql::SCHEMA_VERSION + 1;
    direct
        .execute("UPDATE zaqar_schema_version SET version = $1", &[&newer])
        .await
        .unwrap();
    let e = PostgresMessageStore::open(&db.config()).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::BAD_CONFIG, "{e}");
    assert!(e.message.contains(&format!("version {newer}")), "{e}");
    assert!(e.message.contains("newer"), "{e}");
    let row = direct
        .query_one("SELECT version FROM zaqar_schema_version", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), newer, "the version is untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_starting_together_migrate_once_and_keep_the_data() {
    let db = TestDatabase::create().await;
    let config = db.config();
    let queue = QueueRef::new("p", "kept");
    // Two hosts starting together on an empty database.
    let (a, b) = tokio::join!(
        PostgresMessageStore::open(&config),
        PostgresMessageStore::open(&config)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    a.message_post(queue.clone(), "c".into(), one_message(1), now())
        .await
        .unwrap();
    drop((a, b));
    let again = PostgresMessageStore::open(&config).await.unwrap();
    assert_eq!(again.queue_last_seq(queue).await.unwrap(), 1);
}
