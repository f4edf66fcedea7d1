//! Pushes to persistent connections: which open connection subscribed to
//! which queue, and the fan-out of new messages to them.
//!
//! A WebSocket `subscription_create` without a subscriber subscribes the
//! socket itself, as Zaqar does; a server-sent event stream is a
//! connection of its own with one subscription. The subscription is
//! indexed here by queue. Each queue with subscriptions on this host has
//! one **pump**: it waits on the queue's tail ([`crate::events`]), reads
//! the messages after the lowest cursor of the queue's subscriptions from
//! the store, and pushes each, in sequence order, to every subscription
//! whose cursor is behind it (and whose filter it passes). Reading from the
//! store rather than from the post makes a push reach connections on every
//! host sharing the store, keeps concurrent posts in sequence order, lets a
//! wake-up be missed without a message being missed, and makes history
//! (a subscription starting behind the queue's last seq) and live pushes
//! one stream with no seam: the cursor says where each subscription stands.
//!
//! A socket's subscriptions form its **session**: when the socket closes
//! they are kept (cursors, unacked pushes) for the configured time, and
//! `session_resume` on a new socket of the same project and client takes
//! them over.

mod frames;
mod helper;

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard, OnceLock,
    },
    time::{Duration, Instant},
};

use plugin_api::{
    storage::{MessageListQuery, MessageStore, MessageStoreBox, QueueRef, StoredMessage},
    transport::{PushFrame, PushSink, PushSinkBox},
    types::ROption,
};
use serde_json::Value;
use tokio::sync::Notify;

use self::frames::{gap_frame, push_frame, subscription_tail, SharedPush};
use crate::{
    api::clock,
    events::Events,
    notify::payload::{notification_json, Notified},
    streams::{filter::Filter, options::Gap, StreamsConfig},
};

/// Messages read from the store per pump round.
const PAGE: u32 = 100;
/// A pump with nothing announced looks again after this long anyway.
const IDLE_RECHECK: Duration = Duration::from_secs(30);
/// Back-off after the store failed.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// How a subscription's pushes are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A JSON text frame.
    Json,
    /// A MessagePack binary frame.
    MsgPack,
    /// A server-sent event (`id:`, `event:`, `data:`).
    ServerSentEvent,
}

/// Where a new subscription starts and what it wants.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    /// How pushes are written.
    pub format: Format,
    /// Messages after this seq are pushed.
    pub after_seq: u64,
    /// Announced before any message.
    pub gap: Option<Gap>,
    /// Messages not passing it are skipped (the cursor still advances).
    pub filter: Filter,
    /// Whether pushes wait for acks.
    pub acks: bool,
}

/// What a subscription has been sent but not acked.
#[derive(Default)]
struct AckWindow {
    /// Seq → when it is due again and the frame to send.
    unacked: BTreeMap<u64, (Instant, Vec<u8>)>,
}

struct SubscriptionState {
    /// The sequence number of the last message pushed (or skipped, or owed
    /// to it before it subscribed); only later ones are pushed.
    delivered: AtomicU64,
    /// A gap to announce before anything else.
    gap: Mutex<Option<Gap>>,
    /// Unacked pushes, for subscriptions with acks on.
    acks: Option<Mutex<AckWindow>>,
}

/// One subscription of a connection.
#[derive(Clone)]
struct Subscription {
    connection: String,
    subscription_id: String,
    format: Format,
    /// What every push to it ends with (see [`frames`]).
    tail: Arc<[u8]>,
    filter: Arc<Filter>,
    state: Arc<SubscriptionState>,
}

struct Connection {
    sink: Arc<PushSinkBox>,
    subscriptions: Vec<(QueueRef, String)>,
    session_id: String,
    /// Project and Client-ID of whoever subscribed first; only they may
    /// resume the session.
    owner: Option<(String, String)>,
    /// Sockets keep their session after they close; event streams do not.
    resumable: bool,
    /// The sink refused a frame (closed, or its reader too slow): nothing
    /// more is sent to it, and its cursors no longer hold the queue's pump
    /// back, so one stalled reader cannot starve the others on its queues.
    refused: Arc<AtomicBool>,
}

