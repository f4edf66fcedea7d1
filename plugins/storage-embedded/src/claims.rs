//! Claims: create (with grace and dead-lettering), get, renew, release.
//!
//! A claim is a record `(qid, claim id)` listing the sequence numbers it
//! took, plus a stamp `(claim id, expiry)` on each message. The stamp on the
//! message is the truth: a message released, deleted or reclaimed since is
//! simply skipped when the claim's list is read.

use plugin_api::{
    storage::{ClaimRequest, DeadLetterPolicy, QueueChange, QueueRef, StoredClaim, StoredMessage},
    types::RVec,
    ErrorCode,
};
use redb::{ReadTransaction, ReadableTable};

use crate::{
    claim_cursor::Cursor,
    codec::{ClaimRecord, MessageView, Stamp},
    error::{caller, OpError, OpResult},
    expiry,
    group_commit::WriteTables,
    ids,
    messages::{self, to_stored},
    notification_log, post_target, queue_state, queues, schema,
};

/// Whether claim `claim` of queue `qid` exists and has not expired.
pub(crate) fn is_live<T>(claims: &T, qid: u64, claim: u128, now_ms: u64) -> OpResult<bool>
where
    T: ReadableTable<(u64, u128), &'static [u8]>,
{
    Ok(match claims.get((qid, claim))? {
        Some(v) => ClaimRecord::decode(v.value())?.expires_ms > now_ms,
        None => false,
    })
}

/// The grace rule: a claimed message that would expire before the claim
/// does lives until claim expiry + grace.
fn extended_expiry(message_expires_ms: u64, claim_expires_ms: u64, grace: u32) -> u64 {
    if message_expires_ms < claim_expires_ms {
        claim_expires_ms + u64::from(grace) * 1000
    } else {
        message_expires_ms
    }
}

fn not_found() -> OpError {
    caller(ErrorCode::CLAIM_NOT_FOUND, "claim not found (or expired)")
}

/// Claims up to `request.limit` takeable messages, oldest first, under the
/// new claim `claim` ([`ids::new_claim`], drawn by the caller so that the
/// post log can apply the same claim again after a crash).
pub(crate) fn create(
    t: &mut WriteTables<'_>,
    q: &QueueRef,
    request: &ClaimRequest,
    now_ms: u64,
    claim: u128,
) -> OpResult<StoredClaim> {
    let expires_ms = now_ms + u64::from(request.ttl) * 1000;
    let mut result = StoredClaim {
        id: ids::claim_id(claim).into(),
        ttl: request.ttl,
        updated_ms: now_ms,
        expires_ms,
        messages: RVec::new(),
    };
    let Some(qid) = queues::qid_of(&*t.queues, q)? else {
        return Ok(result);
    };
    let policy = request.dead_letter.as_ref().into_option();
    // Messages moved to a dead-letter queue get new sequence numbers; when
    // that queue is this one, stopping at today's last seq keeps the scan
    // from meeting them again.
    let end = t.queue_state.get(qid)?.map_or(0, |s| s.last_seq);
    let limit = request.limit as usize;
    let mut taken: Vec<StoredMessage> = Vec::with_capacity(limit);
    // Nothing below the cursor can be taken yet: start there.
    let cursor = t.claim_cursors.start(qid, now_ms);
    let mut from = cursor.map_or(0, |c| c.from);
    let mut valid_until_ms = cursor.map_or(u64::MAX, |c| c.valid_until_ms);
    let mut exhausted = false;
    // Messages that had no stamp before (or moved away with one).
    let mut newly_stamped = 0u64;
    // Moved messages do not count against the limit: scan on until `limit`
    // messages are claimed or the queue is exhausted.
    while taken.len() < limit {
        let wanted = limit - taken.len();
        let batch = messages::takeable(
            &*t.messages,
            qid,
            from,
            end,
            wanted,
            now_ms,
            &mut valid_until_ms,
        )?;
        exhausted = batch.len() < wanted;
        let Some(&(last, _)) = batch.last() else {
            break;
        };
        from = last + 1;
        for (seq, bytes) in batch {
            let view = MessageView::decode(&bytes)?;
            let mut m = view.to_owned_record();
            match policy {
                Some(p) if m.claim_count >= p.max_claim_count => {
                    move_to_dead_letter(t, q, p, qid, seq, m, now_ms)?;
                }
                _ => {
                    newly_stamped += u64::from(m.claim.is_none());
                    let old_expiry = m.expires_ms;
                    m.expires_ms = extended_expiry(m.expires_ms, expires_ms, request.grace);
                    m.claim = Some(Stamp { claim, expires_ms });
                    m.claim_count = m.claim_count.saturating_add(1);
                    let encoded = m.encode();
                    t.messages.insert((qid, seq), encoded.as_slice())?;
                    expiry::note_moved(t, qid, seq, old_expiry, m.expires_ms)?;
                    taken.push(to_stored(seq, &MessageView::decode(&encoded)?));
                }
            }
        }
    }
    if !taken.is_empty() {
        let record = ClaimRecord {
            ttl: request.ttl,
            updated_ms: now_ms,
            expires_ms,
            seqs: taken.iter().map(|m| m.seq).collect(),
        };
        t.claims.insert((qid, claim), record.encode().as_slice())?;
        t.claim_expiry.insert((expires_ms, qid, claim), ())?;
        queue_state::update(t, qid, |s| s.stamped += newly_stamped)?;
        valid_until_ms = valid_until_ms.min(expires_ms);
    }
    // Every message scanned is now taken, moved away, expired or not
    // takeable before `valid_until_ms`.
    let next = if exhausted {
        end.saturating_add(1)
    } else {
        from
    };
    t.claim_cursors.set(
        qid,
        Cursor {
            from: next,
            valid_until_ms,
        },
    );
    result.messages = taken.into();
    Ok(result)
}

