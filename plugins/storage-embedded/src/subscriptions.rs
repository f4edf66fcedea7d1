//! Subscriptions: create (one live subscription per subscriber and queue),
//! list, get, update, confirm, delete; and for the notification dispatcher,
//! the delivery cursor (`delivered_seq`) and the scan over all of them.
//!
//! Keyed `(project, queue, id)`; ids sort by creation time, which gives the
//! stable listing order the contract asks for. The scan walks the same keys
//! across every project and queue; its marker is the last key it returned.
//!
//! The cursor is part of the record: a new subscription starts at the
//! queue's last sequence number (read in the write transaction that creates
//! it, so no post can slip in between), updates and confirms keep it, and
//! [`advance`] only ever moves it forward.

use plugin_api::{
    storage::{
        ChangeKind, NewSubscription, QueueChange, QueueRef, SubscriptionCreated, SubscriptionEntry,
        SubscriptionListQuery, SubscriptionPatch, SubscriptionRecord, SubscriptionScanPage,
    },
    types::ROption,
    ErrorCode,
};
use std::ops::ControlFlow;

use redb::{ReadTransaction, ReadableTable};

use crate::{
    codec::SubscriptionRecord as Record,
    error::{caller, OpError, OpResult},
    group_commit::WriteTables,
    ids, notification_log, queues, schema,
};

/// Announces that subscription `id` of the queue was created, changed or
/// deleted.
fn announce(t: &mut WriteTables<'_>, q: &QueueRef, id: &str) {
    t.announce(|| QueueChange::new(ChangeKind::SUBSCRIPTIONS, q.clone(), 0, id));
}

