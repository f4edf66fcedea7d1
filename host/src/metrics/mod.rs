//! Prometheus metrics: what the server does, for operators.
//!
//! Everything counted on a request's path is a pre-allocated atomic,
//! indexed by route, transport and status, so serving a request adds a few
//! relaxed atomic additions and no allocation or label string. The
//! exposition (`GET /metrics`, admin only; see docs/operations.md) is
//! written by `prometheus-client` from those atomics at scrape time.
//!
//! Counters live in one process-wide [`Metrics`] ([`global`]): the hooks
//! in the push, notification and store paths are then one line each.

pub mod histogram;
pub mod listener;
pub mod process;

use std::{
    future::Future,
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        LazyLock, RwLock,
    },
    time::{Duration, Instant},
};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet},
    metrics::{counter::Counter, family::Family, gauge::Gauge, MetricType},
    registry::Registry,
};

use plugin_api::storage::{MessageStore, MessageStoreBox};

use crate::api::router::Action;

use self::histogram::{AtomicHistogram, BATCH_SIZES, LATENCY_NS};

/// The media type of the exposition (OpenMetrics text, which Prometheus
/// negotiates and parses).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What a request asked for, as the `route` label shows it: the action
/// (`queue_create`, ...) once known, else where it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// A routed action.
    Action(Action),
    /// `GET /`: the versions document.
    Versions,
    /// The WebSocket `authenticate` frame.
    Authenticate,
    /// `GET /metrics`.
    Metrics,
    /// A path no route matches, a method the route does not serve, or a
    /// frame naming no valid action.
    Unrouted,
}

const EXTRA_ROUTES: [(Route, &str); 4] = [
    (Route::Versions, "versions"),
    (Route::Authenticate, "authenticate"),
    (Route::Metrics, "metrics"),
    (Route::Unrouted, "unrouted"),
];
const ROUTES: usize = Action::COUNT + EXTRA_ROUTES.len();

impl Route {
    fn index(self) -> usize {
        match self {
            Route::Action(action) => action.index(),
            other => {
                Action::COUNT
                    + EXTRA_ROUTES
                        .iter()
                        .position(|(route, _)| *route == other)
                        .unwrap_or(EXTRA_ROUTES.len() - 1)
            }
        }
    }

    fn name_of(index: usize) -> &'static str {
        match index.checked_sub(Action::COUNT) {
            None => Action::ALL[index].name(),
            Some(extra) => EXTRA_ROUTES[extra].1,
        }
    }
}

/// The transport a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// HTTP (`wsgi`).
    Http = 0,
    /// WebSocket frames.
    WebSocket = 1,
}

const TRANSPORTS: [&str; 2] = ["http", "websocket"];

/// The statuses counted one by one; any other is counted as `other`.
const STATUSES: [u16; 25] = [
    200, 201, 204, 300, 304, 400, 401, 403, 404, 405, 406, 408, 409, 410, 411, 413, 414, 415, 429,
    431, 500, 501, 502, 503, 504,
];
const STATUS_SLOTS: usize = STATUSES.len() + 1;

fn status_slot(status: u16) -> usize {
    STATUSES
        .iter()
        .position(|&s| s == status)
        .unwrap_or(STATUSES.len())
}

/// A store write timed by the host around the store call (the store may
/// be a plugin it cannot see into).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    /// `message_post`.
    MessagePost = 0,
    /// `claim_create`.
    ClaimCreate = 1,
    /// `message_delete`.
    MessageDelete = 2,
    /// `message_delete_many` (by ids).
    MessageDeleteMany = 3,
    /// `message_pop`.
    MessagePop = 4,
}

