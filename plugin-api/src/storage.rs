//! The message store contract (`zaqar.storage.message`): queues, messages,
//! claims and subscriptions.
//!
//! The host validates every input before it reaches a store (names, limits,
//! TTL ranges, JSON bodies): a store may trust its arguments. Bodies and
//! metadata are JSON documents as bytes; a store keeps them verbatim.
//!
//! Time is passed in as `now_ms` (milliseconds since the Unix epoch) so that
//! every node of a cluster, and the conformance suite, agrees on what has
//! expired. A store hides anything whose expiry is `<= now_ms` from reads
//! and may delete it whenever it likes.
//!
//! Every message gets a per-queue **sequence number** (`seq`), strictly
//! increasing in the order the writes commit and assigned atomically with
//! them; message listings are ordered by it and markers are sequence numbers.

use abi_stable::{
    std_types::{ROption, RString, RVec},
    StableAbi,
};

use crate::macros::plugin_trait;

/// A queue, addressed by its project and name.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq, Hash)]
pub struct QueueRef {
    /// The tenant (`X-Project-ID`).
    pub project: RString,
    /// The queue name (already validated by the host).
    pub name: RString,
}

impl QueueRef {
    /// A reference to `name` in `project`.
    pub fn new(project: &str, name: &str) -> Self {
        Self {
            project: project.into(),
            name: name.into(),
        }
    }
}

/// One queue in a listing.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct QueueEntry {
    /// The queue name.
    pub name: RString,
    /// Its metadata (a JSON object) when the listing asked for it, else empty.
    pub metadata: RVec<u8>,
}

/// Which queues of a project to list.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct QueueListQuery {
    /// List only names strictly greater (byte order) than this.
    pub marker: ROption<RString>,
    /// At most this many queues, in ascending name order.
    pub limit: u32,
    /// Whether to fill [`QueueEntry::metadata`].
    pub with_metadata: bool,
}

/// A message to enqueue.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct NewMessage {
    /// Seconds the message lives after it is enqueued.
    pub ttl: u32,
    /// Seconds before the message becomes visible to listings, claims and pops.
    pub delay: u32,
    /// The message body, a JSON document.
    pub body: RVec<u8>,
}

/// The identity given to an enqueued message.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct PostedMessage {
    /// The message id, unique within its queue.
    pub id: RString,
    /// Its per-queue sequence number.
    pub seq: u64,
}

/// The claim a message is (or was last) stamped with.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct ClaimStamp {
    /// The claim id.
    pub id: RString,
    /// When the claim expires (ms since the epoch); in the past once expired.
    pub expires_ms: u64,
}

/// A message as stored.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    /// The message id.
    pub id: RString,
    /// The per-queue sequence number.
    pub seq: u64,
    /// When it was enqueued (ms since the epoch).
    pub created_ms: u64,
    /// When it expires (ms since the epoch). Grace extension and dead-letter
    /// moves change it.
    pub expires_ms: u64,
    /// The ttl to report, in seconds (`expires - created`, rounded).
    pub ttl: u32,
    /// Before this instant (ms since the epoch) the message is delayed.
    pub visible_ms: u64,
    /// The `Client-ID` of the poster.
    pub client_id: RString,
    /// The claim recorded on the message, live or expired, if any.
    pub claim: ROption<ClaimStamp>,
    /// How many claims have taken this message.
    pub claim_count: u32,
    /// The body, a JSON document.
    pub body: RVec<u8>,
}

impl StoredMessage {
    /// Whether a live claim holds the message at `now_ms`.
    pub fn is_claimed(&self, now_ms: u64) -> bool {
        matches!(&self.claim, ROption::RSome(c) if c.expires_ms > now_ms)
    }
}

/// Which messages of a queue to list.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct MessageListQuery {
    /// Only messages with a sequence number greater than this.
    pub after_seq: ROption<u64>,
    /// At most this many messages, in sequence order.
    pub limit: u32,
    /// Leave out messages posted with this `Client-ID` (Zaqar's `echo=false`).
    pub exclude_client: ROption<RString>,
    /// Include messages under a live claim.
    pub include_claimed: bool,
    /// Include messages whose delay has not passed.
    pub include_delayed: bool,
}

/// A message summary for statistics.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct MessageSummary {
    /// The message id.
    pub id: RString,
    /// When it was enqueued (ms since the epoch).
    pub created_ms: u64,
}