/// A closed socket's session, waiting to be resumed.
struct Detached {
    owner: Option<(String, String)>,
    subscriptions: Vec<(QueueRef, String)>,
    /// Which detachment this is, so an expiry timer of an earlier one
    /// (the session was resumed, then dropped again) leaves it alone.
    generation: u64,
}

#[derive(Default)]
struct QueuePushes {
    /// Shared with each round's targets (a round takes a reference, not a
    /// copy of the strings, per subscriber).
    subscriptions: Vec<Arc<Subscription>>,
    /// Wakes the queue's pump when a subscription is added, acked or
    /// resumed.
    added: Arc<Notify>,
    pumping: bool,
}

#[derive(Default)]
struct State {
    connections: HashMap<String, Connection>,
    by_queue: HashMap<QueueRef, QueuePushes>,
    sessions: HashMap<String, Detached>,
    generation: u64,
    /// Bumped whenever a queue's subscriptions, or the connections they
    /// are pushed to, change: the pumps keep their targets until then.
    layout: u64,
}

/// Limits the hub applies (from `[streams]`).
#[derive(Debug, Clone, Copy)]
struct Limits {
    ack_timeout: Duration,
    max_unacked: usize,
    session_ttl: Duration,
}

impl From<&StreamsConfig> for Limits {
    fn from(config: &StreamsConfig) -> Self {
        Self {
            ack_timeout: Duration::from_secs(config.ack_timeout),
            max_unacked: config.max_unacked,
            session_ttl: Duration::from_secs(config.session_ttl),
        }
    }
}

/// A subscription taken over by `session_resume`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resumed {
    /// The queue.
    pub queue: QueueRef,
    /// The subscription's id.
    pub subscription_id: String,
    /// The last seq pushed to it.
    pub cursor: u64,
}

/// Why a session could not be resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeRefused {
    /// No such session (never was, expired, or taken over already).
    Unknown,
    /// The session belongs to another project or client.
    NotOwner,
}

/// Which pushes an ack covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    /// These seqs.
    Seqs(Vec<u64>),
    /// Every seq up to this one.
    UpTo(u64),
}

/// Why an ack was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckRefused {
    /// The connection has no such subscription.
    Unknown,
    /// The subscription was made without acks.
    NotAcked,
}

/// The open connections of this node and what they subscribed to.
pub struct PushHub {
    state: Arc<Mutex<State>>,
    store: Arc<MessageStoreBox>,
    events: Arc<Events>,
    limits: Mutex<Limits>,
}

