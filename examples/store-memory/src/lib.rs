//! An out-of-tree message store for zaqar-server: everything in memory,
//! behind one lock (each call is one atomic step), gone when the process
//! ends. Small enough to read whole; it passes the storage conformance suite
//! (`tests/conformance.rs`), which is the contract every store must keep.
//! The management store of the same name is in [`management`].

pub mod management;

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex, MutexGuard,
    },
};

use plugin_api::{
    storage::*,
    types::{
        ROption::{self, RNone, RSome},
        RString, RVec,
    },
    ErrorCode, PluginContext, PluginError, PluginResult,
};

type Key = (RString, RString); // (project, queue)

#[derive(Default)]
struct Queue {
    metadata: Vec<u8>,
    messages: BTreeMap<u64, StoredMessage>,
    claims: HashMap<RString, (u32, u64, u64)>, // id -> (ttl, updated_ms, expires_ms)
}

#[derive(Default)]
struct State {
    queues: BTreeMap<Key, Queue>,
    last_seq: HashMap<Key, u64>,
    // (project, queue, id): ids grow, so this is creation order.
    subscriptions: BTreeMap<(RString, RString, RString), SubscriptionRecord>,
    // Since plugin-api 1.1: who hears of changes, copies of messages owed
    // to subscribers, leases (key -> (holder, expires_ms)).
    sinks: Vec<ChangeSinkBox>,
    log: HashMap<Key, BTreeMap<u64, StoredMessage>>,
    leases: HashMap<RString, (RString, u64)>,
}

/// `[drivers.message_store.memory]` takes no options: any key is a typo.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoOptions {}

/// The `memory` message store.
#[derive(Default)]
pub struct MemoryStore(Mutex<State>);