/// Counts over the live messages of a queue.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Messages under a live claim.
    pub claimed: u64,
    /// Messages not under a live claim (delayed ones included).
    pub free: u64,
    /// All live messages.
    pub total: u64,
    /// The live message with the lowest sequence number.
    pub oldest: ROption<MessageSummary>,
    /// The live message with the highest sequence number.
    pub newest: ROption<MessageSummary>,
}

/// Where messages go after too many claims.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct DeadLetterPolicy {
    /// A message already claimed this many times is moved instead of claimed.
    pub max_claim_count: u32,
    /// The queue (same project) that receives moved messages.
    pub queue: RString,
    /// The moved message lives this many seconds from the move, if set;
    /// otherwise it keeps its expiry.
    pub message_ttl: ROption<u32>,
}

/// A request to claim messages.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct ClaimRequest {
    /// Seconds the claim lives.
    pub ttl: u32,
    /// Seconds a claimed message is kept beyond the claim if it would expire
    /// first.
    pub grace: u32,
    /// Claim at most this many messages, oldest first.
    pub limit: u32,
    /// The queue's dead-letter settings, if it has them.
    pub dead_letter: ROption<DeadLetterPolicy>,
}

/// A claim and the messages it holds.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct StoredClaim {
    /// The claim id.
    pub id: RString,
    /// The claim's ttl in seconds (as last set).
    pub ttl: u32,
    /// When the claim was created or last renewed (ms since the epoch).
    pub updated_ms: u64,
    /// When it expires (ms since the epoch).
    pub expires_ms: u64,
    /// The live messages it holds. Empty when a new claim found nothing.
    pub messages: RVec<StoredMessage>,
}

/// A subscription as stored.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionRecord {
    /// The subscription id.
    pub id: RString,
    /// The queue it listens to.
    pub queue: RString,
    /// Where notifications go (a URI).
    pub subscriber: RString,
    /// Its ttl in seconds, as last set.
    pub ttl: u32,
    /// When it was created (ms since the epoch).
    pub created_ms: u64,
    /// When it expires (ms since the epoch).
    pub expires_ms: u64,
    /// Its options, a JSON object.
    pub options: RVec<u8>,
    /// Whether the subscriber confirmed it.
    pub confirmed: bool,
    /// The sequence number of the last message of the queue handled for
    /// this subscription (delivered, or given up on): messages after it are
    /// pending. A new subscription starts at the queue's last sequence
    /// number, so it receives only what is posted after it.
    pub delivered_seq: u64,
}

/// A subscription with the project it belongs to, from a scan of all of them.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionEntry {
    /// The project of the subscription's queue.
    pub project: RString,
    /// The subscription.
    pub record: SubscriptionRecord,
}

/// A page of a scan over every live subscription of the store.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionScanPage {
    /// The subscriptions, in the store's stable order.
    pub entries: RVec<SubscriptionEntry>,
    /// Where the next page starts; `RNone` after the last page.
    pub next_marker: ROption<RString>,
}

/// A subscription to create.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct NewSubscription {
    /// Where notifications go (a URI).
    pub subscriber: RString,
    /// Seconds it lives.
    pub ttl: u32,
    /// Its options, a JSON object.
    pub options: RVec<u8>,
}

/// What [`MessageStore::subscription_create`] did.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionCreated {
    /// The new subscription's id, or the existing one's for the same subscriber.
    pub id: RString,
    /// False when a subscription for the same subscriber already existed
    /// (and nothing was written).
    pub created: bool,
    /// Whether that subscription is confirmed.
    pub confirmed: bool,
}

/// Changes to a subscription; `RNone` leaves a field as it is.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionPatch {
    /// A new subscriber URI.
    pub subscriber: ROption<RString>,
    /// A new ttl; the expiry becomes now + ttl.
    pub ttl: ROption<u32>,
    /// New options, replacing the old ones wholesale.
    pub options: ROption<RVec<u8>>,
}

/// Which subscriptions of a queue to list.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionListQuery {
    /// Only ids after this one, in the store's stable order.
    pub marker: ROption<RString>,
    /// At most this many.
    pub limit: u32,
}