fn lock<T>(state: &Mutex<T>) -> MutexGuard<'_, T> {
    // The state stays consistent across a panic elsewhere: every mutation
    // below completes without calling out.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl PushHub {
    /// A hub reading messages from `store` when `events` announce them.
    pub fn new(store: Arc<MessageStoreBox>, events: Arc<Events>) -> Self {
        Self {
            state: Arc::default(),
            store,
            events,
            limits: Mutex::new(Limits::from(&StreamsConfig::default())),
        }
    }

    /// Applies `[streams]`.
    pub fn configure(&self, config: &StreamsConfig) {
        *lock(&self.limits) = Limits::from(config);
    }

    fn limits(&self) -> Limits {
        *lock(&self.limits)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The queue's tail, for listeners that read the store themselves.
    pub fn tail(&self, queue: &QueueRef) -> tokio::sync::watch::Receiver<u64> {
        self.events.tail(queue)
    }

    /// A socket opened.
    pub fn open(&self, connection: &str, sink: PushSinkBox) {
        self.open_connection(connection, sink, true);
    }

    /// A stream that is a connection of its own (server-sent events)
    /// opened; it has no session to resume once it closes.
    pub fn open_stream(&self, connection: &str, sink: PushSinkBox) {
        self.open_connection(connection, sink, false);
    }

    fn open_connection(&self, connection: &str, sink: PushSinkBox, resumable: bool) {
        self.state().connections.insert(
            connection.to_string(),
            Connection {
                sink: Arc::new(sink),
                subscriptions: Vec::new(),
                session_id: uuid::Uuid::new_v4().simple().to_string(),
                owner: None,
                resumable,
                refused: Arc::new(AtomicBool::new(false)),
            },
        );
    }

    /// A connection closed: forgets it and returns the subscriptions it
    /// held, for the caller to delete from the store. A socket's
    /// subscriptions are kept instead (and nothing returned) for the
    /// session's time to live; they are deleted when it runs out unless a
    /// new socket resumed them.
    pub fn close(&self, connection: &str) -> Vec<(QueueRef, String)> {
        let ttl = self.limits().session_ttl;
        let mut state = self.state();
        let Some(closed) = state.connections.remove(connection) else {
            return Vec::new();
        };
        state.layout += 1;
        if closed.resumable && !ttl.is_zero() && !closed.subscriptions.is_empty() {
            state.generation += 1;
            let generation = state.generation;
            state.sessions.insert(
                closed.session_id.clone(),
                Detached {
                    owner: closed.owner,
                    subscriptions: closed.subscriptions,
                    generation,
                },
            );
            let expiry = Expiry {
                state: self.state.clone(),
                store: self.store.clone(),
                session_id: closed.session_id,
                generation,
            };
            tokio::spawn(expiry.after(ttl));
            return Vec::new();
        }
        forget(&mut state, connection, &closed.subscriptions);
        closed.subscriptions
    }

    /// Whether the connection is open on this node.
    pub fn is_open(&self, connection: &str) -> bool {
        self.state().connections.contains_key(connection)
    }

    /// The connection's session id (one per socket).
    pub fn session_id(&self, connection: &str) -> Option<String> {
        self.state()
            .connections
            .get(connection)
            .map(|c| c.session_id.clone())
    }

    /// How many subscriptions the connection holds.
    pub fn subscription_count(&self, connection: &str) -> usize {
        self.state()
            .connections
            .get(connection)
            .map_or(0, |c| c.subscriptions.len())
    }

    /// Subscribes an open connection to a queue, from the message after
    /// `after_seq` on; pushes go out as binary (MsgPack) frames if
    /// `binary`. Returns false if the connection is not open (any more).
    pub fn subscribe(
        &self,
        connection: &str,
        queue: QueueRef,
        subscription_id: &str,
        binary: bool,
        after_seq: u64,
    ) -> bool {
        let spec = StreamSpec {
            format: if binary {
                Format::MsgPack
            } else {
                Format::Json
            },
            after_seq,
            gap: None,
            filter: Filter::default(),
            acks: false,
        };
        self.subscribe_with(connection, queue, subscription_id, None, spec)
    }

    /// Subscribes an open connection to a queue as `spec` says; `owner`
    /// (project, Client-ID) becomes the session's owner if it has none.
    /// Returns false if the connection is not open (any more).
    pub fn subscribe_with(
        &self,
        connection: &str,
        queue: QueueRef,
        subscription_id: &str,
        owner: Option<(String, String)>,
        spec: StreamSpec,
    ) -> bool {
        let mut state = self.state();
        let Some(open) = state.connections.get_mut(connection) else {
            return false;
        };
        if open
            .subscriptions
            .iter()
            .any(|(q, id)| q == &queue && id == subscription_id)
        {
            return true;
        }
        if open.owner.is_none() {
            open.owner = owner;
        }
        open.subscriptions
            .push((queue.clone(), subscription_id.to_string()));
        let subscription = Subscription {
            connection: connection.to_string(),
            subscription_id: subscription_id.to_string(),
            format: spec.format,
            tail: subscription_tail(spec.format, subscription_id).into(),
            filter: Arc::new(spec.filter),
            state: Arc::new(SubscriptionState {
                delivered: AtomicU64::new(spec.after_seq),
                gap: Mutex::new(spec.gap),
                acks: spec.acks.then(Mutex::default),
            }),
        };
        state.layout += 1;
        let pushes = state.by_queue.entry(queue.clone()).or_default();
        pushes.subscriptions.push(Arc::new(subscription));
        pushes.added.notify_one();
        if !pushes.pumping {
            pushes.pumping = true;
            let pump = Pump {
                state: self.state.clone(),
                store: self.store.clone(),
                tail: self.events.tail(&queue),
                added: pushes.added.clone(),
                queue,
                limits: self.limits(),
                targets: Vec::new(),
                layout: None,
            };
            tokio::spawn(pump.run());
        }
        true
    }

    /// Acks pushes of one of the connection's subscriptions; makes room in
    /// its unacked window.
    pub fn ack(
        &self,
        connection: &str,
        subscription_id: &str,
        ack: &Ack,
    ) -> Result<(), AckRefused> {
        let state = self.state();
        let queue = state
            .connections
            .get(connection)
            .and_then(|c| c.subscriptions.iter().find(|(_, id)| id == subscription_id))
            .map(|(queue, _)| queue)
            .ok_or(AckRefused::Unknown)?;
        let pushes = state.by_queue.get(queue).ok_or(AckRefused::Unknown)?;
        let subscription = pushes
            .subscriptions
            .iter()
            .find(|s| s.subscription_id == subscription_id)
            .ok_or(AckRefused::Unknown)?;
        let window = subscription
            .state
            .acks
            .as_ref()
            .ok_or(AckRefused::NotAcked)?;
        let mut window = lock(window);
        match ack {
            Ack::Seqs(seqs) => {
                for seq in seqs {
                    window.unacked.remove(seq);
                }
            }
            Ack::UpTo(last) => window.unacked.retain(|seq, _| seq > last),
        }
        pushes.added.notify_one();
        Ok(())
    }

    /// Takes over a closed socket's session: its subscriptions move to
    /// `connection`, which gets the session's id, and every unacked push is
    /// sent again first.
    pub fn resume(
        &self,
        connection: &str,
        session_id: &str,
        project: &str,
        client_id: &str,
    ) -> Result<Vec<Resumed>, ResumeRefused> {
        let mut state = self.state();
        let detached = state
            .sessions
            .get(session_id)
            .ok_or(ResumeRefused::Unknown)?;
        if detached
            .owner
            .as_ref()
            .is_some_and(|(p, c)| p != project || c != client_id)
        {
            return Err(ResumeRefused::NotOwner);
        }
        if !state.connections.contains_key(connection) {
            return Err(ResumeRefused::Unknown);
        }
        let detached = state
            .sessions
            .remove(session_id)
            .ok_or(ResumeRefused::Unknown)?;
        state.layout += 1;
        let mut resumed = Vec::new();
        for (queue, id) in &detached.subscriptions {
            let Some(pushes) = state.by_queue.get_mut(queue) else {
                continue;
            };
            let Some(subscription) = pushes
                .subscriptions
                .iter_mut()
                .find(|s| &s.subscription_id == id)
            else {
                continue;
            };
            // A round running now keeps the old connection's copy.
            Arc::make_mut(subscription).connection = connection.to_string();
            if let Some(window) = &subscription.state.acks {
                let now = Instant::now();
                for (due, _) in lock(window).unacked.values_mut() {
                    *due = now;
                }
            }
            resumed.push(Resumed {
                queue: queue.clone(),
                subscription_id: id.clone(),
                cursor: subscription.state.delivered.load(Ordering::SeqCst),
            });
            pushes.added.notify_one();
        }
        if let Some(open) = state.connections.get_mut(connection) {
            open.session_id = session_id.to_string();
            if open.owner.is_none() {
                open.owner = detached.owner;
            }
            open.subscriptions.extend(
                resumed
                    .iter()
                    .map(|r| (r.queue.clone(), r.subscription_id.clone())),
            );
        }
        Ok(resumed)
    }

    /// Forgets one subscription (deleted through the API).
    pub fn unsubscribe(&self, queue: &QueueRef, subscription_id: &str) {
        let mut state = self.state();
        state.layout += 1;
        let mut connection = None;
        if let Some(pushes) = state.by_queue.get_mut(queue) {
            pushes.subscriptions.retain(|s| {
                let matches = s.subscription_id == subscription_id;
                if matches {
                    connection = Some(s.connection.clone());
                }
                !matches
            });
            pushes.added.notify_one();
        }
        if let Some(open) = connection.and_then(|c| state.connections.get_mut(&c)) {
            open.subscriptions
                .retain(|(q, id)| !(q == queue && id == subscription_id));
        }
        for detached in state.sessions.values_mut() {
            detached
                .subscriptions
                .retain(|(q, id)| !(q == queue && id == subscription_id));
        }
    }

    /// Forgets every subscription of a deleted queue.
    pub fn forget_queue(&self, queue: &QueueRef) {
        let mut state = self.state();
        state.layout += 1;
        let Some(pushes) = state.by_queue.get_mut(queue) else {
            return;
        };
        let gone = std::mem::take(&mut pushes.subscriptions);
        pushes.added.notify_one();
        for subscription in gone {
            if let Some(open) = state.connections.get_mut(&subscription.connection) {
                open.subscriptions.retain(|(q, _)| q != queue);
            }
        }
        for detached in state.sessions.values_mut() {
            detached.subscriptions.retain(|(q, _)| q != queue);
        }
    }
}

