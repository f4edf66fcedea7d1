//! Behaviour of the embedded stores beyond the storage contract: entry
//! points, configuration, sharing one database, reopening, start-up errors,
//! the sweeper.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use plugin_api::{
    management::ManagementStore,
    storage::{
        ClaimRequest, MessageListQuery, MessageStore, NewMessage, NewSubscription, QueueRef,
    },
    types::{ROption::RNone, RStr, RVec},
    wrap_host_services, Constructor, ErrorCode, HostServices, LogLevel, PluginContext,
};
use storage_embedded::{
    EmbeddedConfig, EmbeddedManagementStore, EmbeddedMessageStore, DATABASE_FILE,
};

struct Silent;

impl HostServices for Silent {
    fn log(&self, _level: LogLevel, _message: RStr<'_>) {}
}

fn context(config: serde_json::Value) -> PluginContext {
    PluginContext {
        name: "embedded".into(),
        config: serde_json::to_vec(&config).expect("json").into(),
        services: wrap_host_services(Silent),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

fn config_at(path: &std::path::Path) -> EmbeddedConfig {
    EmbeddedConfig {
        path: path.to_path_buf(),
        ..EmbeddedConfig::default()
    }
}

fn q(name: &str) -> QueueRef {
    QueueRef::new("p", name)
}

fn messages(n: usize, ttl: u32) -> RVec<NewMessage> {
    (0..n)
        .map(|i| NewMessage {
            ttl,
            delay: 0,
            body: format!("{i}").into_bytes().into(),
        })
        .collect()
}

fn everything() -> MessageListQuery {
    MessageListQuery {
        after_seq: RNone,
        limit: 1000,
        exclude_client: RNone,
        include_claimed: true,
        include_delayed: true,
    }
}

#[test]
fn entry_points_register_both_stores_under_embedded() {
    let entries = storage_embedded::entry_points();
    let mut found: Vec<(&str, String)> = entries
        .iter()
        .map(|e| (e.namespace(), e.name.to_string()))
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("zaqar.storage.management", "embedded".to_string()),
            ("zaqar.storage.message", "embedded".to_string())
        ]
    );
    assert!(plugin_api::builtin_plugins().any(|p| p.crate_name == "storage-embedded"));
}

#[tokio::test(flavor = "multi_thread")]
async fn constructors_share_one_database_for_the_same_path() {
    let dir = tempfile::tempdir().unwrap();
    let config = serde_json::json!({ "path": dir.path().join("data") });
    let entries = storage_embedded::entry_points();
    let mut message_store = None;
    let mut management_store = None;
    for entry in entries.iter() {
        match entry.constructor {
            Constructor::MessageStore(build) => {
                message_store = Some(
                    build(context(config.clone()))
                        .await
                        .into_result()
                        .expect("message store opens"),
                )
            }
            Constructor::ManagementStore(build) => {
                management_store = Some(
                    build(context(config.clone()))
                        .await
                        .into_result()
                        .expect("management store opens"),
                )
            }
            _ => panic!("unexpected role"),
        }
    }
    let (messages_box, management_box) = (message_store.unwrap(), management_store.unwrap());
    messages_box
        .message_post(q("a"), "c".into(), messages(1, 60), now())
        .await
        .unwrap();
    let pool = plugin_api::management::PoolRecord {
        name: "p1".into(),
        uri: "embedded://".into(),
        weight: 1,
        flavor: RNone,
        options: b"{}".to_vec().into(),
    };
    assert!(management_box.pool_put(pool).await.unwrap());
    assert!(messages_box.is_alive().await.unwrap());
    assert!(management_box.is_alive().await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn default_config_is_accepted_and_unknown_keys_are_bad_config() {
    let build = match storage_embedded::entry_points()
        .iter()
        .find(|e| e.namespace() == plugin_api::NAMESPACE_MESSAGE_STORE)
        .map(|e| e.constructor)
    {
        Some(Constructor::MessageStore(build)) => build,
        _ => panic!("no message store entry point"),
    };
    let Err(error) = build(context(serde_json::json!({ "paht": "x" })))
        .await
        .into_result()
    else {
        panic!("a typo is refused");
    };
    assert_eq!(error.code, ErrorCode::BAD_CONFIG);
    assert!(error.message.contains("paht"), "{error}");
    let parsed: EmbeddedConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(parsed.path, std::path::PathBuf::from("data"));
    assert_eq!(
        parsed.cache_size_mb, 64,
        "the memory bound suits a small machine"
    );
    let parsed: EmbeddedConfig = serde_json::from_str(r#"{"cache_size_mb": 8}"#).unwrap();
    assert_eq!(parsed.cache_size_mb, 8);
}

async fn metadata(store: &EmbeddedMessageStore) -> Option<Vec<u8>> {
    store
        .queue_get_metadata(q("m"))
        .await
        .unwrap()
        .into_option()
        .map(|bytes| bytes.to_vec())
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_reads_follow_every_change_from_any_store_of_the_directory() {
    // Metadata is served from memory once read; every change must show in
    // the next read, through either store open on the directory.
    let dir = tempfile::tempdir().unwrap();
    let config = config_at(&dir.path().join("data"));
    let (a, b) = (
        EmbeddedMessageStore::open(&config).unwrap(),
        EmbeddedMessageStore::open(&config).unwrap(),
    );
    assert_eq!(metadata(&a).await, None);
    assert!(a
        .queue_create(q("m"), b"{\"v\":1}".to_vec().into(), now())
        .await
        .unwrap());
    assert_eq!(metadata(&b).await, Some(b"{\"v\":1}".to_vec()));
    b.queue_set_metadata(q("m"), b"{\"v\":2}".to_vec().into())
        .await
        .unwrap();
    assert_eq!(metadata(&a).await, Some(b"{\"v\":2}".to_vec()));
    a.queue_delete(q("m")).await.unwrap();
    assert_eq!(metadata(&b).await, None);
    // A post creates the queue again, with empty metadata.
    b.message_post(q("m"), "c".into(), messages(1, 60), now())
        .await
        .unwrap();
    assert_eq!(metadata(&a).await, Some(b"{}".to_vec()));
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_survive_closing_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let t = now();
    let posted = {
        let store = EmbeddedMessageStore::open(&config_at(dir.path())).unwrap();
        let management = EmbeddedManagementStore::open(&config_at(dir.path())).unwrap();
        management
            .flavor_put(plugin_api::management::FlavorRecord {
                project: "p".into(),
                name: "gold".into(),
                pool_list: RVec::new(),
                capabilities: b"[]".to_vec().into(),
            })
            .await
            .unwrap();
        store
            .message_post(q("a"), "c".into(), messages(3, 600), t)
            .await
            .unwrap()
    };
    let store = EmbeddedMessageStore::open(&config_at(dir.path())).expect("reopens after close");
    let listed = store.message_list(q("a"), everything(), t).await.unwrap();
    let ids: Vec<_> = listed.iter().map(|m| m.id.clone()).collect();
    assert_eq!(ids, posted.iter().map(|p| p.id.clone()).collect::<Vec<_>>());
    let management = EmbeddedManagementStore::open(&config_at(dir.path())).unwrap();
    assert!(management
        .flavor_get("p".into(), "gold".into())
        .await
        .unwrap()
        .is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn recreated_queue_continues_its_sequence_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedMessageStore::open(&config_at(dir.path())).unwrap();
    let t = now();
    let first = store
        .message_post(q("a"), "c".into(), messages(3, 600), t)
        .await
        .unwrap();
    store.queue_delete(q("a")).await.unwrap();
    let again = store
        .message_post(q("a"), "c".into(), messages(1, 600), t)
        .await
        .unwrap();
    assert!(
        again[0].seq > first[2].seq,
        "a consumer resuming by seq misses nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn corrupt_database_file_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(DATABASE_FILE);
    let garbage: Vec<u8> = (0..64 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, &garbage).unwrap();
    let error = EmbeddedMessageStore::open(&config_at(dir.path())).expect_err("garbage is refused");
    assert!(
        [ErrorCode::UNAVAILABLE, ErrorCode::BAD_CONFIG].contains(&error.code),
        "{error}"
    );
    assert!(
        error.message.contains(file.to_str().unwrap()),
        "names the file: {error}"
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        garbage,
        "never silently reset"
    );
}

/// A journal segment that is not the last one holds commits that were
/// acknowledged; if it is damaged, the store refuses to start and says which
/// segment, rather than open a database that misses them.
#[tokio::test(flavor = "multi_thread")]
async fn damaged_journal_segment_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = EmbeddedMessageStore::open(&config_at(dir.path())).unwrap();
        store
            .message_post(q("a"), "c".into(), messages(3, 600), now())
            .await
            .unwrap();
    }
    let file = dir.path().join(DATABASE_FILE);
    let before = std::fs::read(&file).unwrap();
    // A record header of generation 0 ("ZQJ2", generation, length 4) whose
    // checksum does not match, then a later, empty segment.
    let mut record = vec![0x32, 0x4a, 0x51, 0x5a];
    record.extend_from_slice(&0u64.to_le_bytes());
    record.extend_from_slice(&4u32.to_le_bytes());
    record.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]);
    let damaged = dir.path().join(format!("journal-{:020}.log", 0));
    std::fs::write(&damaged, record).unwrap();
    std::fs::write(dir.path().join(format!("journal-{:020}.log", 1)), b"").unwrap();

    let error = EmbeddedMessageStore::open(&config_at(dir.path())).expect_err("refused");
    assert_eq!(error.code, ErrorCode::UNAVAILABLE, "{error}");
    assert!(error.message.contains("damaged"), "{error}");
    assert!(
        error.message.contains(damaged.to_str().unwrap()),
        "names the segment: {error}"
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "database file untouched"
    );
    assert!(damaged.exists(), "the journal is kept for inspection");
}

#[tokio::test(flavor = "multi_thread")]
async fn damaged_database_file_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = EmbeddedMessageStore::open(&config_at(dir.path())).unwrap();
        for _ in 0..50 {
            store
                .message_post(q("a"), "c".into(), messages(100, 600), now())
                .await
                .unwrap();
        }
    }
    let file = dir.path().join(DATABASE_FILE);
    let mut bytes = std::fs::read(&file).unwrap();
    // Every page after redb's header: whichever of them the open reads
    // first (the table tree's root, a table's root) is damaged.
    for b in &mut bytes[4096..] {
        *b ^= 0x5a;
    }
    std::fs::write(&file, &bytes).unwrap();
    let error = EmbeddedMessageStore::open(&config_at(dir.path())).expect_err("damage is refused");
    assert_eq!(error.code, ErrorCode::UNAVAILABLE, "{error}");
    assert!(
        error.message.contains(file.to_str().unwrap()),
        "names the file: {error}"
    );
    assert!(error.message.contains("corrupt"), "{error}");
    assert_eq!(std::fs::read(&file).unwrap(), bytes, "never silently reset");
}

#[tokio::test(flavor = "multi_thread")]
async fn data_path_that_cannot_be_a_directory_is_bad_config_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let error = EmbeddedMessageStore::open(&config_at(&file.join("data"))).expect_err("refused");
    assert_eq!(error.code, ErrorCode::BAD_CONFIG);
    assert!(error.message.contains(file.to_str().unwrap()), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sweeper_removes_expired_messages_claims_and_subscriptions() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedMessageStore::open(&config_at(dir.path())).unwrap();
    let t = now();
    store
        .message_post(q("a"), "c".into(), messages(3, 10), t)
        .await
        .unwrap();
    store
        .message_post(q("a"), "c".into(), messages(2, 1000), t)
        .await
        .unwrap();
    let claim = ClaimRequest {
        ttl: 10,
        grace: 0,
        limit: 1,
        dead_letter: RNone,
    };
    // Claims the first short-lived message: the claim expires with it.
    store.claim_create(q("a"), claim, t).await.unwrap();
    let sub = NewSubscription {
        subscriber: "http://example.com".into(),
        ttl: 10,
        options: b"{}".to_vec().into(),
    };
    store.subscription_create(q("a"), sub, t).await.unwrap();
    assert_eq!(
        store.sweep(t + 9_999, 1000).await.unwrap(),
        0,
        "nothing expired yet"
    );
    assert_eq!(store.messages_expired().await.unwrap(), 0);
    // The three messages, the expiry entry of their run, the claim and the
    // subscription.
    assert_eq!(store.sweep(t + 10_000, 1000).await.unwrap(), 3 + 1 + 1 + 1);
    assert_eq!(store.sweep(t + 10_000, 1000).await.unwrap(), 0);
    assert_eq!(
        store.messages_expired().await.unwrap(),
        3,
        "the three short-lived messages, not the claim or the subscription"
    );
    let left = store.message_list(q("a"), everything(), t).await.unwrap();
    assert_eq!(left.len(), 2, "only the expired rows went");
}

#[tokio::test(flavor = "multi_thread")]
async fn sweeper_removes_rows_of_deleted_and_purged_queues_in_bounded_passes() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedMessageStore::open(&config_at(dir.path())).unwrap();
    let t = now();
    store
        .message_post(q("gone"), "c".into(), messages(30, 600), t)
        .await
        .unwrap();
    store
        .message_post(q("purged"), "c".into(), messages(5, 600), t)
        .await
        .unwrap();
    store.queue_delete(q("gone")).await.unwrap();
    store.message_purge(q("purged")).await.unwrap();
    assert_eq!(store.sweep(t, 20).await.unwrap(), 20);
    assert_eq!(store.sweep(t, 20).await.unwrap(), 10 + 5);
    assert_eq!(store.sweep(t, 20).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn background_sweeper_removes_what_really_expired() {
    let dir = tempfile::tempdir().unwrap();
    let config = EmbeddedConfig {
        path: dir.path().to_path_buf(),
        sweep_interval_secs: 1,
        ..EmbeddedConfig::default()
    };
    let store = EmbeddedMessageStore::open(&config).unwrap();
    // Posted "two seconds ago" with a one-second ttl: expired by the clock.
    store
        .message_post(q("a"), "c".into(), messages(4, 1), now() - 2000)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        store.sweep(now(), 1000).await.unwrap(),
        0,
        "the background pass got there first"
    );
}