plugin_trait! {
    /// A message store: implement this for a `zaqar.storage.message` plugin.
    ///
    /// Errors use the codes of [`crate::ErrorCode`]: `QUEUE_NOT_FOUND`,
    /// `MESSAGE_IS_CLAIMED`, `MESSAGE_NOT_CLAIMED`, `CLAIM_NOT_FOUND`,
    /// `SUBSCRIPTION_NOT_FOUND` and `CONFLICT` where a method says so, and
    /// `UNAVAILABLE` when the backend cannot be reached.
    ///
    /// The workspace's conformance suite (`zaqar-storage-conformance`) checks
    /// every method's documented behaviour; run it against your store.
    native MessageStore;
    abi MessageStoreAbi, object MessageStoreAbi_TO, boxed MessageStoreBox, adapter MessageStoreAdapter, wrap wrap_message_store;
    methods {
        /// Creates the queue with this metadata (a JSON object). Returns false,
        /// changing nothing, if it already exists.
        fn queue_create(&self, queue: QueueRef, metadata: RVec<u8>, now_ms: u64) -> bool;
        /// The queue's metadata, or `RNone` if the queue does not exist.
        fn queue_get_metadata(&self, queue: QueueRef) -> ROption<RVec<u8>>;
        /// Replaces the metadata. `QUEUE_NOT_FOUND` if the queue does not exist.
        fn queue_set_metadata(&self, queue: QueueRef, metadata: RVec<u8>) -> ();
        /// Deletes the queue with its messages, claims and subscriptions.
        /// Deleting a missing queue succeeds.
        fn queue_delete(&self, queue: QueueRef) -> ();
        /// Lists a project's queues by name.
        fn queue_list(&self, project: RString, query: QueueListQuery) -> RVec<QueueEntry>;
        /// How many queues the project has.
        fn queue_count(&self, project: RString) -> u64;
        /// Counts the queue's live messages; zeros for a missing queue.
        fn queue_stats(&self, queue: QueueRef, now_ms: u64) -> QueueStats;
        /// Enqueues the messages in order, creating the queue (with empty
        /// metadata) if needed. All or nothing; sequence numbers are
        /// consecutive within the batch.
        fn message_post(&self, queue: QueueRef, client_id: RString, messages: RVec<NewMessage>, now_ms: u64) -> RVec<PostedMessage>;
        /// Lists live messages in sequence order; empty for a missing queue.
        fn message_list(&self, queue: QueueRef, query: MessageListQuery, now_ms: u64) -> RVec<StoredMessage>;
        /// The live messages among `ids` (claimed and delayed ones too), in
        /// sequence order; unknown ids are skipped.
        fn message_get_many(&self, queue: QueueRef, ids: RVec<RString>, now_ms: u64) -> RVec<StoredMessage>;
        /// Deletes one message. Succeeds if it does not exist. If a live claim
        /// holds it: without `claim_id`, or with another claim's id,
        /// `MESSAGE_IS_CLAIMED`. With a `claim_id` and no live claim on the
        /// message: `CLAIM_NOT_FOUND` when no live claim has that id, else
        /// `MESSAGE_NOT_CLAIMED`.
        fn message_delete(&self, queue: QueueRef, id: RString, claim_id: ROption<RString>, now_ms: u64) -> ();
        /// Deletes the messages among `ids`, claimed or not; unknown ids are
        /// ignored.
        fn message_delete_many(&self, queue: QueueRef, ids: RVec<RString>, now_ms: u64) -> ();
        /// Atomically removes and returns up to `limit` visible messages not
        /// under a live claim, oldest first.
        fn message_pop(&self, queue: QueueRef, limit: u32, now_ms: u64) -> RVec<StoredMessage>;
        /// Deletes every message (and claim) of the queue; keeps the queue.
        fn message_purge(&self, queue: QueueRef) -> ();
        /// Claims up to `limit` visible messages not under a live claim,
        /// oldest first, as one atomic step: two concurrent claims never take
        /// the same message. Each taken message gets the claim stamp, its
        /// claim count incremented, and, if it would expire before the claim
        /// plus `grace`, its expiry moved to claim expiry + grace. With a
        /// dead-letter policy, a message already claimed `max_claim_count`
        /// times is moved to the dead-letter queue (a new sequence number
        /// there, no claim, expiry per the policy) instead of being claimed.
        /// Always returns a claim id, even when nothing was taken.
        fn claim_create(&self, queue: QueueRef, request: ClaimRequest, now_ms: u64) -> StoredClaim;
        /// The live claim with its live messages, or `RNone`.
        fn claim_get(&self, queue: QueueRef, claim_id: RString, now_ms: u64) -> ROption<StoredClaim>;
        /// Renews a live claim: expiry = now + ttl, and the grace rule of
        /// `claim_create` applied again. `CLAIM_NOT_FOUND` if not live.
        fn claim_update(&self, queue: QueueRef, claim_id: RString, ttl: u32, grace: u32, now_ms: u64) -> ();
        /// Releases the claim's messages at once. Succeeds if it does not exist.
        fn claim_delete(&self, queue: QueueRef, claim_id: RString, now_ms: u64) -> ();
        /// Creates an unconfirmed subscription, or returns the live one with
        /// the same subscriber (`created: false`, nothing written).
        fn subscription_create(&self, queue: QueueRef, subscription: NewSubscription, now_ms: u64) -> SubscriptionCreated;
        /// Lists the queue's live subscriptions in a stable order.
        fn subscription_list(&self, queue: QueueRef, query: SubscriptionListQuery, now_ms: u64) -> RVec<SubscriptionRecord>;
        /// One live subscription, or `RNone`.
        fn subscription_get(&self, queue: QueueRef, id: RString, now_ms: u64) -> ROption<SubscriptionRecord>;
        /// Changes a live subscription. `SUBSCRIPTION_NOT_FOUND` if it is
        /// not live; `CONFLICT` if another live subscription of the queue
        /// already has the new subscriber.
        fn subscription_update(&self, queue: QueueRef, id: RString, patch: SubscriptionPatch, now_ms: u64) -> ();
        /// Sets the confirmed flag. `SUBSCRIPTION_NOT_FOUND` if not live.
        fn subscription_confirm(&self, queue: QueueRef, id: RString, confirmed: bool, now_ms: u64) -> ();
        /// Deletes a subscription. Succeeds if it does not exist.
        fn subscription_delete(&self, queue: QueueRef, id: RString) -> ();
        /// Scans every live subscription of every project and queue, `limit`
        /// at a time, in a stable order; pass the previous page's
        /// `next_marker` (opaque) to continue. Used by the notification
        /// dispatcher at start-up.
        fn subscription_scan(&self, marker: ROption<RString>, limit: u32, now_ms: u64) -> SubscriptionScanPage;
        /// Records that messages up to `delivered_seq` were handled for the
        /// subscription: its `delivered_seq` becomes the larger of the stored
        /// one and this (it never goes back). Durable like every write.
        /// `SUBSCRIPTION_NOT_FOUND` if it is not live.
        fn subscription_advance(&self, queue: QueueRef, id: RString, delivered_seq: u64, now_ms: u64) -> ();
        /// The sequence number of the last message ever posted to a queue of
        /// this name (0 if nothing ever was; deleting or purging the queue
        /// does not lower it); the next post gets a larger one.
        fn queue_last_seq(&self, queue: QueueRef) -> u64;
    }
    last {
        /// Whether the backend answers; used by `/v2/ping` and `/v2/health`.
        fn is_alive(&self) -> bool;
    }
    appended {
        /// Since 1.1. Starts announcing every committed change of this
        /// store to `sink`, from every host attached to the same backend
        /// (in-process for a store only one process opens; a notification
        /// channel of the database for shared ones), until the store is
        /// dropped. Called once, after construction. A store that loses its
        /// feed and gets it back sends [`ChangeKind::RESYNC`] so the host
        /// re-reads what it tracks instead of trusting that it saw every
        /// change. Without it (`UNSUPPORTED`) the host announces only its
        /// own writes, which is right for a store no other host shares.
        fn changes_watch(&self, sink: ChangeSinkBox) -> ();
        /// Since 1.1. The messages posted to the queue after `after_seq`, in
        /// sequence order, at most `limit`, including those deleted,
        /// claimed, popped or purged since: a store keeps a copy of each
        /// message posted while the queue has a subscription until every
        /// subscription's `delivered_seq` has passed it or the message has
        /// expired, whichever comes first. Notification delivery reads it,
        /// so a message consumed before its first notification attempt is
        /// still notified. A subscription whose subscriber begins with
        /// `websocket:` is a host's own socket, pushed to from the queue
        /// itself and never delivered from this log (its `delivered_seq` is
        /// not advanced either): a store may leave it out, neither copying
        /// posts for it nor holding copies back for it. Without it
        /// (`UNSUPPORTED`) the host reads
        /// [`MessageStore::message_list`] and misses consumed messages.
        fn notification_log(&self, queue: QueueRef, after_seq: u64, limit: u32, now_ms: u64) -> RVec<StoredMessage>;
        /// Since 1.1. Takes or renews the lease `key` for `holder` until
        /// `now_ms + ttl_ms`: true if `holder` holds it now (it was free,
        /// expired, or already `holder`'s), false if another holder's lease
        /// is live. Atomic across every host sharing the store. Hosts use
        /// leases so each subscription is delivered by one host at a time.
        /// Without it (`UNSUPPORTED`) the host assumes it is alone.
        fn lease_acquire(&self, key: RString, holder: RString, ttl_ms: u64, now_ms: u64) -> bool;
        /// Since 1.1. Releases the lease if `holder` holds it; succeeds
        /// otherwise too.
        fn lease_release(&self, key: RString, holder: RString) -> ();
        /// Since 1.1. How many messages this store has removed because
        /// their ttl ran out, since it was opened: a count that only
        /// grows, for the host's `messages expired` metric. Messages
        /// hidden from reads but not yet removed are not counted, nor are
        /// those removed with a deleted or purged queue. Without it
        /// (`UNSUPPORTED`, also for a store whose backend expires messages
        /// on its own and cannot tell) the host leaves the metric out.
        fn messages_expired(&self) -> u64;
    }
}