/// Moves a message that was claimed too often to the dead-letter queue
/// (same project, created if missing): a new sequence number there, no
/// claim, and the policy's ttl counted from now if it has one. It is a post
/// to that queue: logged for its subscriptions and announced.
fn move_to_dead_letter(
    t: &mut WriteTables<'_>,
    q: &QueueRef,
    policy: &DeadLetterPolicy,
    qid: u64,
    seq: u64,
    mut m: crate::codec::MessageRecord,
    now_ms: u64,
) -> OpResult<()> {
    messages::remove(t, qid, seq, m.claim.is_some())?;
    let target = QueueRef::new(&q.project, &policy.queue);
    let (target_qid, logged) = post_target::resolve(t, &target, now_ms)?;
    let target_seq = messages::reserve_seqs(t, target_qid, 1)?;
    if let Some(ttl) = policy.message_ttl.into_option() {
        m.expires_ms = now_ms + u64::from(ttl) * 1000;
    }
    m.claim = None;
    m.tag = ids::new_tag();
    let record = m.encode();
    messages::put(t, target_qid, target_seq, &record, m.expires_ms)?;
    if logged {
        notification_log::record(t, &target, target_seq, &record, m.expires_ms)?;
    }
    t.announce(|| QueueChange::messages(target, target_seq));
    Ok(())
}

/// The live claim with the live messages it still holds.
pub(crate) fn get(
    txn: &ReadTransaction,
    q: &QueueRef,
    claim_id: &str,
    now_ms: u64,
) -> OpResult<Option<StoredClaim>> {
    let (Some(qid), Some(claim)) = (queues::read_qid(txn, q)?, ids::parse_claim_id(claim_id))
    else {
        return Ok(None);
    };
    let claims = txn.open_table(schema::CLAIMS)?;
    let record = match claims.get((qid, claim))? {
        Some(v) => ClaimRecord::decode(v.value())?,
        None => return Ok(None),
    };
    if record.expires_ms <= now_ms {
        return Ok(None);
    }
    let messages = txn.open_table(schema::MESSAGES)?;
    let mut held = Vec::with_capacity(record.seqs.len());
    for &seq in &record.seqs {
        if let Some(v) = messages.get((qid, seq))? {
            let m = MessageView::decode(v.value())?;
            if m.is_live(now_ms) && m.live_claim(now_ms) == Some(claim) {
                held.push(to_stored(seq, &m));
            }
        }
    }
    Ok(Some(StoredClaim {
        id: claim_id.into(),
        ttl: record.ttl,
        updated_ms: record.updated_ms,
        expires_ms: record.expires_ms,
        messages: held.into(),
    }))
}