impl MemoryStore {
    /// The constructor behind the `memory` entry point (no options).
    pub async fn open(context: PluginContext) -> PluginResult<Self> {
        let NoOptions {} = context.config()?;
        Ok(Self::default())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn new_id() -> RString {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{:024x}", NEXT.fetch_add(1, Ordering::Relaxed)).into()
}

fn key(queue: &QueueRef) -> Key {
    (queue.project.clone(), queue.name.clone())
}

fn error(code: ErrorCode, message: &str) -> PluginError {
    PluginError::new(code, message)
}

fn set_expiry(m: &mut StoredMessage, expires_ms: u64) {
    m.expires_ms = expires_ms;
    m.ttl = ((expires_ms.saturating_sub(m.created_ms) + 500) / 1000) as u32;
}

/// Claim stamp, and the grace rule: a message would expire before the claim
/// plus grace lives until then.
fn stamp(m: &mut StoredMessage, id: &RString, expires_ms: u64, grace: u32) {
    m.claim = RSome(ClaimStamp {
        id: id.clone(),
        expires_ms,
    });
    if m.expires_ms < expires_ms + grace as u64 * 1000 {
        set_expiry(m, expires_ms + grace as u64 * 1000);
    }
}

impl State {
    fn post(&mut self, key: &Key, client: &RString, new: NewMessage, now: u64) -> PostedMessage {
        let seq = self.last_seq.entry(key.clone()).or_default();
        *seq += 1;
        let (id, seq) = (new_id(), *seq);
        self.queues.entry(key.clone()).or_insert_with(|| Queue {
            metadata: b"{}".to_vec(),
            ..Queue::default()
        });
        let mut message = StoredMessage {
            id: id.clone(),
            seq,
            created_ms: now,
            expires_ms: 0,
            ttl: 0,
            visible_ms: now + new.delay as u64 * 1000,
            client_id: client.clone(),
            claim: RNone,
            claim_count: 0,
            body: new.body,
        };
        set_expiry(&mut message, now + new.ttl as u64 * 1000);
        if self.subscribed(key, now) {
            let log = self.log.entry(key.clone()).or_default();
            log.insert(seq, message.clone());
        }
        let queue = self.queues.get_mut(key).expect("created above");
        queue.messages.insert(seq, message);
        PostedMessage { id, seq }
    }

    fn subscribed(&self, (p, n): &Key, now: u64) -> bool {
        self.subscriptions
            .iter()
            .any(|((sp, sn, _), s)| (sp, sn) == (p, n) && s.expires_ms > now)
    }

    fn announce(&self, kind: ChangeKind, q: &Key, last_seq: u64, subscription: &str) {
        let queue = QueueRef::new(&q.0, &q.1);
        for sink in &self.sinks {
            sink.changed(QueueChange::new(
                kind,
                queue.clone(),
                last_seq,
                subscription,
            ));
        }
    }

    /// Drops log entries every live subscription of the queue has passed
    /// (all of them when none is left).
    fn prune_log(&mut self, (p, n): &Key, now: u64) {
        let passed = self
            .subscriptions
            .iter()
            .filter(|((sp, sn, _), s)| (sp, sn) == (p, n) && s.expires_ms > now)
            .map(|(_, s)| s.delivered_seq)
            .min();
        let key = (p.clone(), n.clone());
        match (passed, self.log.get_mut(&key)) {
            (None, _) => {
                self.log.remove(&key);
            }
            (Some(passed), Some(log)) => log.retain(|&seq, _| seq > passed),
            (Some(_), None) => {}
        }
    }

    fn live(&self, key: &Key, now: u64) -> impl Iterator<Item = &StoredMessage> {
        let messages = self.queues.get(key).map(|q| q.messages.values());
        messages
            .into_iter()
            .flatten()
            .filter(move |m| m.expires_ms > now)
    }

    fn live_subscription(
        &mut self,
        q: &QueueRef,
        id: RString,
        now: u64,
    ) -> PluginResult<&mut SubscriptionRecord> {
        match self
            .subscriptions
            .get_mut(&(q.project.clone(), q.name.clone(), id))
        {
            Some(s) if s.expires_ms > now => Ok(s),
            _ => Err(error(
                ErrorCode::SUBSCRIPTION_NOT_FOUND,
                "no such subscription",
            )),
        }
    }
}

impl MessageStore for MemoryStore {
    async fn queue_create(&self, q: QueueRef, metadata: RVec<u8>, _now: u64) -> PluginResult<bool> {
        let mut state = self.state();
        if state.queues.contains_key(&key(&q)) {
            return Ok(false);
        }
        state.queues.insert(
            key(&q),
            Queue {
                metadata: metadata.into_vec(),
                ..Queue::default()
            },
        );
        Ok(true)
    }

    async fn queue_get_metadata(&self, q: QueueRef) -> PluginResult<ROption<RVec<u8>>> {
        Ok(self
            .state()
            .queues
            .get(&key(&q))
            .map(|q| q.metadata.clone().into())
            .into())
    }

    async fn queue_set_metadata(&self, q: QueueRef, metadata: RVec<u8>) -> PluginResult<()> {
        match self.state().queues.get_mut(&key(&q)) {
            Some(queue) => {
                queue.metadata = metadata.into_vec();
                Ok(())
            }
            None => Err(error(ErrorCode::QUEUE_NOT_FOUND, "no such queue")),
        }
    }

    async fn queue_delete(&self, q: QueueRef) -> PluginResult<()> {
        let mut state = self.state();
        state.queues.remove(&key(&q));
        state
            .subscriptions
            .retain(|(p, n, _), _| (p, n) != (&q.project, &q.name));
        state.log.remove(&key(&q));
        state.announce(ChangeKind::QUEUE_DELETED, &key(&q), 0, "");
        Ok(())
    }

    async fn queue_list(
        &self,
        project: RString,
        query: QueueListQuery,
    ) -> PluginResult<RVec<QueueEntry>> {
        let state = self.state();
        let after = |name: &RString| query.marker.as_ref().map_or(true, |m| name > m);
        Ok(state
            .queues
            .iter()
            .filter(|((p, name), _)| *p == project && after(name))
            .take(query.limit as usize)
            .map(|((_, name), queue)| QueueEntry {
                name: name.clone(),
                metadata: if query.with_metadata {
                    queue.metadata.clone().into()
                } else {
                    RVec::new()
                },
            })
            .collect())
    }

    async fn queue_count(&self, project: RString) -> PluginResult<u64> {
        Ok(self
            .state()
            .queues
            .keys()
            .filter(|(p, _)| *p == project)
            .count() as u64)
    }

    async fn queue_stats(&self, q: QueueRef, now: u64) -> PluginResult<QueueStats> {
        let state = self.state();
        let live: Vec<&StoredMessage> = state.live(&key(&q), now).collect();
        let summary = |m: &&StoredMessage| MessageSummary {
            id: m.id.clone(),
            created_ms: m.created_ms,
        };
        let claimed = live.iter().filter(|m| m.is_claimed(now)).count() as u64;
        Ok(QueueStats {
            claimed,
            free: live.len() as u64 - claimed,
            total: live.len() as u64,
            oldest: live.first().map(summary).into(),
            newest: live.last().map(summary).into(),
        })
    }

    async fn message_post(
        &self,
        q: QueueRef,
        client: RString,
        messages: RVec<NewMessage>,
        now: u64,
    ) -> PluginResult<RVec<PostedMessage>> {
        let mut state = self.state();
        let posted: RVec<PostedMessage> = messages
            .into_iter()
            .map(|m| state.post(&key(&q), &client, m, now))
            .collect();
        if let Some(last) = posted.last() {
            state.announce(ChangeKind::MESSAGES, &key(&q), last.seq, "");
        }
        Ok(posted)
    }

    async fn message_list(
        &self,
        q: QueueRef,
        query: MessageListQuery,
        now: u64,
    ) -> PluginResult<RVec<StoredMessage>> {
        let state = self.state();
        let after = query.after_seq.unwrap_or(0);
        Ok(state
            .live(&key(&q), now)
            .filter(|m| m.seq > after && (query.include_claimed || !m.is_claimed(now)))
            .filter(|m| query.include_delayed || m.visible_ms <= now)
            .filter(|m| {
                query
                    .exclude_client
                    .as_ref()
                    .map_or(true, |c| &m.client_id != c)
            })
            .take(query.limit as usize)
            .cloned()
            .collect())
    }

    async fn message_get_many(
        &self,
        q: QueueRef,
        ids: RVec<RString>,
        now: u64,
    ) -> PluginResult<RVec<StoredMessage>> {
        let state = self.state();
        Ok(state
            .live(&key(&q), now)
            .filter(|m| ids.contains(&m.id))
            .cloned()
            .collect())
    }

    async fn message_delete(
        &self,
        q: QueueRef,
        id: RString,
        claim_id: ROption<RString>,
        now: u64,
    ) -> PluginResult<()> {
        let mut state = self.state();
        let Some(queue) = state.queues.get_mut(&key(&q)) else {
            return Ok(());
        };
        let Some((&seq, m)) = queue
            .messages
            .iter()
            .find(|(_, m)| m.id == id && m.expires_ms > now)
        else {
            return Ok(());
        };
        match (&m.claim, claim_id) {
            (RSome(c), given) if c.expires_ms > now && given.as_ref() != RSome(&c.id) => {
                return Err(error(
                    ErrorCode::MESSAGE_IS_CLAIMED,
                    "the message is claimed",
                ));
            }
            (RSome(c), _) if c.expires_ms > now => {}
            (_, RSome(given)) => {
                let live = queue.claims.get(&given).is_some_and(|c| c.2 > now);
                let code = if live {
                    ErrorCode::MESSAGE_NOT_CLAIMED
                } else {
                    ErrorCode::CLAIM_NOT_FOUND
                };
                return Err(error(code, "the message is not under this claim"));
            }
            _ => {}
        }
        queue.messages.remove(&seq);
        Ok(())
    }

    async fn message_delete_many(
        &self,
        q: QueueRef,
        ids: RVec<RString>,
        _now: u64,
    ) -> PluginResult<()> {
        if let Some(queue) = self.state().queues.get_mut(&key(&q)) {
            queue.messages.retain(|_, m| !ids.contains(&m.id));
        }
        Ok(())
    }

    async fn message_pop(
        &self,
        q: QueueRef,
        limit: u32,
        now: u64,
    ) -> PluginResult<RVec<StoredMessage>> {
        let mut state = self.state();
        let Some(queue) = state.queues.get_mut(&key(&q)) else {
            return Ok(RVec::new());
        };
        let seqs: Vec<u64> = queue
            .messages
            .values()
            .filter(|m| m.expires_ms > now && m.visible_ms <= now && !m.is_claimed(now))
            .take(limit as usize)
            .map(|m| m.seq)
            .collect();
        Ok(seqs
            .iter()
            .filter_map(|s| queue.messages.remove(s))
            .collect())
    }

    async fn message_purge(&self, q: QueueRef) -> PluginResult<()> {
        let mut state = self.state();
        if let Some(queue) = state.queues.get_mut(&key(&q)) {
            queue.messages.clear();
            queue.claims.clear();
        }
        state.announce(ChangeKind::QUEUE_PURGED, &key(&q), 0, "");
        Ok(())
    }

    async fn claim_create(
        &self,
        q: QueueRef,
        request: ClaimRequest,
        now: u64,
    ) -> PluginResult<StoredClaim> {
        let mut state = self.state();
        let (id, expires) = (new_id(), now + request.ttl as u64 * 1000);
        let mut claimed = RVec::new();
        let mut moved = Vec::new();
        if let Some(queue) = state.queues.get_mut(&key(&q)) {
            queue.claims.insert(id.clone(), (request.ttl, now, expires));
            for m in queue.messages.values_mut() {
                if claimed.len() == request.limit as usize {
                    break;
                }
                if m.expires_ms <= now || m.visible_ms > now || m.is_claimed(now) {
                    continue;
                }
                match &request.dead_letter {
                    RSome(dl) if m.claim_count >= dl.max_claim_count => moved.push(m.seq),
                    _ => {
                        m.claim_count += 1;
                        stamp(m, &id, expires, request.grace);
                        claimed.push(m.clone());
                    }
                }
            }
        }
        if let RSome(dl) = &request.dead_letter {
            let dlq = (q.project.clone(), dl.queue.clone());
            if !moved.is_empty() {
                let last = state.last_seq.get(&dlq).copied().unwrap_or(0) + moved.len() as u64;
                state.announce(ChangeKind::MESSAGES, &dlq, last, "");
            }
            for seq in moved {
                let m = state
                    .queues
                    .get_mut(&key(&q))
                    .and_then(|q| q.messages.remove(&seq))
                    .expect("found above");
                let new = NewMessage {
                    ttl: 0,
                    delay: 0,
                    body: m.body.clone(),
                };
                let posted = state.post(&dlq, &m.client_id, new, now);
                let copy = state
                    .queues
                    .get_mut(&dlq)
                    .and_then(|q| q.messages.get_mut(&posted.seq))
                    .expect("posted");
                *copy = StoredMessage {
                    id: posted.id,
                    seq: posted.seq,
                    claim: RNone,
                    visible_ms: now,
                    ..m
                };
                if let RSome(ttl) = dl.message_ttl {
                    set_expiry(copy, now + ttl as u64 * 1000);
                }
            }
        }
        Ok(StoredClaim {
            id,
            ttl: request.ttl,
            updated_ms: now,
            expires_ms: expires,
            messages: claimed,
        })
    }

    async fn claim_get(
        &self,
        q: QueueRef,
        id: RString,
        now: u64,
    ) -> PluginResult<ROption<StoredClaim>> {
        let state = self.state();
        let Some(&(ttl, updated_ms, expires_ms)) =
            state.queues.get(&key(&q)).and_then(|q| q.claims.get(&id))
        else {
            return Ok(RNone);
        };
        if expires_ms <= now {
            return Ok(RNone);
        }
        let mine =
            |m: &&StoredMessage| m.is_claimed(now) && matches!(&m.claim, RSome(c) if c.id == id);
        let messages = state.live(&key(&q), now).filter(mine).cloned().collect();
        Ok(RSome(StoredClaim {
            id,
            ttl,
            updated_ms,
            expires_ms,
            messages,
        }))
    }

    async fn claim_update(
        &self,
        q: QueueRef,
        id: RString,
        ttl: u32,
        grace: u32,
        now: u64,
    ) -> PluginResult<()> {
        let mut state = self.state();
        let queue = state.queues.get_mut(&key(&q));
        let Some(queue) = queue.filter(|q| q.claims.get(&id).is_some_and(|c| c.2 > now)) else {
            return Err(error(ErrorCode::CLAIM_NOT_FOUND, "no such claim"));
        };
        let expires = now + ttl as u64 * 1000;
        queue.claims.insert(id.clone(), (ttl, now, expires));
        for m in queue.messages.values_mut() {
            if m.expires_ms > now
                && matches!(&m.claim, RSome(c) if c.id == id && c.expires_ms > now)
            {
                stamp(m, &id, expires, grace);
            }
        }
        Ok(())
    }

    async fn claim_delete(&self, q: QueueRef, id: RString, now: u64) -> PluginResult<()> {
        if let Some(queue) = self.state().queues.get_mut(&key(&q)) {
            queue.claims.remove(&id);
            for m in queue.messages.values_mut() {
                if matches!(&m.claim, RSome(c) if c.id == id) {
                    m.claim = RSome(ClaimStamp {
                        id: id.clone(),
                        expires_ms: now,
                    });
                }
            }
        }
        Ok(())
    }

    async fn subscription_create(
        &self,
        q: QueueRef,
        new: NewSubscription,
        now: u64,
    ) -> PluginResult<SubscriptionCreated> {
        let mut state = self.state();
        let existing = state.subscriptions.iter().find(|((p, n, _), s)| {
            (p, n) == (&q.project, &q.name) && s.subscriber == new.subscriber && s.expires_ms > now
        });
        if let Some((_, s)) = existing {
            return Ok(SubscriptionCreated {
                id: s.id.clone(),
                created: false,
                confirmed: s.confirmed,
            });
        }
        let id = new_id();
        let record = SubscriptionRecord {
            id: id.clone(),
            queue: q.name.clone(),
            subscriber: new.subscriber,
            ttl: new.ttl,
            created_ms: now,
            expires_ms: now + new.ttl as u64 * 1000,
            options: new.options,
            confirmed: false,
            delivered_seq: state.last_seq.get(&key(&q)).copied().unwrap_or(0),
        };
        state
            .subscriptions
            .insert((q.project.clone(), q.name.clone(), id.clone()), record);
        state.announce(ChangeKind::SUBSCRIPTIONS, &key(&q), 0, &id);
        Ok(SubscriptionCreated {
            id,
            created: true,
            confirmed: false,
        })
    }

    async fn subscription_list(
        &self,
        q: QueueRef,
        query: SubscriptionListQuery,
        now: u64,
    ) -> PluginResult<RVec<SubscriptionRecord>> {
        let state = self.state();
        let after = |id: &RString| query.marker.as_ref().map_or(true, |m| id > m);
        Ok(state
            .subscriptions
            .iter()
            .filter(|((p, n, id), s)| {
                (p, n) == (&q.project, &q.name) && after(id) && s.expires_ms > now
            })
            .take(query.limit as usize)
            .map(|(_, s)| s.clone())
            .collect())
    }

    async fn subscription_get(
        &self,
        q: QueueRef,
        id: RString,
        now: u64,
    ) -> PluginResult<ROption<SubscriptionRecord>> {
        Ok(self
            .state()
            .live_subscription(&q, id, now)
            .ok()
            .cloned()
            .into())
    }

    async fn subscription_update(
        &self,
        q: QueueRef,
        id: RString,
        patch: SubscriptionPatch,
        now: u64,
    ) -> PluginResult<()> {
        let mut state = self.state();
        state.live_subscription(&q, id.clone(), now)?;
        if let RSome(subscriber) = &patch.subscriber {
            let taken = state.subscriptions.iter().any(|((p, n, other), s)| {
                (p, n) == (&q.project, &q.name)
                    && *other != id
                    && &s.subscriber == subscriber
                    && s.expires_ms > now
            });
            if taken {
                return Err(error(
                    ErrorCode::CONFLICT,
                    "another subscription has this subscriber",
                ));
            }
        }
        let s = state.live_subscription(&q, id.clone(), now)?;
        if let RSome(subscriber) = patch.subscriber {
            s.subscriber = subscriber
        }
        if let RSome(options) = patch.options {
            s.options = options
        }
        if let RSome(ttl) = patch.ttl {
            s.ttl = ttl;
            s.expires_ms = now + ttl as u64 * 1000;
        }
        state.announce(ChangeKind::SUBSCRIPTIONS, &key(&q), 0, &id);
        Ok(())
    }

    async fn subscription_confirm(
        &self,
        q: QueueRef,
        id: RString,
        confirmed: bool,
        now: u64,
    ) -> PluginResult<()> {
        let mut state = self.state();
        state.live_subscription(&q, id.clone(), now)?.confirmed = confirmed;
        state.announce(ChangeKind::SUBSCRIPTIONS, &key(&q), 0, &id);
        Ok(())
    }

    async fn subscription_delete(&self, q: QueueRef, id: RString) -> PluginResult<()> {
        let mut state = self.state();
        let key = key(&q);
        if state
            .subscriptions
            .remove(&(q.project, q.name, id.clone()))
            .is_some()
        {
            state.announce(ChangeKind::SUBSCRIPTIONS, &key, 0, &id);
        }
        // The call carries no clock: judge liveness by the wall clock.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        state.prune_log(&key, now);
        Ok(())
    }

    async fn subscription_scan(
        &self,
        marker: ROption<RString>,
        limit: u32,
        now: u64,
    ) -> PluginResult<SubscriptionScanPage> {
        let state = self.state();
        // The marker is the last entry's key, joined by NULs.
        let marker_key = marker.map(|m| m.split('\0').map(RString::from).collect::<Vec<_>>());
        let after = |(p, n, id): &(RString, RString, RString)| {
            marker_key.as_ref().map_or(true, |m| {
                [p, n, id].into_iter().cloned().collect::<Vec<_>>() > *m
            })
        };
        let entries: RVec<SubscriptionEntry> = state
            .subscriptions
            .iter()
            .filter(|(k, s)| after(k) && s.expires_ms > now)
            .take(limit as usize)
            .map(|((p, _, _), s)| SubscriptionEntry {
                project: p.clone(),
                record: s.clone(),
            })
            .collect();
        let next_marker = match entries.last() {
            Some(e) if entries.len() == limit as usize => {
                RSome(format!("{}\0{}\0{}", e.project, e.record.queue, e.record.id).into())
            }
            _ => RNone,
        };
        Ok(SubscriptionScanPage {
            entries,
            next_marker,
        })
    }

    async fn subscription_advance(
        &self,
        q: QueueRef,
        id: RString,
        seq: u64,
        now: u64,
    ) -> PluginResult<()> {
        let mut state = self.state();
        let s = state.live_subscription(&q, id, now)?;
        s.delivered_seq = s.delivered_seq.max(seq);
        state.prune_log(&key(&q), now);
        Ok(())
    }

    async fn queue_last_seq(&self, q: QueueRef) -> PluginResult<u64> {
        Ok(self.state().last_seq.get(&key(&q)).copied().unwrap_or(0))
    }

    async fn is_alive(&self) -> PluginResult<bool> {
        Ok(true)
    }

    // plugin-api 1.1: the change feed (in process), the notification log
    // and leases.

    async fn changes_watch(&self, sink: ChangeSinkBox) -> PluginResult<()> {
        self.state().sinks.push(sink);
        Ok(())
    }

    async fn notification_log(
        &self,
        q: QueueRef,
        after: u64,
        limit: u32,
        now: u64,
    ) -> PluginResult<RVec<StoredMessage>> {
        let state = self.state();
        let log = state
            .log
            .get(&key(&q))
            .into_iter()
            .flat_map(|l| l.range(after + 1..));
        Ok(log
            .map(|(_, m)| m)
            .filter(|m| m.expires_ms > now)
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn lease_acquire(
        &self,
        key: RString,
        holder: RString,
        ttl_ms: u64,
        now: u64,
    ) -> PluginResult<bool> {
        let mut state = self.state();
        let lease = state.leases.entry(key).or_insert((holder.clone(), 0));
        if lease.1 > now && lease.0 != holder {
            return Ok(false);
        }
        *lease = (holder, now + ttl_ms);
        Ok(true)
    }

    async fn lease_release(&self, key: RString, holder: RString) -> PluginResult<()> {
        let mut state = self.state();
        if state.leases.get(&key).is_some_and(|(h, _)| *h == holder) {
            state.leases.remove(&key);
        }
        Ok(())
    }
}

plugin_api::entry_points! {
    pub fn entry_points;
    message_store "memory" => MemoryStore::open,
    management_store "memory" => management::MemoryManagement::open,
}

plugin_api::export_plugin!(entry_points);
