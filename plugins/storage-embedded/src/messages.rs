//! Messages: post, list, get, delete, pop, stats.
//!
//! A message lives at `(qid, seq)` in [`schema::MESSAGES`] and is reachable
//! from an entry of the expiry index ([`crate::expiry`]); every function
//! that stores a message or changes its expiry tells that index, and every
//! function that adds or removes a message or its claim stamp counts it in
//! the queue's state ([`crate::queue_state`]).

use plugin_api::{
    storage::{
        ClaimStamp, MessageListQuery, MessageSummary, PostedMessage, QueueChange, QueueRef,
        QueueStats, StoredMessage,
    },
    types::{ROption, RString},
    ErrorCode,
};
use redb::{ReadTransaction, ReadableTable};

use crate::{
    claims,
    codec::{encode_message, MessageView},
    error::{caller, OpResult},
    expiry,
    group_commit::WriteTables,
    ids, notification_log,
    post_log::LoggedPost,
    post_target, queue_state, queues, schema,
};

/// The ttl reported for a message: its remaining-consistent lifetime,
/// `expires - created` in whole seconds, rounded. (Zaqar reports
/// `claim ttl + grace` after a grace extension, so that `age + ttl` no
/// longer gives the expiry; we do not copy that upstream bug.)
pub(crate) fn reported_ttl(created_ms: u64, expires_ms: u64) -> u32 {
    let secs = (expires_ms.saturating_sub(created_ms) + 500) / 1000;
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// The contract's view of a stored message.
pub(crate) fn to_stored(seq: u64, m: &MessageView<'_>) -> StoredMessage {
    StoredMessage {
        id: ids::message_id(seq, m.tag).into(),
        seq,
        created_ms: m.created_ms,
        expires_ms: m.expires_ms,
        ttl: reported_ttl(m.created_ms, m.expires_ms),
        visible_ms: m.visible_ms,
        client_id: RString::from(m.client_id),
        claim: match m.claim {
            Some(s) => ROption::RSome(ClaimStamp {
                id: ids::claim_id(s.claim).into(),
                expires_ms: s.expires_ms,
            }),
            None => ROption::RNone,
        },
        claim_count: m.claim_count,
        body: m.body.to_vec().into(),
    }
}

/// Stores a message record, the queue's newest, and indexes its expiry.
pub(crate) fn put(
    t: &mut WriteTables<'_>,
    qid: u64,
    seq: u64,
    record: &[u8],
    expires_ms: u64,
) -> OpResult<()> {
    t.messages.insert((qid, seq), record)?;
    expiry::note_posted(t, qid, seq, expires_ms)
}

/// Removes a message record; the caller counts it out of the queue's
/// state ([`queue_state::forget`]). Its expiry entry, if the message
/// started a run, stays for the rest of the run and is dropped when due.
pub(crate) fn remove_row(t: &mut WriteTables<'_>, qid: u64, seq: u64) -> OpResult<()> {
    t.messages.remove((qid, seq))?;
    Ok(())
}

/// Removes one message of a live queue and counts it out of the queue's
/// state; `stamped`: it carried a claim stamp.
pub(crate) fn remove(t: &mut WriteTables<'_>, qid: u64, seq: u64, stamped: bool) -> OpResult<()> {
    remove_row(t, qid, seq)?;
    queue_state::forget(t, qid, 1, u64::from(stamped))
}

/// Gives the next `n` sequence numbers of queue `qid` and counts the `n`
/// messages the caller stores under them; returns the first.
pub(crate) fn reserve_seqs(t: &mut WriteTables<'_>, qid: u64, n: u64) -> OpResult<u64> {
    let mut state = t.queue_state.get(qid)?.unwrap_or_default();
    let first = state.last_seq + 1;
    state.last_seq += n;
    state.records += n;
    t.queue_state.set(qid, state);
    Ok(first)
}

/// Enqueues `messages` in order, creating the queue if needed; logs them
/// for notification if the queue has a live subscription; announces the
/// queue's new last seq.
#[cfg(test)]
pub(crate) fn post(
    t: &mut WriteTables<'_>,
    q: &QueueRef,
    client_id: &str,
    messages: &[plugin_api::storage::NewMessage],
    now_ms: u64,
) -> OpResult<Vec<PostedMessage>> {
    let post = LoggedPost::new(
        q.clone(),
        client_id.into(),
        now_ms,
        messages.to_vec().into(),
    );
    post_logged(t, &post)
}

/// The same for a post as the post log keeps it: its ids take the tags it
/// carries, so that applying it again after a crash gives it the ids its
/// caller was answered with.
pub(crate) fn post_logged(
    t: &mut WriteTables<'_>,
    post: &LoggedPost,
) -> OpResult<Vec<PostedMessage>> {
    if post.tags.len() != post.messages.len() {
        return Err(crate::error::corrupt(
            "a logged post without a tag per message",
        ));
    }
    let (q, client_id, messages, now_ms) =
        (&post.queue, &post.client_id, &post.messages, post.now_ms);
    let (qid, logged) = post_target::resolve(t, q, now_ms)?;
    let first = reserve_seqs(t, qid, messages.len() as u64)?;
    let mut posted = Vec::with_capacity(messages.len());
    for ((seq, m), &tag) in (first..).zip(messages.iter()).zip(&post.tags) {
        let expires_ms = now_ms + u64::from(m.ttl) * 1000;
        let visible_ms = now_ms + u64::from(m.delay) * 1000;
        let record = encode_message(
            tag, now_ms, expires_ms, visible_ms, None, 0, client_id, &m.body,
        );
        put(t, qid, seq, &record, expires_ms)?;
        if logged {
            notification_log::record(t, q, seq, &record, expires_ms)?;
        }
        posted.push(PostedMessage {
            id: ids::message_id(seq, tag).into(),
            seq,
        });
    }
    if let Some(last) = posted.last().map(|m| m.seq) {
        t.announce(|| QueueChange::messages(q.clone(), last));
    }
    Ok(posted)
}

/// A page of live messages in sequence order.
pub(crate) fn list(
    txn: &ReadTransaction,
    q: &QueueRef,
    query: &MessageListQuery,
    now_ms: u64,
) -> OpResult<Vec<StoredMessage>> {
    Ok(list_within(txn, q, query, now_ms, usize::MAX)?.unwrap_or_default())
}

/// The same, giving up (`None`) once it has walked `max_rows` rows
/// without filling its page: a caller that must not hold its thread for
/// long tries this first and takes a listing that walks further elsewhere.
pub(crate) fn list_within(
    txn: &ReadTransaction,
    q: &QueueRef,
    query: &MessageListQuery,
    now_ms: u64,
    max_rows: usize,
) -> OpResult<Option<Vec<StoredMessage>>> {
    let Some(qid) = queues::read_qid(txn, q)? else {
        return Ok(Some(Vec::new()));
    };
    let mut out = Vec::new();
    if query.limit == 0 {
        return Ok(Some(out));
    }
    let from = query
        .after_seq
        .into_option()
        .map_or(0, |s| s.saturating_add(1));
    let exclude = query
        .exclude_client
        .as_ref()
        .map(|c| c.as_str())
        .into_option();
    let messages = txn.open_table(schema::MESSAGES)?;
    for (walked, entry) in messages.range((qid, from)..=(qid, u64::MAX))?.enumerate() {
        if walked == max_rows {
            return Ok(None);
        }
        let (k, v) = entry?;
        let m = MessageView::decode(v.value())?;
        if !m.is_live(now_ms)
            || (!query.include_claimed && m.live_claim(now_ms).is_some())
            || (!query.include_delayed && !m.is_visible(now_ms))
            || exclude == Some(m.client_id)
        {
            continue;
        }
        out.push(to_stored(k.value().1, &m));
        if out.len() >= query.limit as usize {
            break;
        }
    }
    Ok(Some(out))
}

/// The live messages among `ids`, in sequence order.
pub(crate) fn get_many(
    txn: &ReadTransaction,
    q: &QueueRef,
    ids: &[RString],
    now_ms: u64,
) -> OpResult<Vec<StoredMessage>> {
    let Some(qid) = queues::read_qid(txn, q)? else {
        return Ok(Vec::new());
    };
    let messages = txn.open_table(schema::MESSAGES)?;
    let mut wanted: Vec<(u64, u32)> = ids
        .iter()
        .filter_map(|id| ids::parse_message_id(id))
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut out = Vec::with_capacity(wanted.len());
    for (seq, tag) in wanted {
        if let Some(v) = messages.get((qid, seq))? {
            let m = MessageView::decode(v.value())?;
            if m.tag == tag && m.is_live(now_ms) {
                out.push(to_stored(seq, &m));
            }
        }
    }
    Ok(out)
}

/// Deletes one message, honouring its claim (see the trait's rules).
pub(crate) fn delete(
    t: &mut WriteTables<'_>,
    q: &QueueRef,
    id: &str,
    claim_id: Option<&str>,
    now_ms: u64,
) -> OpResult<()> {
    let Some(qid) = queues::qid_of(&*t.queues, q)? else {
        return Ok(());
    };
    let Some((seq, tag)) = ids::parse_message_id(id) else {
        return Ok(());
    };
    let (stamped, holder) = match t.messages.get((qid, seq))? {
        Some(v) => {
            let m = MessageView::decode(v.value())?;
            if m.tag != tag || !m.is_live(now_ms) {
                return Ok(());
            }
            (m.claim.is_some(), m.live_claim(now_ms))
        }
        None => return Ok(()),
    };
    let presented = claim_id.map(ids::parse_claim_id);
    match (holder, presented) {
        (Some(held), Some(Some(c))) if held == c => {}
        (Some(_), _) => {
            return Err(caller(
                ErrorCode::MESSAGE_IS_CLAIMED,
                format!("message {id} is claimed; delete it with its claim id"),
            ))
        }
        (None, None) => {}
        (None, Some(c)) => {
            let live = match c {
                Some(c) => claims::is_live(&*t.claims, qid, c, now_ms)?,
                None => false,
            };
            return Err(if live {
                caller(
                    ErrorCode::MESSAGE_NOT_CLAIMED,
                    format!("message {id} is not claimed"),
                )
            } else {
                caller(ErrorCode::CLAIM_NOT_FOUND, "claim not found (or expired)")
            });
        }
    }
    remove(t, qid, seq, stamped)
}

/// Deletes the messages among `ids`, claimed or not.
pub(crate) fn delete_many(t: &mut WriteTables<'_>, q: &QueueRef, ids: &[RString]) -> OpResult<()> {
    let Some(qid) = queues::qid_of(&*t.queues, q)? else {
        return Ok(());
    };
    let (mut removed, mut unstamped) = (0, 0);
    for id in ids {
        let Some((seq, tag)) = ids::parse_message_id(id) else {
            continue;
        };
        let found = match t.messages.get((qid, seq))? {
            Some(v) => {
                let m = MessageView::decode(v.value())?;
                (m.tag == tag).then_some(m.claim.is_some())
            }
            None => None,
        };
        if let Some(stamped) = found {
            remove_row(t, qid, seq)?;
            removed += 1;
            unstamped += u64::from(stamped);
        }
    }
    queue_state::forget(t, qid, removed, unstamped)
}

/// The oldest messages in `[from, to]` that a claim or pop may take: live,
/// visible, not under a live claim. Returns `(seq, record bytes)`, and
/// lowers `sooner` to the earliest moment a live message it passed over
/// (delayed, or under a live claim) becomes takeable.
pub(crate) fn takeable<T>(
    messages: &T,
    qid: u64,
    from: u64,
    to: u64,
    limit: usize,
    now_ms: u64,
    sooner: &mut u64,
) -> OpResult<Vec<(u64, Vec<u8>)>>
where
    T: ReadableTable<(u64, u64), &'static [u8]>,
{
    let mut out = Vec::new();
    if limit == 0 || from > to {
        return Ok(out);
    }
    for entry in messages.range((qid, from)..=(qid, to))? {
        let (k, v) = entry?;
        let m = MessageView::decode(v.value())?;
        if !m.is_live(now_ms) {
            continue; // expired: never takeable again
        }
        if !m.is_visible(now_ms) {
            *sooner = (*sooner).min(m.visible_ms);
            continue;
        }
        if let Some(stamp) = m.claim.filter(|s| s.expires_ms > now_ms) {
            *sooner = (*sooner).min(stamp.expires_ms);
            continue;
        }
        out.push((k.value().1, v.value().to_vec()));
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// Removes and returns up to `limit` takeable messages, oldest first.
pub(crate) fn pop(
    t: &mut WriteTables<'_>,
    q: &QueueRef,
    limit: u32,
    now_ms: u64,
) -> OpResult<Vec<StoredMessage>> {
    let Some(qid) = queues::qid_of(&*t.queues, q)? else {
        return Ok(Vec::new());
    };
    let mut sooner = u64::MAX;
    let taken = takeable(
        &*t.messages,
        qid,
        0,
        u64::MAX,
        limit as usize,
        now_ms,
        &mut sooner,
    )?;
    let mut out = Vec::with_capacity(taken.len());
    let mut unstamped = 0;
    for (seq, bytes) in taken {
        let m = MessageView::decode(&bytes)?;
        remove_row(t, qid, seq)?;
        // A takeable message may still carry the stamp of an expired claim.
        unstamped += u64::from(m.claim.is_some());
        out.push(to_stored(seq, &m));
    }
    queue_state::forget(t, qid, out.len() as u64, unstamped)?;
    Ok(out)
}

/// The queue's stats as of `now_ms`, at a cost independent of its length.
///
/// The queue's state holds the exact number of message rows and of rows
/// under a claim stamp, as of the last commit. What the clock changed since
/// is subtracted here: messages whose expiry is due (the runs of the
/// expiry index due by this second, [`expiry::expired_in`]) and the stamps
/// of claims whose expiry is due (the due part of the claim expiry index;
/// each such claim's list names its messages). Only due entries not yet
/// swept are visited, a few seconds' worth. A
/// claimed message never expires before its claim (the grace rule), so a
/// live stamp is always on a live message and `claimed <= total`.
/// Oldest and newest are the first and last live rows, reached by skipping
/// the expired rows at either end, which are also due and not yet swept.
pub(crate) fn stats(txn: &ReadTransaction, q: &QueueRef, now_ms: u64) -> OpResult<QueueStats> {
    let mut stats = QueueStats::default();
    let Some(qid) = queues::read_qid(txn, q)? else {
        return Ok(stats);
    };
    let Some(state) = queue_state::read(&txn.open_table(schema::QUEUE_STATE)?, qid)? else {
        return Ok(stats);
    };
    let expired = expiry::expired_in(txn, qid, now_ms)?;
    let lapsed = claims::lapsed_stamps(txn, qid, now_ms)?;
    stats.total = state.records.saturating_sub(expired);
    stats.claimed = state.stamped.saturating_sub(lapsed);
    stats.free = stats.total.saturating_sub(stats.claimed);
    if stats.total == 0 {
        return Ok(stats);
    }
    let messages = txn.open_table(schema::MESSAGES)?;
    let summary = |entry: Result<_, redb::StorageError>| -> OpResult<Option<MessageSummary>> {
        let (k, v): (redb::AccessGuard<(u64, u64)>, redb::AccessGuard<&[u8]>) = entry?;
        let m = MessageView::decode(v.value())?;
        Ok(m.is_live(now_ms).then(|| MessageSummary {
            id: ids::message_id(k.value().1, m.tag).into(),
            created_ms: m.created_ms,
        }))
    };
    let range = || messages.range((qid, 0)..=(qid, u64::MAX));
    for entry in range()? {
        if let Some(found) = summary(entry)? {
            stats.oldest = ROption::RSome(found);
            break;
        }
    }
    for entry in range()?.rev() {
        if let Some(found) = summary(entry)? {
            stats.newest = ROption::RSome(found);
            break;
        }
    }
    Ok(stats)
}