/// Renews a live claim: new expiry, grace applied again.
pub(crate) fn update(
    t: &mut WriteTables<'_>,
    q: &QueueRef,
    claim_id: &str,
    ttl: u32,
    grace: u32,
    now_ms: u64,
) -> OpResult<()> {
    let (Some(qid), Some(claim)) = (
        queues::qid_of(&*t.queues, q)?,
        ids::parse_claim_id(claim_id),
    ) else {
        return Err(not_found());
    };
    let mut record = match t.claims.get((qid, claim))? {
        Some(v) => ClaimRecord::decode(v.value())?,
        None => return Err(not_found()),
    };
    if record.expires_ms <= now_ms {
        return Err(not_found());
    }
    let old_claim_expiry = record.expires_ms;
    let expires_ms = now_ms + u64::from(ttl) * 1000;
    let mut still_held = Vec::with_capacity(record.seqs.len());
    for &seq in &record.seqs {
        let current = match t.messages.get((qid, seq))? {
            Some(v) => {
                let m = MessageView::decode(v.value())?;
                (m.is_live(now_ms) && m.live_claim(now_ms) == Some(claim))
                    .then(|| m.to_owned_record())
            }
            None => None,
        };
        let Some(mut m) = current else { continue };
        let old_expiry = m.expires_ms;
        m.claim = Some(Stamp { claim, expires_ms });
        m.expires_ms = extended_expiry(m.expires_ms, expires_ms, grace);
        t.messages.insert((qid, seq), m.encode().as_slice())?;
        expiry::note_moved(t, qid, seq, old_expiry, m.expires_ms)?;
        still_held.push(seq);
    }
    record.ttl = ttl;
    record.updated_ms = now_ms;
    record.expires_ms = expires_ms;
    record.seqs = still_held;
    t.claims.insert((qid, claim), record.encode().as_slice())?;
    t.claim_expiry.remove((old_claim_expiry, qid, claim))?;
    t.claim_expiry.insert((expires_ms, qid, claim), ())?;
    // A shorter ttl frees the messages sooner than the cursor says.
    t.claim_cursors.forget(qid);
    Ok(())
}

/// Releases the claim's messages and forgets the claim.
pub(crate) fn delete(t: &mut WriteTables<'_>, q: &QueueRef, claim_id: &str) -> OpResult<()> {
    let (Some(qid), Some(claim)) = (
        queues::qid_of(&*t.queues, q)?,
        ids::parse_claim_id(claim_id),
    ) else {
        return Ok(());
    };
    let record = match t.claims.remove((qid, claim))? {
        Some(v) => ClaimRecord::decode(v.value())?,
        None => return Ok(()),
    };
    t.claim_expiry.remove((record.expires_ms, qid, claim))?;
    release(t, qid, claim, &record.seqs)
}

/// Clears the stamp of `claim` from the messages in `seqs` that still carry
/// it, and counts them out of the queue's stamped messages. A claim record
/// is only ever removed through here (or with its whole retired queue), so
/// that a stamp on a message always belongs to an existing claim.
fn release(t: &mut WriteTables<'_>, qid: u64, claim: u128, seqs: &[u64]) -> OpResult<()> {
    // Released messages are takeable at once.
    t.claim_cursors.forget(qid);
    let mut released = 0;
    for &seq in seqs {
        let carrier = match t.messages.get((qid, seq))? {
            Some(v) => {
                let m = MessageView::decode(v.value())?;
                (m.claim.map(|s| s.claim) == Some(claim)).then(|| m.to_owned_record())
            }
            None => None,
        };
        if let Some(mut m) = carrier {
            // Like Zaqar's MongoDB driver, a released message carries no
            // claim at all (no stale `claim_id` in its href).
            m.claim = None;
            t.messages.insert((qid, seq), m.encode().as_slice())?;
            released += 1;
        }
    }
    queue_state::forget(t, qid, 0, released)
}