type SubTable = (&'static str, &'static str, &'static str);

fn not_found() -> OpError {
    caller(
        ErrorCode::SUBSCRIPTION_NOT_FOUND,
        "subscription not found (or expired)",
    )
}

fn to_contract(queue: &str, id: &str, r: Record) -> SubscriptionRecord {
    SubscriptionRecord {
        id: id.into(),
        queue: queue.into(),
        subscriber: r.subscriber.into(),
        ttl: r.ttl,
        created_ms: r.created_ms,
        expires_ms: r.expires_ms,
        options: r.options.into(),
        confirmed: r.confirmed,
        delivered_seq: r.delivered_seq,
    }
}

/// Visits every subscription of the queue, live or not, in id order, as
/// `(id, record)`, until `visit` breaks.
pub(crate) fn each_of<T>(
    subs: &T,
    q: &QueueRef,
    mut visit: impl FnMut(&str, Record) -> ControlFlow<()>,
) -> OpResult<()>
where
    T: ReadableTable<SubTable, &'static [u8]>,
{
    let (p, n) = (q.project.as_str(), q.name.as_str());
    for entry in subs.range((p, n, "")..)? {
        let (k, v) = entry?;
        let (kp, kn, id) = k.value();
        if kp != p || kn != n {
            break;
        }
        if visit(id, Record::decode(v.value())?).is_break() {
            break;
        }
    }
    Ok(())
}

/// What the subscriber of a host's own socket begins with
/// (`websocket:<host>/<connection>`). The host pushes to sockets from the
/// queue itself and never reads the notification log for them, so they
/// neither have posts logged nor hold logged copies back.
const SOCKET_SUBSCRIBER: &str = "websocket:";
/// The least string after every string that begins with
/// [`SOCKET_SUBSCRIBER`] (`;` follows `:`).
const AFTER_SOCKET_SUBSCRIBERS: &str = "websocket;";

/// Visits the queue's subscriptions that the notification log serves
/// (every one but a host's sockets), live or not, as `(id, record)`, until
/// `visit` breaks. Found through [`schema::SUBSCRIBERS`], which sorts them
/// by subscriber, so that the thousands of socket subscriptions a queue
/// may have are skipped by two seeks instead of decoded one by one.
pub(crate) fn each_logged_of(
    t: &WriteTables<'_>,
    q: &QueueRef,
    mut visit: impl FnMut(&str, Record) -> ControlFlow<()>,
) -> OpResult<()> {
    let (p, n) = (q.project.as_str(), q.name.as_str());
    let before_sockets = t
        .subscribers
        .range((p, n, "", "")..(p, n, SOCKET_SUBSCRIBER, ""))?;
    let after_sockets = t
        .subscribers
        .range((p, n, AFTER_SOCKET_SUBSCRIBERS, "")..)?;
    for entry in before_sockets.chain(after_sockets) {
        let (k, _) = entry?;
        let (kp, kn, _, id) = k.value();
        if (kp, kn) != (p, n) {
            break;
        }
        let Some(v) = t.subscriptions.get((p, n, id))? else {
            continue;
        };
        if visit(id, Record::decode(v.value())?).is_break() {
            break;
        }
    }
    Ok(())
}

/// Every subscription of the queue, live or not: `(id, record)`.
fn all_of<T>(subs: &T, q: &QueueRef) -> OpResult<Vec<(String, Record)>>
where
    T: ReadableTable<SubTable, &'static [u8]>,
{
    let mut out = Vec::new();
    each_of(subs, q, |id, r| {
        out.push((id.to_owned(), r));
        ControlFlow::Continue(())
    })?;
    Ok(out)
}

/// The live subscription of the queue with this subscriber, other than
/// `except`: a lookup in [`schema::SUBSCRIBERS`], not a read of the
/// queue's every subscription.
fn live_with_subscriber(
    t: &WriteTables<'_>,
    q: &QueueRef,
    subscriber: &str,
    except: Option<&str>,
    now_ms: u64,
) -> OpResult<Option<(String, Record)>> {
    let (p, n) = (q.project.as_str(), q.name.as_str());
    for entry in t.subscribers.range((p, n, subscriber, "")..)? {
        let (k, _) = entry?;
        let (kp, kn, ks, id) = k.value();
        if (kp, kn, ks) != (p, n, subscriber) {
            break;
        }
        if Some(id) == except {
            continue;
        }
        if let Some(r) = live_one(&*t.subscriptions, q, id, now_ms)? {
            return Ok(Some((id.to_owned(), r)));
        }
    }
    Ok(None)
}

/// Adds subscription `id` to the subscriber index.
fn index_subscriber(
    t: &mut WriteTables<'_>,
    q: &QueueRef,
    subscriber: &str,
    id: &str,
) -> OpResult<()> {
    t.subscribers
        .insert((q.project.as_str(), q.name.as_str(), subscriber, id), ())?;
    Ok(())
}

/// Removes subscription `id` from the subscriber index.
pub(crate) fn unindex_subscriber(
    t: &mut WriteTables<'_>,
    q: &QueueRef,
    subscriber: &str,
    id: &str,
) -> OpResult<()> {
    t.subscribers
        .remove((q.project.as_str(), q.name.as_str(), subscriber, id))?;
    Ok(())
}

fn live_one<T>(subs: &T, q: &QueueRef, id: &str, now_ms: u64) -> OpResult<Option<Record>>
where
    T: ReadableTable<SubTable, &'static [u8]>,
{
    Ok(match subs.get((q.project.as_str(), q.name.as_str(), id))? {
        Some(v) => Some(Record::decode(v.value())?).filter(|r| r.expires_ms > now_ms),
        None => None,
    })
}

fn store(t: &mut WriteTables<'_>, q: &QueueRef, id: &str, r: &Record) -> OpResult<()> {
    let (p, n) = (q.project.as_str(), q.name.as_str());
    t.subscriptions.insert((p, n, id), r.encode().as_slice())?;
    t.subscription_expiry.insert((r.expires_ms, p, n, id), ())?;
    Ok(())
}

fn unindex(t: &mut WriteTables<'_>, q: &QueueRef, id: &str, expires_ms: u64) -> OpResult<()> {
    t.subscription_expiry
        .remove((expires_ms, q.project.as_str(), q.name.as_str(), id))?;
    Ok(())
}

/// Creates a subscription, or returns the live one with the same subscriber.
pub(crate) fn create(
    t: &mut WriteTables<'_>,
    q: &QueueRef,
    s: &NewSubscription,
    now_ms: u64,
) -> OpResult<SubscriptionCreated> {
    if let Some((id, r)) = live_with_subscriber(t, q, &s.subscriber, None, now_ms)? {
        return Ok(SubscriptionCreated {
            id: id.into(),
            created: false,
            confirmed: r.confirmed,
        });
    }
    let id = loop {
        let id = ids::new_subscription_id(now_ms);
        if t.subscriptions
            .get((q.project.as_str(), q.name.as_str(), id.as_str()))?
            .is_none()
        {
            break id;
        }
    };
    // Read in this write transaction: every post committed before this
    // creation is behind the cursor, every later one after it.
    let delivered_seq =
        queues::last_seq(&*t.queues, |qid| t.queue_state.get(qid), &*t.seq_floor, q)?;
    let record = Record {
        subscriber: s.subscriber.to_string(),
        ttl: s.ttl,
        created_ms: now_ms,
        expires_ms: now_ms + u64::from(s.ttl) * 1000,
        confirmed: false,
        options: s.options.to_vec(),
        delivered_seq,
    };
    store(t, q, &id, &record)?;
    index_subscriber(t, q, &record.subscriber, &id)?;
    announce(t, q, &id);
    Ok(SubscriptionCreated {
        id: id.into(),
        created: true,
        confirmed: false,
    })
}

/// A page of the queue's live subscriptions, in id order.
pub(crate) fn list(
    txn: &ReadTransaction,
    q: &QueueRef,
    query: &SubscriptionListQuery,
    now_ms: u64,
) -> OpResult<Vec<SubscriptionRecord>> {
    let subs = txn.open_table(schema::SUBSCRIPTIONS)?;
    let (p, n) = (q.project.as_str(), q.name.as_str());
    let marker = query.marker.as_ref().map(|m| m.as_str()).unwrap_or("");
    let mut out = Vec::new();
    if query.limit == 0 {
        return Ok(out);
    }
    for entry in subs.range((p, n, marker)..)? {
        let (k, v) = entry?;
        let (kp, kn, id) = k.value();
        if kp != p || kn != n {
            break;
        }
        if id == marker {
            continue;
        }
        let r = Record::decode(v.value())?;
        if r.expires_ms > now_ms {
            out.push(to_contract(n, id, r));
            if out.len() >= query.limit as usize {
                break;
            }
        }
    }
    Ok(out)
}

/// One live subscription.
pub(crate) fn get(
    txn: &ReadTransaction,
    q: &QueueRef,
    id: &str,
    now_ms: u64,
) -> OpResult<Option<SubscriptionRecord>> {
    let subs = txn.open_table(schema::SUBSCRIPTIONS)?;
    Ok(live_one(&subs, q, id, now_ms)?.map(|r| to_contract(&q.name, id, r)))
}

/// Applies a patch to a live subscription.
pub(crate) fn update(
    t: &mut WriteTables<'_>,
    q: &QueueRef,
    id: &str,
    patch: &SubscriptionPatch,
    now_ms: u64,
) -> OpResult<()> {
    let Some(mut r) = live_one(&*t.subscriptions, q, id, now_ms)? else {
        return Err(not_found());
    };
    if let Some(subscriber) = patch.subscriber.as_ref().into_option() {
        if live_with_subscriber(t, q, subscriber, Some(id), now_ms)?.is_some() {
            return Err(caller(
                ErrorCode::CONFLICT,
                format!(
                    "queue {} already has a subscription for {subscriber}",
                    q.name
                ),
            ));
        }
        unindex_subscriber(t, q, &r.subscriber, id)?;
        index_subscriber(t, q, subscriber, id)?;
        r.subscriber = subscriber.to_string();
    }
    unindex(t, q, id, r.expires_ms)?;
    if let Some(&ttl) = patch.ttl.as_ref().into_option() {
        r.ttl = ttl;
        r.expires_ms = now_ms + u64::from(ttl) * 1000;
    }
    if let Some(options) = patch.options.as_ref().into_option() {
        r.options = options.to_vec();
    }
    store(t, q, id, &r)?;
    announce(t, q, id);
    Ok(())
}

/// Sets the confirmed flag of a live subscription.
pub(crate) fn confirm(
    t: &mut WriteTables<'_>,
    q: &QueueRef,
    id: &str,
    confirmed: bool,
    now_ms: u64,
) -> OpResult<()> {
    let Some(mut r) = live_one(&*t.subscriptions, q, id, now_ms)? else {
        return Err(not_found());
    };
    r.confirmed = confirmed;
    store(t, q, id, &r)?;
    announce(t, q, id);
    Ok(())
}

/// Moves a live subscription's delivery cursor forward to `delivered_seq`
/// (never back: a smaller value changes nothing), dropping the notification
/// log entries every live subscription has now passed.
pub(crate) fn advance(
    t: &mut WriteTables<'_>,
    q: &QueueRef,
    id: &str,
    delivered_seq: u64,
    now_ms: u64,
) -> OpResult<()> {
    let Some(mut r) = live_one(&*t.subscriptions, q, id, now_ms)? else {
        return Err(not_found());
    };
    if delivered_seq > r.delivered_seq {
        r.delivered_seq = delivered_seq;
        // The expiry is unchanged, so its index entry stays as it is.
        t.subscriptions.insert(
            (q.project.as_str(), q.name.as_str(), id),
            r.encode().as_slice(),
        )?;
        notification_log::prune(t, q, now_ms)?;
    }
    Ok(())
}

/// The key a scan resumes after.
type ScanKey = (String, String, String);

/// The scan marker of a key: its three parts in hex, joined by dots (any
/// project or queue name survives the trip, and nobody is tempted to parse it).
fn encode_marker((project, queue, id): &ScanKey) -> String {
    fn hex(s: &str) -> String {
        s.bytes().map(|b| format!("{b:02x}")).collect()
    }
    format!("{}.{}.{}", hex(project), hex(queue), hex(id))
}

fn decode_marker(marker: &str) -> OpResult<ScanKey> {
    fn unhex(s: &str) -> Option<String> {
        if !s.len().is_multiple_of(2) {
            return None;
        }
        let bytes = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        String::from_utf8(bytes).ok()
    }
    let mut parts = marker.split('.').map(unhex);
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(Some(p)), Some(Some(q)), Some(Some(id)), None) => Ok((p, q, id)),
        _ => Err(caller(
            ErrorCode::INVALID_INPUT,
            format!("not a subscription scan marker: {marker:?}"),
        )),
    }
}

