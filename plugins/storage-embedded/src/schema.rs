//! The tables of the database file and what their keys mean.
//!
//! Queues get an internal numeric id (`qid`) when created; everything that
//! belongs to a queue's messages is keyed by it, so that a queue delete or a
//! purge only has to retire the qid (see [`DOOMED`]) and the sweeper removes
//! the old rows in bounded batches, instead of one unbounded transaction
//! stalling every writer.
//!
//! Every key is ordered so that the scans we need are range reads:
//! messages by `(qid, seq)` (listing, claiming oldest-first), expiry indexes
//! by expiry first (the sweeper takes the oldest), queues by
//! `(project, name)` (listing with a marker).

use redb::TableDefinition;

/// `(project, name)` → queue record ([`crate::codec::QueueRecord`]).
pub(crate) const QUEUES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("queues");

/// Format 2 and before: `qid` → the last sequence number given to a message
/// of the queue. Read once by the upgrade to format 3, which moves it into
/// [`QUEUE_STATE`] and deletes the table.
pub(crate) const QUEUE_SEQ: TableDefinition<u64, u64> = TableDefinition::new("queue_seq");

/// `qid` → `(last seq, message rows, rows with a claim stamp)` of a live
/// queue ([`crate::queue_state`]): the sequence counter and what
/// `queue_stats` needs without scanning the queue.
pub(crate) const QUEUE_STATE: TableDefinition<u64, crate::queue_state::Row> =
    TableDefinition::new("queue_state");

/// `(project, name)` → the last sequence number of a deleted queue. A queue
/// created again under the same name continues from it, so that a consumer
/// resuming from a sequence number never misses or repeats messages.
pub(crate) const SEQ_FLOOR: TableDefinition<(&str, &str), u64> = TableDefinition::new("seq_floor");

/// `(qid, seq)` → message record ([`crate::codec::MessageRecord`]).
pub(crate) const MESSAGES: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("messages");

/// `(expires_ms, qid, first seq)` → `()`: which messages the sweeper removes
/// next, one entry per run of a queue's messages expiring in the same
/// second ([`crate::expiry`]; before format 5, one per message).
pub(crate) const MESSAGE_EXPIRY: TableDefinition<(u64, u64, u64), ()> =
    TableDefinition::new("message_expiry");

/// `(qid, claim id)` → claim record ([`crate::codec::ClaimRecord`]).
pub(crate) const CLAIMS: TableDefinition<(u64, u128), &[u8]> = TableDefinition::new("claims");

/// `(expires_ms, qid, claim id)` → `()`: which claims the sweeper removes next.
pub(crate) const CLAIM_EXPIRY: TableDefinition<(u64, u64, u128), ()> =
    TableDefinition::new("claim_expiry");

/// `(project, queue name, subscription id)` → subscription record
/// ([`crate::codec::SubscriptionRecord`], with its delivery cursor). The key
/// order is the order of listings and of the scan over all subscriptions.
pub(crate) const SUBSCRIPTIONS: TableDefinition<(&str, &str, &str), &[u8]> =
    TableDefinition::new("subscriptions");

/// `(project, queue name, subscriber, subscription id)` → `()`: which
/// subscriptions of a queue have this subscriber, so that a create or an
/// update finds the live one with the same subscriber without reading every
/// subscription of the queue. Usually one entry per subscriber; two while
/// an expired subscription waits for the sweeper beside a new one.
pub(crate) const SUBSCRIBERS: TableDefinition<(&str, &str, &str, &str), ()> =
    TableDefinition::new("subscribers");

/// `(expires_ms, project, queue name, subscription id)` → `()`.
pub(crate) const SUBSCRIPTION_EXPIRY: TableDefinition<(u64, &str, &str, &str), ()> =
    TableDefinition::new("subscription_expiry");

/// `(project, queue name, seq)` → message record ([`crate::codec::MessageRecord`]
/// as posted): the notification log, a copy of each message posted while
/// the queue had a live subscription. Keyed by name, not qid, so that it
/// outlives a purge. Written only by posts to a subscribed queue; entries go
/// once every live subscription's cursor has passed them, when the last
/// subscription or the queue is deleted, or when they expire (sweeper).
pub(crate) const NOTIFICATION_LOG: TableDefinition<(&str, &str, u64), &[u8]> =
    TableDefinition::new("notification_log");

