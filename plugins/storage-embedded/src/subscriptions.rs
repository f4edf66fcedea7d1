//! Subscriptions: create (one live subscription per subscriber and queue),
//! list, get, update, confirm, delete.
//!
//! Keyed `(project, queue, id)`; ids sort by creation time, which gives the
//! stable listing order the contract asks for.

use plugin_api::{
    storage::{
        NewSubscription, QueueRef, SubscriptionCreated, SubscriptionListQuery, SubscriptionPatch,
        SubscriptionRecord,
    },
    ErrorCode,
};
use redb::{ReadTransaction, ReadableTable};

use crate::{
    codec::SubscriptionRecord as Record,
    error::{caller, OpError, OpResult},
    group_commit::WriteTables,
    ids, schema,
};

type SubTable = (&'static str, &'static str, &'static str);

fn not_found() -> OpError {
    caller(
        ErrorCode::SUBSCRIPTION_NOT_FOUND,
        "subscription not found (or expired)",
    )
}

fn to_contract(q: &QueueRef, id: &str, r: Record) -> SubscriptionRecord {
    SubscriptionRecord {
        id: id.into(),
        queue: q.name.clone(),
        subscriber: r.subscriber.into(),
        ttl: r.ttl,
        created_ms: r.created_ms,
        expires_ms: r.expires_ms,
        options: r.options.into(),
        confirmed: r.confirmed,
    }
}

/// Every subscription of the queue, live or not: `(id, record)`.
fn all_of<T>(subs: &T, q: &QueueRef) -> OpResult<Vec<(String, Record)>>
where
    T: ReadableTable<SubTable, &'static [u8]>,
{
    let (p, n) = (q.project.as_str(), q.name.as_str());
    let mut out = Vec::new();
    for entry in subs.range((p, n, "")..)? {
        let (k, v) = entry?;
        let (kp, kn, id) = k.value();
        if kp != p || kn != n {
            break;
        }
        out.push((id.to_owned(), Record::decode(v.value())?));
    }
    Ok(out)
}

/// The live subscription of the queue with this subscriber, other than `except`.
fn live_with_subscriber<T>(
    subs: &T,
    q: &QueueRef,
    subscriber: &str,
    except: Option<&str>,
    now_ms: u64,
) -> OpResult<Option<(String, Record)>>
where
    T: ReadableTable<SubTable, &'static [u8]>,
{
    Ok(all_of(subs, q)?.into_iter().find(|(id, r)| {
        r.expires_ms > now_ms && r.subscriber == subscriber && Some(id.as_str()) != except
    }))
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
    if let Some((id, r)) = live_with_subscriber(&t.subscriptions, q, &s.subscriber, None, now_ms)? {
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
    let record = Record {
        subscriber: s.subscriber.to_string(),
        ttl: s.ttl,
        created_ms: now_ms,
        expires_ms: now_ms + u64::from(s.ttl) * 1000,
        confirmed: false,
        options: s.options.to_vec(),
    };
    store(t, q, &id, &record)?;
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
            out.push(to_contract(q, id, r));
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
    Ok(live_one(&subs, q, id, now_ms)?.map(|r| to_contract(q, id, r)))
}

/// Applies a patch to a live subscription.
pub(crate) fn update(
    t: &mut WriteTables<'_>,
    q: &QueueRef,
    id: &str,
    patch: &SubscriptionPatch,
    now_ms: u64,
) -> OpResult<()> {
    let Some(mut r) = live_one(&t.subscriptions, q, id, now_ms)? else {
        return Err(not_found());
    };
    if let Some(subscriber) = patch.subscriber.as_ref().into_option() {
        if live_with_subscriber(&t.subscriptions, q, subscriber, Some(id), now_ms)?.is_some() {
            return Err(caller(
                ErrorCode::CONFLICT,
                format!(
                    "queue {} already has a subscription for {subscriber}",
                    q.name
                ),
            ));
        }
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
    store(t, q, id, &r)
}

/// Sets the confirmed flag of a live subscription.
pub(crate) fn confirm(
    t: &mut WriteTables<'_>,
    q: &QueueRef,
    id: &str,
    confirmed: bool,
    now_ms: u64,
) -> OpResult<()> {
    let Some(mut r) = live_one(&t.subscriptions, q, id, now_ms)? else {
        return Err(not_found());
    };
    r.confirmed = confirmed;
    store(t, q, id, &r)
}

/// Deletes one subscription, live or not.
pub(crate) fn delete(t: &mut WriteTables<'_>, q: &QueueRef, id: &str) -> OpResult<()> {
    let removed = match t
        .subscriptions
        .remove((q.project.as_str(), q.name.as_str(), id))?
    {
        Some(v) => Some(Record::decode(v.value())?.expires_ms),
        None => None,
    };
    if let Some(expires_ms) = removed {
        unindex(t, q, id, expires_ms)?;
    }
    Ok(())
}

/// Deletes every subscription of the queue (queue delete).
pub(crate) fn delete_all(t: &mut WriteTables<'_>, q: &QueueRef) -> OpResult<()> {
    for (id, r) in all_of(&t.subscriptions, q)? {
        t.subscriptions
            .remove((q.project.as_str(), q.name.as_str(), id.as_str()))?;
        unindex(t, q, &id, r.expires_ms)?;
    }
    Ok(())
}