/// What a [`QueueChange`] reports. Since 1.1.
///
/// A transparent `u8` so later versions can add kinds; a host that meets a
/// kind it does not know treats it like [`ChangeKind::RESYNC`] for that queue.
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChangeKind(pub u8);

impl ChangeKind {
    /// Messages were posted: [`QueueChange::last_seq`] is the queue's last
    /// sequence number after the commit.
    pub const MESSAGES: Self = Self(0);
    /// The queue was deleted, with its messages and subscriptions.
    pub const QUEUE_DELETED: Self = Self(1);
    /// The queue's messages were purged.
    pub const QUEUE_PURGED: Self = Self(2);
    /// A subscription of the queue was created, changed or deleted
    /// ([`QueueChange::subscription`] is its id).
    pub const SUBSCRIPTIONS: Self = Self(3);
    /// The store may have missed changes (its feed was lost and is back):
    /// re-read every queue tracked, from the last sequence number seen.
    /// `queue` is empty.
    pub const RESYNC: Self = Self(255);
}

/// One committed change, announced by [`MessageStore::changes_watch`].
/// Since 1.1.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct QueueChange {
    /// What changed.
    pub kind: ChangeKind,
    /// The queue it changed (empty names for [`ChangeKind::RESYNC`]).
    pub queue: QueueRef,
    /// For [`ChangeKind::MESSAGES`]: the queue's last sequence number.
    pub last_seq: u64,
    /// For [`ChangeKind::SUBSCRIPTIONS`]: the subscription's id.
    pub subscription: RString,
}