/// A page of every live subscription of the store, in key order
/// `(project, queue, id)`, after `marker`. `next_marker` is set only when a
/// live subscription follows the page, so the last page says so itself.
pub(crate) fn scan(
    txn: &ReadTransaction,
    marker: Option<&str>,
    limit: u32,
    now_ms: u64,
) -> OpResult<SubscriptionScanPage> {
    let subs = txn.open_table(schema::SUBSCRIPTIONS)?;
    let after = marker.map(decode_marker).transpose()?;
    let range = match &after {
        Some((p, n, id)) => subs.range((p.as_str(), n.as_str(), id.as_str())..)?,
        None => subs.iter()?,
    };
    let mut entries = Vec::new();
    let mut last: Option<ScanKey> = None;
    let mut more = false;
    for entry in range {
        let (k, v) = entry?;
        let (p, n, id) = k.value();
        if after
            .as_ref()
            .is_some_and(|(ap, an, aid)| (ap.as_str(), an.as_str(), aid.as_str()) == (p, n, id))
        {
            continue; // strictly after the marker
        }
        let r = Record::decode(v.value())?;
        if r.expires_ms <= now_ms {
            continue;
        }
        if entries.len() >= limit as usize {
            more = true;
            break;
        }
        entries.push(SubscriptionEntry {
            project: p.into(),
            record: to_contract(n, id, r),
        });
        last = Some((p.to_owned(), n.to_owned(), id.to_owned()));
    }
    let next_marker = if more {
        // With `limit` 0 the page is empty and the scan stays where it was.
        let resume = last.or(after).unwrap_or_default();
        ROption::RSome(encode_marker(&resume).into())
    } else {
        ROption::RNone
    };
    Ok(SubscriptionScanPage {
        entries: entries.into(),
        next_marker,
    })
}