/// The sweeper's removal of an expired claim record: its messages that
/// still carry its (expired) stamp are released, as a delete would.
pub(crate) fn forget_expired(
    t: &mut WriteTables<'_>,
    qid: u64,
    claim: u128,
    record: &ClaimRecord,
) -> OpResult<()> {
    t.claims.remove((qid, claim))?;
    // A retired queue's messages go with it; nothing to release.
    if t.queue_state.get(qid)?.is_some() {
        release(t, qid, claim, &record.seqs)?;
    }
    Ok(())
}

/// How many messages of queue `qid` carry the stamp of a claim whose expiry
/// is due at `now_ms` (and that the sweeper has not removed yet): the
/// stamped messages that are no longer claimed. Visits only the due part
/// of the claim expiry index.
pub(crate) fn lapsed_stamps(txn: &ReadTransaction, qid: u64, now_ms: u64) -> OpResult<u64> {
    let due = txn.open_table(schema::CLAIM_EXPIRY)?;
    let mut lapsed = 0;
    let mut due_claims = due
        .range(..=(now_ms, u64::MAX, u128::MAX))?
        .filter(|e| e.as_ref().map_or(true, |(k, _)| k.value().1 == qid))
        .peekable();
    if due_claims.peek().is_none() {
        return Ok(0);
    }
    let claims = txn.open_table(schema::CLAIMS)?;
    let messages = txn.open_table(schema::MESSAGES)?;
    for entry in due_claims {
        let (_, _, claim) = entry?.0.value();
        let Some(v) = claims.get((qid, claim))? else {
            continue;
        };
        for seq in ClaimRecord::decode(v.value())?.seqs {
            if let Some(m) = messages.get((qid, seq))? {
                let m = MessageView::decode(m.value())?;
                lapsed += u64::from(m.claim.map(|s| s.claim) == Some(claim));
            }
        }
    }
    Ok(lapsed)
}

#[cfg(test)]
mod tests {
    use plugin_api::storage::{ClaimRequest, NewMessage, QueueRef};
    use redb::Database;

    use super::*;
    use crate::claim_cursor::{BatchCursors, ClaimCursors};

    const SECOND: u64 = 1_000;
    const T0: u64 = 1_000_000_000;