/// Removes a connection's subscriptions from the queues' indexes.
fn forget(state: &mut State, connection: &str, subscriptions: &[(QueueRef, String)]) {
    for (queue, _) in subscriptions {
        if let Some(pushes) = state.by_queue.get_mut(queue) {
            pushes.subscriptions.retain(|s| s.connection != connection);
            pushes.added.notify_one();
        }
    }
}

/// Ends a detached session that was not resumed in time.
struct Expiry {
    state: Arc<Mutex<State>>,
    store: Arc<MessageStoreBox>,
    session_id: String,
    generation: u64,
}

impl Expiry {
    async fn after(self, ttl: Duration) {
        tokio::time::sleep(ttl).await;
        let expired = {
            let mut state = lock(&self.state);
            match state.sessions.get(&self.session_id) {
                Some(detached) if detached.generation == self.generation => {}
                _ => return,
            }
            let Some(detached) = state.sessions.remove(&self.session_id) else {
                return;
            };
            state.layout += 1;
            for (queue, id) in &detached.subscriptions {
                if let Some(pushes) = state.by_queue.get_mut(queue) {
                    pushes.subscriptions.retain(|s| &s.subscription_id != id);
                    pushes.added.notify_one();
                }
            }
            detached.subscriptions
        };
        tracing::debug!(session = %self.session_id, "socket session expired");
        for (queue, id) in expired {
            if let Err(error) = self.store.subscription_delete(queue, id.into()).await {
                tracing::warn!(%error, "could not delete the subscription of an expired session");
            }
        }
    }
}