/// `(expires_ms, project, queue name, seq)` → `()`: which notification log
/// entries the sweeper removes next.
pub(crate) const NOTIFICATION_LOG_EXPIRY: TableDefinition<(u64, &str, &str, u64), ()> =
    TableDefinition::new("notification_log_expiry");

/// lease key → lease record ([`crate::codec::LeaseRecord`]: holder, expiry).
pub(crate) const LEASES: TableDefinition<&str, &[u8]> = TableDefinition::new("leases");

/// `qid` → `()`: retired queue ids whose messages and claims the sweeper
/// still has to remove.
pub(crate) const DOOMED: TableDefinition<u64, ()> = TableDefinition::new("doomed_queues");

/// Counters and markers: [`META_NEXT_QID`], [`META_FORMAT`],
/// [`META_POST_LOG_APPLIED`].
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// The next queue id to hand out.
pub(crate) const META_NEXT_QID: &str = "next_qid";

/// The LSN of the last record of the post log ([`crate::post_log`]) this
/// state holds; the writes of the log's later records are applied again at
/// open.
pub(crate) const META_POST_LOG_APPLIED: &str = "post_log_applied";

/// The on-disk format version, checked at open.
pub(crate) const META_FORMAT: &str = "format";

/// The format this build writes and understands.
///
/// * 1: the first format.
/// * 2: subscription records carry their delivery cursor (record version 2).
///   A format 1 file is upgraded at open: each subscription's cursor is set
///   to its queue's last sequence number, as if it had been created then.
///   A build that reads only format 1 refuses a format 2 file with a clear
///   error instead of failing on the new records.
///
/// * 3: the per-queue sequence counter moved from `queue_seq` into
///   [`QUEUE_STATE`] with the counters of `queue_stats`, and a claim stamp
///   on a message always belongs to a claim record that still exists. A
///   format 1 or 2 file is upgraded at open: the counters are counted once
///   and stamps of claims already swept are cleared. A build that reads
///   format 2 would post without keeping the counters, so it refuses a
///   format 3 file instead.
///
/// * 4: [`SUBSCRIBERS`] indexes every subscription by its subscriber. A
///   format 1, 2 or 3 file is upgraded at open: the index is built from the
///   subscriptions. A build that reads format 3 would create and delete
///   subscriptions without keeping the index, so it refuses a format 4
///   file instead.
///
/// * 5: [`MESSAGE_EXPIRY`] holds an entry per run of a queue's messages
///   expiring in the same second, not per message: a post writes one only
///   when it starts a run, and a delete none. A format 4 file's entries
///   (one per message) are runs of one message, so the upgrade at open
///   only records the new format. A build that reads format 4 would sweep
///   one message per entry and keep the rest of each run for ever, so it
///   refuses a format 5 file instead.
///
/// * 6: a lone post may be committed without durability, made durable by
///   the post log (`posts.log`, [`crate::post_log`]) and applied again from
///   it at open. A format 5 file has no such posts, so the upgrade at open
///   only records the new format. A build that reads format 5 would open
///   the file without applying the log and lose the posts only the log
///   holds, so it refuses a format 6 file instead.
///
/// * 7: a batch of posts only may be committed without durability too,
///   made durable by one post-log record of all its posts. A format 6 file
///   has no such records, so the upgrade at open only records the new
///   format. A build that reads format 6 could not decode such a record
///   left by a crash, so it refuses a format 7 file instead.
///
/// * 8: a batch of posts, claims (without a dead-letter policy) and deletes
///   of a message may be committed without durability, made durable by one
///   post-log record of all of them. A format 7 file has no such records,
///   so the upgrade at open only records the new format. A build that
///   reads format 7 could not decode such a record left by a crash, so it
///   refuses a format 8 file instead.
///
/// Tables added later without changing any existing record (the
/// notification log and leases) do not change the format: an older build
/// of the same format ignores them. Bump the format only when a record or
/// key an older build reads changes meaning.
pub(crate) const FORMAT_VERSION: u64 = 8;

/// The oldest format this build upgrades at open.
pub(crate) const FORMAT_UPGRADABLE: u64 = 1;

/// pool name → pool record.
pub(crate) const POOLS: TableDefinition<&str, &[u8]> = TableDefinition::new("pools");

/// `(project, flavor name)` → flavor record.
pub(crate) const FLAVORS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("flavors");