/// Upgrades a format 1 file: gives every subscription written without a
/// cursor one at its queue's last sequence number, as if it were created
/// now (it never had notifications delivered by this store, and starting at
/// 0 would flood its subscriber with every message still in the queue).
/// Returns how many records were rewritten.
pub(crate) fn upgrade_cursors(t: &mut WriteTables<'_>) -> OpResult<usize> {
    let mut old: Vec<(ScanKey, Record)> = Vec::new();
    for entry in t.subscriptions.iter()? {
        let (k, v) = entry?;
        if Record::is_v1(v.value()) {
            let (p, n, id) = k.value();
            let key = (p.to_owned(), n.to_owned(), id.to_owned());
            old.push((key, Record::decode(v.value())?));
        }
    }
    let upgraded = old.len();
    for ((p, n, id), mut r) in old {
        let q = QueueRef::new(&p, &n);
        r.delivered_seq =
            queues::last_seq(&*t.queues, |qid| t.queue_state.get(qid), &*t.seq_floor, &q)?;
        t.subscriptions
            .insert((p.as_str(), n.as_str(), id.as_str()), r.encode().as_slice())?;
    }
    Ok(upgraded)
}

/// Upgrades a format 1, 2 or 3 file: puts every subscription, live or not,
/// into the subscriber index. Returns how many it indexed.
pub(crate) fn index_subscribers(t: &mut WriteTables<'_>) -> OpResult<usize> {
    let mut all: Vec<(ScanKey, String)> = Vec::new();
    for entry in t.subscriptions.iter()? {
        let (k, v) = entry?;
        let (p, n, id) = k.value();
        let subscriber = Record::decode(v.value())?.subscriber;
        all.push(((p.to_owned(), n.to_owned(), id.to_owned()), subscriber));
    }
    for ((p, n, id), subscriber) in &all {
        index_subscriber(t, &QueueRef::new(p, n), subscriber, id)?;
    }
    Ok(all.len())
}