const STORE_OPS: [&str; 5] = [
    "message_post",
    "claim_create",
    "message_delete",
    "message_delete_many",
    "message_pop",
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabels {
    namespace: String,
    name: String,
    origin: String,
    plugin_api: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabels {
    sink: String,
}

/// One notifier sink's counters, resolved once per scheme.
#[derive(Debug, Clone)]
struct SinkCounters {
    scheme: String,
    attempts_ok: Counter,
    attempts_failed: Counter,
    retries: Counter,
    gave_up: Counter,
}

/// Every metric of the process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// `[route][transport][status]`.
    requests: Box<[AtomicU64]>,
    /// `[route][transport]`.
    latency: Box<[AtomicHistogram]>,
    messages_posted: Counter,
    messages_claimed: Counter,
    messages_deleted: Counter,
    /// The store's own count, read at each scrape; `None` while the store
    /// cannot tell (then the family is left out).
    messages_expired: RwLock<Option<u64>>,
    websocket_open: Gauge,
    websocket_opened: Counter,
    pushes: Counter,
    pushes_refused: Counter,
    rate_limited: Counter,
    notification_attempts: Family<SinkLabels, Counter>,
    notification_failures: Family<SinkLabels, Counter>,
    notification_retries: Family<SinkLabels, Counter>,
    notification_gave_up: Family<SinkLabels, Counter>,
    sinks: RwLock<Vec<SinkCounters>>,
    store_latency: Box<[AtomicHistogram]>,
    store_batch: Box<[AtomicHistogram]>,
    plugins: Family<PluginLabels, Gauge>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn global() -> &'static Metrics {
    &METRICS
}

/// Writes the request, latency and store families from the atomics.
#[derive(Debug)]
struct AtomicsCollector;

impl Collector for AtomicsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let metrics = global();
        {
            let mut family = encoder.encode_descriptor(
                "zaqar_requests",
                "Requests (HTTP requests and WebSocket frames) answered, by route, transport and status.",
                None,
                MetricType::Counter,
            )?;
            for (i, count) in metrics.requests.iter().enumerate() {
                let count = count.load(Relaxed);
                if count == 0 {
                    continue;
                }
                let status = i % STATUS_SLOTS;
                let transport = (i / STATUS_SLOTS) % TRANSPORTS.len();
                let route = i / STATUS_SLOTS / TRANSPORTS.len();
                let status = STATUSES
                    .get(status)
                    .map_or_else(|| "other".to_string(), |s| s.to_string());
                let labels = [
                    ("route", Route::name_of(route)),
                    ("transport", TRANSPORTS[transport]),
                    ("status", status.as_str()),
                ];
                family
                    .encode_family(&labels)?
                    .encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(
                        &count, None,
                    )?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "zaqar_request_duration_seconds",
                "Time from a request reaching the API to its answer, by route and transport.",
                None,
                MetricType::Histogram,
            )?;
            for (i, histogram) in metrics.latency.iter().enumerate() {
                if histogram.count() == 0 {
                    continue;
                }
                let labels = [
                    ("route", Route::name_of(i / TRANSPORTS.len())),
                    ("transport", TRANSPORTS[i % TRANSPORTS.len()]),
                ];
                histogram.encode(family.encode_family(&labels)?)?;
            }
        }
        if let Some(expired) = *metrics
            .messages_expired
            .read()
            .unwrap_or_else(|e| e.into_inner())
        {
            // Named like the registered counters, which get `_total` appended.
            encoder
                .encode_descriptor(
                    "zaqar_messages_expired",
                    "Messages the store removed because their ttl ran out, since it opened.",
                    None,
                    MetricType::Counter,
                )?
                .encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(
                    &expired, None,
                )?;
        }
        for (name, help, histograms) in [
            (
                "zaqar_store_operation_duration_seconds",
                "Time a store write took, measured by the host around the store call.",
                &metrics.store_latency,
            ),
            (
                "zaqar_store_batch_messages",
                "Messages in one store write.",
                &metrics.store_batch,
            ),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
            for (op, histogram) in histograms.iter().enumerate() {
                if histogram.count() == 0 {
                    continue;
                }
                histogram.encode(family.encode_family(&[("operation", STORE_OPS[op])])?)?;
            }
        }
        Ok(())
    }
}