/// A subscription as its queue's pump sees it. The pump keeps these from
/// round to round and builds them again only when the hub's subscriptions
/// or connections change ([`State::layout`]), so a round does no lookup
/// per subscription; and what the per-message loop reads of each
/// subscription is copied in here, so that loop touches one entry of one
/// vector, the cursor, and the sink, not a chain of shared objects.
struct Target {
    subscription: Arc<Subscription>,
    state: Arc<SubscriptionState>,
    /// What every push to it ends with.
    tail: Arc<[u8]>,
    binary: bool,
    /// It has a filter (messages are matched against it).
    filtered: bool,
    /// Its gap has not been announced yet: nothing else goes before it.
    gap_pending: bool,
    sink: Arc<PushSinkBox>,
    /// The sink refused a frame (connection closed or too slow): nothing
    /// more is sent to it. Never cleared: a refusing sink stays refused.
    refused: bool,
    /// The same, shared by every subscription of the connection.
    connection_refused: Arc<AtomicBool>,
    /// Pushed to with `push_batched` in the current round: its sink must
    /// be told to flush before the round ends.
    batched: bool,
}

impl Target {
    fn new(subscription: &Arc<Subscription>, connection: &Connection) -> Self {
        Self {
            subscription: subscription.clone(),
            state: subscription.state.clone(),
            tail: subscription.tail.clone(),
            binary: subscription.format == Format::MsgPack,
            filtered: !subscription.filter.is_empty(),
            gap_pending: lock(&subscription.state.gap).is_some(),
            sink: connection.sink.clone(),
            refused: connection.refused.load(Ordering::SeqCst),
            connection_refused: connection.refused.clone(),
            batched: false,
        }
    }

