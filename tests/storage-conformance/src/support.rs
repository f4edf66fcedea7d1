//! Helpers shared by the conformance tests: building requests, reading
//! results, checking error codes, and the clock.

use std::{
    future::Future,
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use plugin_api::{
    management::ManagementStoreBox,
    storage::{
        ClaimRequest, DeadLetterPolicy, MessageListQuery, MessageStore, MessageStoreBox,
        NewMessage, PostedMessage, QueueRef, StoredClaim, StoredMessage,
    },
    types::{
        ROption::{self, RNone, RSome},
        RString, RVec,
    },
    ErrorCode, PluginResult,
};

/// The message store under test, boxed for the ABI boundary and shared.
pub type Store = Arc<MessageStoreBox>;

/// The management store under test, boxed for the ABI boundary and shared.
pub type Management = Arc<ManagementStoreBox>;

/// The project every test uses unless it tests project scoping.
pub const PROJECT: &str = "conformance-project";

/// Runs one test on a fresh multi-thread runtime (several workers, so that
/// the concurrency tests really interleave).
pub fn run<F: Future<Output = ()>>(test: F) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime for the test")
        .block_on(test);
}

/// The wall clock in ms. Tests start from the real time (a store may expire
/// things by real time too) and move time forward by adding to it.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_millis() as u64
}

/// Seconds to ms.
pub const fn secs(s: u64) -> u64 {
    s * 1000
}

/// Queue `name` of [`PROJECT`].
pub fn q(name: &str) -> QueueRef {
    QueueRef::new(PROJECT, name)
}

/// A message with this ttl, delay and body.
pub fn msg(ttl: u32, delay: u32, body: &str) -> NewMessage {
    NewMessage {
        ttl,
        delay,
        body: body.as_bytes().to_vec().into(),
    }
}

/// Posts bodies (ttl 300 s, no delay) as `client`, one request.
pub async fn post(
    store: &Store,
    queue: &QueueRef,
    client: &str,
    bodies: &[&str],
    now_ms: u64,
) -> Vec<PostedMessage> {
    let messages: RVec<NewMessage> = bodies.iter().map(|b| msg(300, 0, b)).collect();
    post_messages(store, queue, client, messages, now_ms).await
}

/// Posts the given messages as `client`.
pub async fn post_messages(
    store: &Store,
    queue: &QueueRef,
    client: &str,
    messages: RVec<NewMessage>,
    now_ms: u64,
) -> Vec<PostedMessage> {
    store
        .message_post(queue.clone(), client.into(), messages, now_ms)
        .await
        .expect("message_post succeeds")
        .into_vec()
}

/// A listing query with everything included.
pub fn everything(limit: u32) -> MessageListQuery {
    MessageListQuery {
        after_seq: RNone,
        limit,
        exclude_client: RNone,
        include_claimed: true,
        include_delayed: true,
    }
}

/// A listing query with Zaqar's defaults: no claimed, no delayed.
pub fn defaults(limit: u32) -> MessageListQuery {
    MessageListQuery {
        after_seq: RNone,
        limit,
        exclude_client: RNone,
        include_claimed: false,
        include_delayed: false,
    }
}

/// Lists with `query`.
pub async fn list(
    store: &Store,
    queue: &QueueRef,
    query: MessageListQuery,
    now_ms: u64,
) -> Vec<StoredMessage> {
    store
        .message_list(queue.clone(), query, now_ms)
        .await
        .expect("message_list succeeds")
        .into_vec()
}

/// Bodies of messages, as strings.
pub fn bodies(messages: &[StoredMessage]) -> Vec<String> {
    messages
        .iter()
        .map(|m| String::from_utf8(m.body.to_vec()).expect("bodies are UTF-8"))
        .collect()
}

/// Ids of messages.
pub fn ids(messages: &[StoredMessage]) -> Vec<String> {
    messages.iter().map(|m| m.id.to_string()).collect()
}

/// Ids of posted messages.
pub fn posted_ids(posted: &[PostedMessage]) -> Vec<String> {
    posted.iter().map(|m| m.id.to_string()).collect()
}

/// A claim request without dead-lettering.
pub fn claim_request(ttl: u32, grace: u32, limit: u32) -> ClaimRequest {
    ClaimRequest {
        ttl,
        grace,
        limit,
        dead_letter: RNone,
    }
}

/// A claim request with a dead-letter policy.
pub fn claim_request_with_dlq(
    ttl: u32,
    limit: u32,
    max_claim_count: u32,
    dlq: &str,
    message_ttl: Option<u32>,
) -> ClaimRequest {
    ClaimRequest {
        ttl,
        grace: 0,
        limit,
        dead_letter: RSome(DeadLetterPolicy {
            max_claim_count,
            queue: dlq.into(),
            message_ttl: message_ttl.into(),
        }),
    }
}

/// Creates a claim.
pub async fn claim(
    store: &Store,
    queue: &QueueRef,
    request: ClaimRequest,
    now_ms: u64,
) -> StoredClaim {
    store
        .claim_create(queue.clone(), request, now_ms)
        .await
        .expect("claim_create succeeds")
}

/// Gets messages by id.
pub async fn get_many(
    store: &Store,
    queue: &QueueRef,
    ids: &[&str],
    now_ms: u64,
) -> Vec<StoredMessage> {
    let ids: RVec<RString> = ids.iter().map(|i| RString::from(*i)).collect();
    store
        .message_get_many(queue.clone(), ids, now_ms)
        .await
        .expect("message_get_many succeeds")
        .into_vec()
}

/// One message by id, if live.
pub async fn get_one(
    store: &Store,
    queue: &QueueRef,
    id: &str,
    now_ms: u64,
) -> Option<StoredMessage> {
    get_many(store, queue, &[id], now_ms)
        .await
        .into_iter()
        .next()
}

/// Asserts that `result` failed with `code`.
#[track_caller]
pub fn assert_code<T: std::fmt::Debug>(result: PluginResult<T>, code: ErrorCode) {
    match result {
        Err(e) => assert_eq!(e.code, code, "expected error {code:?}, got {e:?}"),
        Ok(v) => panic!("expected error {code:?}, got Ok({v:?})"),
    }
}

/// The claim id recorded on a message, if any.
pub fn claim_of(m: &StoredMessage) -> Option<String> {
    match &m.claim {
        ROption::RSome(c) => Some(c.id.to_string()),
        ROption::RNone => None,
    }
}

/// JSON bytes with whitespace removed, for comparing documents that a store
/// may have re-serialized.
pub fn compact(json: &[u8]) -> Vec<u8> {
    json.iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect()
}