/// Deletes one subscription, live or not, and the notification log entries
/// no live subscription still needs.
pub(crate) fn delete(t: &mut WriteTables<'_>, q: &QueueRef, id: &str) -> OpResult<()> {
    let removed = match t
        .subscriptions
        .remove((q.project.as_str(), q.name.as_str(), id))?
    {
        Some(v) => Some(Record::decode(v.value())?),
        None => None,
    };
    if let Some(r) = removed {
        unindex(t, q, id, r.expires_ms)?;
        unindex_subscriber(t, q, &r.subscriber, id)?;
        // The contract gives a delete no `now_ms`; the wall clock decides
        // which of the remaining subscriptions are live.
        notification_log::prune(t, q, crate::sweeper::now_ms())?;
        announce(t, q, id);
    }
    Ok(())
}

/// Deletes every subscription of the queue (queue delete); whether there
/// was any.
pub(crate) fn delete_all(t: &mut WriteTables<'_>, q: &QueueRef) -> OpResult<bool> {
    let all = all_of(&*t.subscriptions, q)?;
    for (id, r) in &all {
        t.subscriptions
            .remove((q.project.as_str(), q.name.as_str(), id.as_str()))?;
        unindex(t, q, id, r.expires_ms)?;
        unindex_subscriber(t, q, &r.subscriber, id)?;
    }
    Ok(!all.is_empty())
}

#[cfg(test)]
mod tests {
    use plugin_api::storage::{MessageStore, NewSubscription, SubscriptionPatch};
    use redb::{Database, ReadableDatabase};

    use super::*;
    use crate::{
        codec::QueueRecord,
        test_support::{data_dir, format_of},
        EmbeddedMessageStore,
    };