    /// Runs `op` as one committed batch, as the writer does.
    fn commit<T>(
        db: &Database,
        cursors: &ClaimCursors,
        op: impl FnOnce(&mut WriteTables<'_>) -> OpResult<T>,
    ) -> T {
        let txn = db.begin_write().unwrap();
        let (out, changes) = {
            let mut t = WriteTables::new(&txn).with_claim_cursors(cursors);
            t.open_all().unwrap();
            let out = op(&mut t).unwrap();
            t.finish().unwrap();
            (out, t.claim_cursors.take_changes())
        };
        txn.commit().unwrap();
        cursors.apply(changes);
        out
    }

    fn post(db: &Database, cursors: &ClaimCursors, q: &QueueRef, delay: u32, at: u64) {
        let message = NewMessage {
            ttl: 3_600,
            delay,
            body: b"{}".to_vec().into(),
        };
        commit(db, cursors, |t| messages::post(t, q, "c", &[message], at));
    }

    /// Claims up to `limit` messages for `ttl` seconds at `at`: the claim
    /// id and the sequence numbers it holds.
    fn claim(
        db: &Database,
        cursors: &ClaimCursors,
        q: &QueueRef,
        limit: u32,
        ttl: u32,
        at: u64,
    ) -> (String, Vec<u64>) {
        let request = ClaimRequest {
            ttl,
            grace: 60,
            limit,
            dead_letter: None.into(),
        };
        let claim = commit(db, cursors, |t| {
            create(t, q, &request, at, ids::new_claim())
        });
        let seqs = claim.messages.iter().map(|m| m.seq).collect();
        (claim.id.to_string(), seqs)
    }

    /// Claims skip what earlier claims hold by starting past it, and still
    /// take every message that became takeable: a released claim's, an
    /// expired claim's, a claim shortened by an update's, a delayed one's.
    #[test]
    fn claims_start_past_held_messages_yet_miss_none_that_became_takeable() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        let cursors = ClaimCursors::default();
        let q = QueueRef::new("p", "q");
        for _ in 0..20 {
            post(&db, &cursors, &q, 0, T0);
        }
        let (a, held) = claim(&db, &cursors, &q, 5, 60, T0);
        assert_eq!(held, [1, 2, 3, 4, 5]);
        let (b, held) = claim(&db, &cursors, &q, 5, 120, T0);
        assert_eq!(held, [6, 7, 8, 9, 10]);
        let qid = commit(&db, &cursors, |t| queues::qid_of(&*t.queues, &q)).unwrap();
        let start = |at| BatchCursors::new(Some(&cursors)).start(qid, at);
        assert_eq!(
            start(T0),
            Some(Cursor {
                from: 11,
                valid_until_ms: T0 + 60 * SECOND
            }),
            "past both claims, until the first expires"
        );

        commit(&db, &cursors, |t| delete(t, &q, &a));
        assert_eq!(start(T0), None, "a release forgets the cursor");
        let (_, held) = claim(&db, &cursors, &q, 5, 60, T0);
        assert_eq!(held, [1, 2, 3, 4, 5], "released messages taken again");

        let later = T0 + 61 * SECOND;
        assert_eq!(start(later), None, "lapsed with the first claim");
        let (_, held) = claim(&db, &cursors, &q, 3, 60, later);
        assert_eq!(held, [1, 2, 3], "expired claim's messages taken again");
        let (_, held) = claim(&db, &cursors, &q, 10, 60, later);
        assert_eq!(held, [4, 5, 11, 12, 13, 14, 15, 16, 17, 18]);

        commit(&db, &cursors, |t| update(t, &q, &b, 1, 60, later));
        let (_, held) = claim(&db, &cursors, &q, 5, 60, later + 2 * SECOND);
        assert_eq!(held, [6, 7, 8, 9, 10], "a shortened claim's messages");

        // A scan from the start passes over a live claim shorter than its
        // own: the cursor lapses with that one.
        let s = QueueRef::new("p", "s");
        for _ in 0..6 {
            post(&db, &cursors, &s, 0, T0);
        }
        let (_, held) = claim(&db, &cursors, &s, 3, 30, T0);
        assert_eq!(held, [1, 2, 3]);
        let (y, _) = claim(&db, &cursors, &s, 3, 3_600, T0);
        commit(&db, &cursors, |t| delete(t, &s, &y));
        let (_, held) = claim(&db, &cursors, &s, 10, 3_600, T0);
        assert_eq!(held, [4, 5, 6]);
        let (_, held) = claim(&db, &cursors, &s, 10, 3_600, T0 + 30 * SECOND);
        assert_eq!(held, [1, 2, 3], "the short claim expired");

        // Delayed messages: passed over, taken once visible.
        let r = QueueRef::new("p", "r");
        post(&db, &cursors, &r, 100, T0);
        post(&db, &cursors, &r, 0, T0);
        let (_, held) = claim(&db, &cursors, &r, 10, 3_600, T0);
        assert_eq!(held, [2]);
        let (_, held) = claim(&db, &cursors, &r, 10, 3_600, T0 + 50 * SECOND);
        assert!(held.is_empty());
        let (_, held) = claim(&db, &cursors, &r, 10, 3_600, T0 + 100 * SECOND);
        assert_eq!(held, [1], "visible now");
    }
}