impl Metrics {
    fn new() -> Self {
        let counter = Counter::default;
        let metrics = Metrics {
            registry: Registry::default(),
            requests: (0..ROUTES * TRANSPORTS.len() * STATUS_SLOTS)
                .map(|_| AtomicU64::new(0))
                .collect(),
            latency: (0..ROUTES * TRANSPORTS.len())
                .map(|_| AtomicHistogram::new(LATENCY_NS, 1e-9))
                .collect(),
            messages_posted: counter(),
            messages_claimed: counter(),
            messages_deleted: counter(),
            messages_expired: RwLock::new(None),
            websocket_open: Gauge::default(),
            websocket_opened: counter(),
            pushes: counter(),
            pushes_refused: counter(),
            rate_limited: counter(),
            notification_attempts: Family::default(),
            notification_failures: Family::default(),
            notification_retries: Family::default(),
            notification_gave_up: Family::default(),
            sinks: RwLock::new(Vec::new()),
            store_latency: STORE_OPS
                .iter()
                .map(|_| AtomicHistogram::new(LATENCY_NS, 1e-9))
                .collect(),
            store_batch: STORE_OPS
                .iter()
                .map(|_| AtomicHistogram::new(BATCH_SIZES, 1.0))
                .collect(),
            plugins: Family::default(),
        };
        let mut registry = Registry::default();
        let r = &mut registry;
        r.register(
            "zaqar_messages_posted",
            "Messages posted.",
            metrics.messages_posted.clone(),
        );
        r.register(
            "zaqar_messages_claimed",
            "Messages handed out by claims.",
            metrics.messages_claimed.clone(),
        );
        r.register(
            "zaqar_messages_deleted",
            "Messages deleted by id, in bulk or popped.",
            metrics.messages_deleted.clone(),
        );
        r.register(
            "zaqar_websocket_connections",
            "WebSocket connections open now.",
            metrics.websocket_open.clone(),
        );
        r.register(
            "zaqar_websocket_connections_opened",
            "WebSocket connections opened.",
            metrics.websocket_opened.clone(),
        );
        r.register(
            "zaqar_websocket_pushes",
            "Messages pushed to WebSocket subscriptions.",
            metrics.pushes.clone(),
        );
        r.register(
            "zaqar_websocket_pushes_refused",
            "Pushes a connection refused because it was closing or too slow to read (its transport closes a slow consumer).",
            metrics.pushes_refused.clone(),
        );
        r.register(
            "zaqar_rate_limited_requests",
            "Requests refused with 429 by the per-project rate limit.",
            metrics.rate_limited.clone(),
        );
        r.register(
            "zaqar_notification_attempts",
            "Notification delivery attempts that succeeded, by sink.",
            metrics.notification_attempts.clone(),
        );
        r.register(
            "zaqar_notification_attempt_failures",
            "Notification delivery attempts that failed, by sink.",
            metrics.notification_failures.clone(),
        );
        r.register(
            "zaqar_notification_retries",
            "Notification delivery attempts after the first, by sink.",
            metrics.notification_retries.clone(),
        );
        r.register(
            "zaqar_notifications_undelivered",
            "Notifications given up after every retry (or refused for good), by sink.",
            metrics.notification_gave_up.clone(),
        );
        r.register(
            "zaqar_plugin",
            "Plugins loaded (1 each), by namespace, name, origin and plugin-api version.",
            metrics.plugins.clone(),
        );
        r.register_collector(Box::new(AtomicsCollector));
        r.register_collector(Box::new(process::ProcessCollector));
        Metrics {
            registry,
            ..metrics
        }
    }

    /// Counts one answered request and its latency.
    pub fn request(&self, route: Route, transport: Transport, status: u16, took: Duration) {
        let route_transport = route.index() * TRANSPORTS.len() + transport as usize;
        self.requests[route_transport * STATUS_SLOTS + status_slot(status)].fetch_add(1, Relaxed);
        self.latency[route_transport].observe(took.as_nanos() as u64);
    }

    /// Counts messages posted.
    pub fn posted(&self, messages: usize) {
        self.messages_posted.inc_by(messages as u64);
    }

    /// Counts messages handed out by a claim.
    pub fn claimed(&self, messages: usize) {
        self.messages_claimed.inc_by(messages as u64);
    }

    /// Counts messages deleted.
    pub fn deleted(&self, messages: usize) {
        self.messages_deleted.inc_by(messages as u64);
    }

    /// A WebSocket connection opened.
    pub fn websocket_opened(&self) {
        self.websocket_open.inc();
        self.websocket_opened.inc();
    }

    /// A WebSocket connection closed.
    pub fn websocket_closed(&self) {
        self.websocket_open.dec();
    }