    fn window_full(&self, max_unacked: usize) -> bool {
        self.state
            .acks
            .as_ref()
            .is_some_and(|w| lock(w).unacked.len() >= max_unacked)
    }

    fn send(&mut self, payload: Vec<u8>) -> bool {
        if self.refused {
            return false;
        }
        let accepted = self.sink.push(PushFrame {
            binary: self.binary,
            payload: payload.into(),
        });
        self.note(accepted)
    }

    fn note(&mut self, accepted: bool) -> bool {
        if !accepted {
            self.refused = true;
            self.connection_refused.store(true, Ordering::SeqCst);
            tracing::debug!(
                connection = %self.subscription.connection,
                "push refused: connection closed or too slow"
            );
        }
        accepted
    }
}

/// The fan-out loop of one queue on this host.
struct Pump {
    state: Arc<Mutex<State>>,
    store: Arc<MessageStoreBox>,
    tail: tokio::sync::watch::Receiver<u64>,
    added: Arc<Notify>,
    queue: QueueRef,
    limits: Limits,
    /// The queue's subscriptions with an open connection.
    targets: Vec<Target>,
    /// The [`State::layout`] `targets` were built at.
    layout: Option<u64>,
}

impl Pump {
    async fn run(mut self) {
        loop {
            // Marked seen before the store is read: a post committing
            // during the round wakes the next wait instead of being
            // mistaken for one this round already read.
            self.tail.borrow_and_update();
            if !self.refresh_targets() {
                return;
            }
            self.announce_and_redeliver();
            let max_unacked = self.limits.max_unacked;
            let from = self
                .targets
                .iter()
                .filter(|t| !t.refused && !t.window_full(max_unacked))
                .map(|t| t.state.delivered.load(Ordering::SeqCst))
                .min();
            if let Some(from) = from {
                let query = MessageListQuery {
                    after_seq: ROption::RSome(from),
                    limit: PAGE,
                    exclude_client: ROption::RNone,
                    include_claimed: true,
                    include_delayed: true,
                };
                let page = match self
                    .store
                    .message_list(self.queue.clone(), query, clock::now_ms())
                    .await
                {
                    Ok(page) => page,
                    Err(error) => {
                        tracing::warn!(%error, queue = %self.queue.name, "cannot read messages to push; retrying");
                        tokio::time::sleep(STORE_RETRY).await;
                        continue;
                    }
                };
                let mut progressed = false;
                for message in page.iter() {
                    progressed |= self.push(message);
                }
                if page.len() as u32 == PAGE && progressed {
                    continue;
                }
            }
            let wait = next_due(&self.targets)
                .map(|due| due.saturating_duration_since(Instant::now()))
                .unwrap_or(IDLE_RECHECK)
                .min(IDLE_RECHECK);
            tokio::select! {
                changed = self.tail.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep(IDLE_RECHECK).await;
                    }
                }
                _ = self.added.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Brings `targets` up to date: the queue's subscriptions with an open
    /// connection now. Returns false (and the pump stops) when the queue
    /// has no subscription left at all.
    fn refresh_targets(&mut self) -> bool {
        let mut state = lock(&self.state);
        let State {
            connections,
            by_queue,
            layout,
            ..
        } = &mut *state;
        let Some(pushes) = by_queue.get_mut(&self.queue) else {
            self.targets.clear();
            return false;
        };
        if pushes.subscriptions.is_empty() {
            by_queue.remove(&self.queue);
            self.targets.clear();
            return false;
        }
        if self.layout == Some(*layout) {
            drop(state);
            // Another queue's pump may have found a connection refusing.
            for target in &mut self.targets {
                target.refused |= target.connection_refused.load(Ordering::SeqCst);
            }
            return true;
        }
        self.layout = Some(*layout);
        self.targets = pushes
            .subscriptions
            .iter()
            .filter_map(|s| Some(Target::new(s, connections.get(&s.connection)?)))
            .collect();
        true
    }

    /// Sends pending gaps and unacked pushes that are due.
    fn announce_and_redeliver(&mut self) {
        let now = Instant::now();
        for target in &mut self.targets {
            if !target.gap_pending && target.state.acks.is_none() {
                continue;
            }
            let state = target.state.clone();
            if target.gap_pending {
                let gap = *lock(&state.gap);
                match gap {
                    Some(gap) => {
                        let subscription = &target.subscription;
                        let frame = gap_frame(
                            &self.queue,
                            subscription.format,
                            &subscription.subscription_id,
                            &gap,
                        );
                        if target.send(frame) {
                            *lock(&state.gap) = None;
                            target.gap_pending = false;
                        }
                    }
                    None => target.gap_pending = false,
                }
            }
            let Some(window) = &state.acks else {
                continue;
            };
            let mut window = lock(window);
            for (due, payload) in window.unacked.values_mut() {
                if *due <= now {
                    if !target.send(payload.clone()) {
                        break;
                    }
                    *due = now + self.limits.ack_timeout;
                }
            }
        }
    }

    /// Pushes one message to every subscription behind it. A sink that
    /// refuses a frame (its transport closes it as a slow consumer) gets no
    /// more this round, nor does a subscription whose unacked window is
    /// full. Returns whether any cursor moved.
    fn push(&mut self, message: &StoredMessage) -> bool {
        let notified = Notified {
            queue: self.queue.name.as_str(),
            id: message.id.as_str(),
            seq: message.seq,
            ttl: message.ttl,
            body: &message.body,
        };
        // Encoded when the first target needs it, then shared by all.
        let document = OnceLock::new();
        let shared = OnceLock::new();
        let body = OnceLock::new();
        let round = Round {
            message,
            notified: &notified,
            document: &document,
            shared: &shared,
            body: &body,
            limits: &self.limits,
        };
        let tally = round.push_split(&mut self.targets);
        crate::metrics::global().pushes_of_message(tally.accepted, tally.refused);
        tally.progressed
    }
}

/// Fan-outs to at least this many subscriptions are shared with the
/// fan-out helper thread (see [`helper`]), where the machine has more than
/// one core: the last socket of a large fan-out is then written about half
/// as late. Below it, waking the helper costs more than it saves.
const SPLIT_FAN_OUT: usize = 512;

/// Targets per share of a shared fan-out. Each thread takes the next share
/// when done with its last, so when the helper gets a core late (the
/// machine busy), the thread that started first does more of the fan-out
/// instead of waiting for a fixed half. The WebSocket transport's batch
/// size, so that a share's pushes leave in one batch.
const SHARE: usize = 64;

/// What one fan-out round did.
#[derive(Default)]
struct Tally {
    progressed: bool,
    accepted: u64,
    refused: u64,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.progressed |= other.progressed;
        self.accepted += other.accepted;
        self.refused += other.refused;
    }
}