    #[test]
    fn scan_markers_round_trip_any_name_and_refuse_garbage() {
        let key = ("pröject.x".to_owned(), "q-1".to_owned(), "0abc".to_owned());
        assert_eq!(decode_marker(&encode_marker(&key)).unwrap(), key);
        let empty = ScanKey::default();
        assert_eq!(decode_marker(&encode_marker(&empty)).unwrap(), empty);
        for bad in ["", "zz..", "a..", ".", "61.62.63.64", "ff.61.61"] {
            assert!(decode_marker(bad).is_err(), "{bad:?} is refused");
        }
    }

    /// A version 1 subscription record (no cursor).
    fn v1(expires_ms: u64) -> Vec<u8> {
        let mut bytes = Record {
            subscriber: "http://example.com/".into(),
            ttl: 60,
            created_ms: 1,
            expires_ms,
            confirmed: true,
            options: b"{}".to_vec(),
            delivered_seq: 0,
        }
        .encode();
        bytes.truncate(bytes.len() - 8);
        bytes[0] = crate::codec::SUBSCRIPTION_V1;
        bytes
    }

    #[test]
    fn format_1_file_is_upgraded_with_cursors_at_each_queues_last_seq() {
        let (_dir, config, runtime) = data_dir();
        let file = config.path.join(crate::DATABASE_FILE);
        let far = u64::MAX / 2;
        {
            // What a format 1 build left: a queue whose last seq is 7, the
            // floor 4 of a deleted queue, subscriptions on both and on a
            // queue that never had a message.
            let db = Database::create(&file).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut t = WriteTables::new(&txn);
                t.meta.insert(schema::META_FORMAT, 1).unwrap();
                t.meta.insert(schema::META_NEXT_QID, 2).unwrap();
                let queue = QueueRecord {
                    qid: 1,
                    created_ms: 1,
                    metadata: b"{}".to_vec(),
                };
                t.queues
                    .insert(("p", "live"), queue.encode().as_slice())
                    .unwrap();
                txn.open_table(schema::QUEUE_SEQ)
                    .unwrap()
                    .insert(1, 7)
                    .unwrap();
                t.seq_floor.insert(("p", "gone"), 4).unwrap();
                for n in ["live", "gone", "never"] {
                    t.subscriptions
                        .insert(("p", n, "s"), v1(far).as_slice())
                        .unwrap();
                }
            }
            txn.commit().unwrap();
        }
        runtime.block_on(async {
            let store = EmbeddedMessageStore::open(&config).unwrap();
            for (queue, cursor) in [("live", 7), ("gone", 4), ("never", 0)] {
                let got = store
                    .subscription_get(QueueRef::new("p", queue), "s".into(), 1)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(got.delivered_seq, cursor, "cursor of {queue}");
                assert!(got.confirmed && got.ttl == 60, "the rest is kept");
            }
        });
        // Dropping the store closed the file: it now says the current format and holds
        // no version 1 record.
        assert_eq!(format_of(&file), schema::FORMAT_VERSION);
        let db = Database::create(&file).unwrap();
        let txn = db.begin_read().unwrap();
        let subs = txn.open_table(schema::SUBSCRIPTIONS).unwrap();
        for entry in subs.iter().unwrap() {
            assert!(!Record::is_v1(entry.unwrap().1.value()));
        }
    }

    /// The subscriber index's entries: `(queue, subscriber, id)`.
    fn subscriber_index(file: &std::path::Path) -> Vec<(String, String, String)> {
        let db = Database::create(file).unwrap();
        let txn = db.begin_read().unwrap();
        let index = txn.open_table(schema::SUBSCRIBERS).unwrap();
        let entries = index
            .iter()
            .unwrap()
            .map(|entry| {
                let (k, _) = entry.unwrap();
                let (_, n, subscriber, id) = k.value();
                (n.to_owned(), subscriber.to_owned(), id.to_owned())
            })
            .collect();
        entries
    }

    fn new_subscription(subscriber: &str, ttl: u32) -> NewSubscription {
        NewSubscription {
            subscriber: subscriber.into(),
            ttl,
            options: b"{}".to_vec().into(),
        }
    }

    #[test]
    fn format_3_file_is_upgraded_with_every_subscription_indexed_by_subscriber() {
        let (_dir, config, runtime) = data_dir();
        let file = config.path.join(crate::DATABASE_FILE);
        let t = 1_000_000;
        let q = || QueueRef::new("p", "q");
        let (x, y) = runtime.block_on(async {
            let store = EmbeddedMessageStore::open(&config).unwrap();
            let mut ids = Vec::new();
            for subscriber in ["http://x/", "http://y/"] {
                let created = store
                    .subscription_create(q(), new_subscription(subscriber, 600), t)
                    .await
                    .unwrap();
                ids.push(created.id.to_string());
            }
            (ids[0].clone(), ids[1].clone())
        });
        {
            // What a format 3 build leaves: the same records, no index.
            let db = Database::create(&file).unwrap();
            let txn = db.begin_write().unwrap();
            txn.delete_table(schema::SUBSCRIBERS).unwrap();
            txn.open_table(schema::META)
                .unwrap()
                .insert(schema::META_FORMAT, 3)
                .unwrap();
            txn.commit().unwrap();
        }
        runtime.block_on(async {
            let store = EmbeddedMessageStore::open(&config).unwrap();
            let again = store
                .subscription_create(q(), new_subscription("http://x/", 600), t)
                .await
                .unwrap();
            assert_eq!((again.id.to_string(), again.created), (x.clone(), false));
            let to_x = SubscriptionPatch {
                subscriber: ROption::RSome("http://x/".into()),
                ttl: ROption::RNone,
                options: ROption::RNone,
            };
            let err = store
                .subscription_update(q(), y.clone().into(), to_x, t)
                .await
                .unwrap_err();
            assert_eq!(err.code, ErrorCode::CONFLICT);
        });
        let mut index = subscriber_index(&file);
        index.sort();
        assert_eq!(
            index,
            [
                ("q".to_owned(), "http://x/".to_owned(), x),
                ("q".to_owned(), "http://y/".to_owned(), y),
            ]
        );
        assert_eq!(format_of(&file), schema::FORMAT_VERSION);
    }

    #[test]
    fn the_sweeper_and_deletes_leave_no_subscriber_index_entry_behind() {
        let (_dir, config, runtime) = data_dir();
        let t = 1_000_000;
        runtime.block_on(async {
            let store = EmbeddedMessageStore::open(&config).unwrap();
            let q = |name: &str| QueueRef::new("p", name);
            let short = new_subscription("http://expires/", 60);
            store.subscription_create(q("a"), short, t).await.unwrap();
            let kept = new_subscription("http://deleted/", 600);
            let deleted = store.subscription_create(q("a"), kept, t).await.unwrap();
            store.subscription_delete(q("a"), deleted.id).await.unwrap();
            let on_b = new_subscription("http://queue-deleted/", 600);
            store.subscription_create(q("b"), on_b, t).await.unwrap();
            store
                .queue_create(q("b"), b"{}".to_vec().into(), t)
                .await
                .unwrap();
            store.queue_delete(q("b")).await.unwrap();
            assert!(store.sweep(t + 60_000, 1000).await.unwrap() >= 1);
        });
        assert_eq!(
            subscriber_index(&config.path.join(crate::DATABASE_FILE)),
            []
        );
    }

    #[test]
    fn newer_format_is_refused() {
        let (_dir, config, _) = data_dir();
        {
            let db = Database::create(config.path.join(crate::DATABASE_FILE)).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut t = WriteTables::new(&txn);
                t.meta
                    .insert(schema::META_FORMAT, schema::FORMAT_VERSION + 1)
                    .unwrap();
            }
            txn.commit().unwrap();
        }
        let err = EmbeddedMessageStore::open(&config).unwrap_err();
        assert_eq!(err.code, ErrorCode::BAD_CONFIG);
        assert!(err.message.contains("format"), "{}", err.message);
    }
}