    /// One message's pushes to socket subscriptions: how many sinks took
    /// it and how many refused it (counted once per message, not once per
    /// socket: a fan-out to thousands of sockets updates two counters).
    pub fn pushes_of_message(&self, accepted: u64, refused: u64) {
        if accepted > 0 {
            self.pushes.inc_by(accepted);
        }
        if refused > 0 {
            self.pushes_refused.inc_by(refused);
        }
    }

    /// A request refused by the rate limit.
    pub fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    /// Resolves the counters of the notifier sinks (by scheme) once.
    pub fn register_sinks<'a>(&self, schemes: impl IntoIterator<Item = &'a str>) {
        let mut sinks = self.sinks.write().unwrap_or_else(|e| e.into_inner());
        for scheme in schemes {
            if sinks.iter().any(|s| s.scheme == scheme) {
                continue;
            }
            let labels = SinkLabels {
                sink: scheme.to_string(),
            };
            sinks.push(SinkCounters {
                scheme: scheme.to_string(),
                attempts_ok: self.notification_attempts.get_or_create(&labels).clone(),
                attempts_failed: self.notification_failures.get_or_create(&labels).clone(),
                retries: self.notification_retries.get_or_create(&labels).clone(),
                gave_up: self.notification_gave_up.get_or_create(&labels).clone(),
            });
        }
    }

    /// Finds a subscriber's sink by its URI's scheme, without allocating.
    fn with_sink(&self, subscriber: &str, count: impl FnOnce(&SinkCounters)) {
        let sinks = self.sinks.read().unwrap_or_else(|e| e.into_inner());
        let found = sinks.iter().find(|sink| {
            let scheme = sink.scheme.as_bytes();
            subscriber.len() > scheme.len()
                && subscriber.as_bytes()[scheme.len()] == b':'
                && subscriber.as_bytes()[..scheme.len()].eq_ignore_ascii_case(scheme)
        });
        if let Some(sink) = found {
            count(sink);
        }
    }

    /// One notification delivery attempt (`attempt` counts from 0).
    pub fn notification_attempt(&self, subscriber: &str, attempt: usize, delivered: bool) {
        self.with_sink(subscriber, |sink| {
            if attempt > 0 {
                sink.retries.inc();
            }
            if delivered {
                sink.attempts_ok.inc();
            } else {
                sink.attempts_failed.inc();
            }
        });
    }

    /// A notification given up.
    pub fn notification_gave_up(&self, subscriber: &str) {
        self.with_sink(subscriber, |sink| {
            sink.gave_up.inc();
        });
    }

    /// A loaded plugin.
    pub fn plugin_loaded(&self, namespace: &str, name: &str, origin: &str, plugin_api: &str) {
        self.plugins
            .get_or_create(&PluginLabels {
                namespace: namespace.into(),
                name: name.into(),
                origin: origin.into(),
                plugin_api: plugin_api.into(),
            })
            .set(1);
    }

    /// Records a store write's duration and batch size.
    pub fn store_write(&self, op: StoreOp, took: Duration, messages: usize) {
        self.store_latency[op as usize].observe(took.as_nanos() as u64);
        self.store_batch[op as usize].observe(messages as u64);
    }

    /// Reads the store's count of expired messages for the next render;
    /// a store that cannot tell leaves the metric out.
    pub async fn read_store(&self, store: &MessageStoreBox) {
        let expired = store.messages_expired().await.ok();
        *self
            .messages_expired
            .write()
            .unwrap_or_else(|e| e.into_inner()) = expired;
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Runs a store call, timing it: `op`'s latency and batch size are
/// recorded when it succeeds (`batch` reads the size off its result).
pub async fn timed<T, E>(
    op: StoreOp,
    call: impl Future<Output = Result<T, E>>,
    batch: impl FnOnce(&T) -> usize,
) -> Result<T, E> {
    let started = Instant::now();
    let result = call.await;
    if let Ok(value) = &result {
        global().store_write(op, started.elapsed(), batch(value));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_its_own_slot_and_name() {
        let mut names: Vec<&str> = (0..ROUTES).map(Route::name_of).collect();
        assert_eq!(
            Route::name_of(Route::Action(Action::QueueCreate).index()),
            "queue_create"
        );
        assert_eq!(Route::name_of(Route::Unrouted.index()), "unrouted");
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ROUTES);
    }
}