/// One message's fan-out: the message and its encodings, made once by
/// whichever target first needs them and shared by all (and by both
/// threads of a split fan-out).
struct Round<'a, 'd> {
    message: &'a StoredMessage,
    notified: &'a Notified<'a>,
    document: &'d OnceLock<Vec<u8>>,
    shared: &'a OnceLock<SharedPush<'d>>,
    body: &'a OnceLock<Option<Value>>,
    limits: &'a Limits,
}

impl Round<'_, '_> {
    /// Pushes to `targets`, shared by two threads when there are enough
    /// of them (see [`SPLIT_FAN_OUT`]).
    fn push_split(&self, targets: &mut [Target]) -> Tally {
        static CORES: OnceLock<usize> = OnceLock::new();
        let cores = *CORES.get_or_init(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        if targets.len() < SPLIT_FAN_OUT || cores < 2 {
            return self.push_to(targets);
        }
        // A lock per share only to hand it to one thread; never contended.
        let shares: Vec<Mutex<&mut [Target]>> = targets.chunks_mut(SHARE).map(Mutex::new).collect();
        let next = AtomicUsize::new(0);
        let take_shares = || {
            let mut tally = Tally::default();
            while let Some(share) = shares.get(next.fetch_add(1, Ordering::Relaxed)) {
                tally.add(self.push_to(&mut lock(share)));
            }
            tally
        };
        let (mut tally, theirs) = helper::join(take_shares, take_shares);
        tally.add(theirs);
        tally
    }

    /// Pushes to each of `targets` in turn, from this thread, then tells
    /// every sink pushed to to write what it batched.
    fn push_to(&self, targets: &mut [Target]) -> Tally {
        let message = self.message;
        let max_unacked = self.limits.max_unacked;
        let mut tally = Tally::default();
        for target in targets.iter_mut() {
            if target.refused || target.gap_pending {
                continue;
            }
            let state = &*target.state;
            if state.delivered.load(Ordering::SeqCst) >= message.seq {
                continue;
            }
            // Held across the send (a sink may write a batched push at
            // once, when its batch is full): the client may read the push
            // and ack it before this thread goes on, and that ack must
            // find the push in the window (else it stays unacked and comes
            // again).
            let mut window = state.acks.as_ref().map(|w| lock(w));
            if window
                .as_ref()
                .is_some_and(|w| w.unacked.len() >= max_unacked)
            {
                continue;
            }
            if target.filtered {
                let parsed: &Option<Value> = self
                    .body
                    .get_or_init(|| serde_json::from_slice(&message.body).ok());
                let filter = &target.subscription.filter;
                if !parsed.as_ref().is_some_and(|b| filter.matches_value(b)) {
                    state.delivered.store(message.seq, Ordering::SeqCst);
                    tally.progressed = true;
                    continue;
                }
            }
            let document: &Vec<u8> = self
                .document
                .get_or_init(|| notification_json(self.notified));
            let shared = self
                .shared
                .get_or_init(|| SharedPush::new(document, message.seq));
            let subscription = &*target.subscription;
            let (taken, kept) = match shared.shared(subscription.format) {
                Some(part) => {
                    let kept = window.as_ref().map(|_| [part, &target.tail].concat());
                    let taken = target.sink.push_batched(target.binary, part, &target.tail);
                    target.batched = true;
                    (taken, kept)
                }
                None => {
                    let payload = push_frame(
                        document,
                        message.seq,
                        subscription.format,
                        &subscription.subscription_id,
                    );
                    let kept = window.as_ref().map(|_| payload.clone());
                    let taken = target.sink.push(PushFrame {
                        binary: target.binary,
                        payload: payload.into(),
                    });
                    (taken, kept)
                }
            };
            if !taken {
                tally.refused += 1;
                drop(window);
                target.note(false);
                continue;
            }
            tally.accepted += 1;
            state.delivered.store(message.seq, Ordering::SeqCst);
            tally.progressed = true;
            if let (Some(window), Some(kept)) = (&mut window, kept) {
                window.unacked.insert(
                    message.seq,
                    (Instant::now() + self.limits.ack_timeout, kept),
                );
            }
        }
        // A transport may hold batched pushes until told to write them
        // (from this thread); each sink is told, since the targets may be
        // of several transports (a call on a sink whose batch is already
        // out costs next to nothing).
        for target in targets.iter_mut().filter(|t| t.batched) {
            target.batched = false;
            target.sink.flush_batch();
        }
        tally
    }
}

/// When the earliest unacked push of these targets falls due.
fn next_due(targets: &[Target]) -> Option<Instant> {
    targets
        .iter()
        .filter_map(|t| t.state.acks.as_ref())
        .filter_map(|window| lock(window).unacked.values().map(|(due, _)| *due).min())
        .min()
}