impl QueueChange {
    /// A [`ChangeKind::MESSAGES`] change.
    pub fn messages(queue: QueueRef, last_seq: u64) -> Self {
        Self::new(ChangeKind::MESSAGES, queue, last_seq, "")
    }

    /// A change of `kind` to `queue`.
    pub fn new(kind: ChangeKind, queue: QueueRef, last_seq: u64, subscription: &str) -> Self {
        Self {
            kind,
            queue,
            last_seq,
            subscription: subscription.into(),
        }
    }

    /// A [`ChangeKind::RESYNC`] change.
    pub fn resync() -> Self {
        Self::new(ChangeKind::RESYNC, QueueRef::new("", ""), 0, "")
    }
}

/// Where a store announces changes: implemented by the host, handed over
/// with [`MessageStore::changes_watch`]. Since 1.1.
pub trait ChangeSink: Send + Sync + 'static {
    /// Takes one change. Never blocks: a store may call it from its commit
    /// path.
    fn changed(&self, change: QueueChange);
}

/// The ABI-stable vtable of [`ChangeSink`]; use [`wrap_change_sink`].
#[abi_stable::sabi_trait]
pub trait ChangeSinkAbi: Send + Sync {
    /// See [`ChangeSink::changed`].
    #[sabi(last_prefix_field)]
    fn abi_changed(&self, change: QueueChange);
}

/// A boxed, ABI-stable [`ChangeSink`].
pub type ChangeSinkBox = ChangeSinkAbi_TO<'static, abi_stable::std_types::RBox<()>>;

struct ChangeSinkAdapter<T>(T);

impl<T: ChangeSink> ChangeSinkAbi for ChangeSinkAdapter<T> {
    fn abi_changed(&self, change: QueueChange) {
        // A panic must not unwind into the store's side of the boundary.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.0.changed(change)));
    }
}

impl ChangeSink for ChangeSinkBox {
    fn changed(&self, change: QueueChange) {
        self.abi_changed(change)
    }
}

/// Boxes a [`ChangeSink`] for the boundary.
pub fn wrap_change_sink<T: ChangeSink>(sink: T) -> ChangeSinkBox {
    ChangeSinkAbi_TO::from_value(ChangeSinkAdapter(sink), abi_stable::sabi_trait::TD_Opaque)
}
