//! The run: set up queues, start the role workers, stop them by duration,
//! message count, Ctrl-C or a dead server, and collect their figures.

use std::{
    future::Future,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use hyper::body::Bytes;
use serde_json::{json, Value};
use tokio::{sync::watch, task::JoinSet};

use crate::{
    client::{Client, Identity, Target, TargetKind},
    progress::Progress,
    report::Summary,
    stats::{Failure, Live, Op, Stats},
};

/// Everything a run needs, already validated.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    pub target: Target,
    pub identity: Identity,
    pub producers: usize,
    pub consumers: usize,
    pub observers: usize,
    /// Stop after this long (always set: `--duration`, or the cap of a `--messages` run).
    pub duration: Duration,
    /// Stop once this many messages were posted (and, with consumers, consumed).
    pub messages: Option<u64>,
    pub message_size: usize,
    pub message_ttl: u64,
    pub batch: usize,
    pub queues: usize,
    pub queue_prefix: String,
    pub keep_queues: bool,
    pub claim_limit: usize,
    pub claim_ttl: u64,
    pub claim_grace: u64,
    pub bulk_delete: bool,
    pub list_limit: usize,
    /// A producer's idle time before each post.
    pub post_pause: Duration,
    pub empty_claim_backoff: Duration,
    pub timeout: Duration,
    pub progress: ProgressMode,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressMode {
    /// An indicatif line on a terminal, plain lines otherwise.
    Auto,
    /// Nothing until the summary.
    Off,
}

/// How a run ended.
#[derive(Debug)]
pub struct RunOutcome {
    pub summary: Summary,
    /// Ctrl-C stopped it.
    pub interrupted: bool,
    /// The server went away (a connection could not be reopened).
    pub fatal: Option<String>,
}

/// Errors before any load was sent.
#[derive(Debug)]
pub enum LoadError {
    /// The first connection failed: the server is down or the URL is wrong.
    Unreachable { url: String, reason: String },
    /// Queue setup was refused.
    Setup { url: String, reason: String },
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Unreachable { url, reason } => {
                write!(f, "cannot reach the server at {url}: {reason}")
            }
            LoadError::Setup { url, reason } => {
                write!(f, "setting up queues at {url} failed: {reason}")
            }
        }
    }
}

impl std::error::Error for LoadError {}

/// A message body of about `size` bytes of JSON: `{"data":"xxx…"}`.
pub fn message_body(size: usize) -> Value {
    const OVERHEAD: usize = r#"{"data":""}"#.len();
    json!({ "data": "x".repeat(size.saturating_sub(OVERHEAD)) })
}

/// Shared state of a run.
struct Control {
    stop: AtomicBool,
    /// Wakes the workers' requests in flight when the run is stopped.
    stop_signal: watch::Sender<bool>,
    deadline: Instant,
    /// Messages handed out to producers (a producer takes a batch at a time).
    post_slots: AtomicU64,
    /// Messages deleted by consumers.
    consumed: AtomicU64,
    producers_running: AtomicUsize,
    consumers_running: AtomicUsize,
    fatal: Mutex<Option<String>>,
    live: Live,
}

impl Control {
    fn should_stop(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || Instant::now() >= self.deadline
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.stop_signal.send_replace(true);
    }

    fn fail(&self, reason: String) {
        let mut fatal = self.fatal.lock().unwrap_or_else(|e| e.into_inner());
        if fatal.is_none() {
            *fatal = Some(reason);
        }
        drop(fatal);
        self.stop();
    }
}

/// One worker's recording handle.
struct Recorder {
    stats: Arc<Mutex<Stats>>,
    control: Arc<Control>,
}

impl Recorder {
    /// Records a request; answers false when the run must end (server gone).
    fn record<T>(
        &self,
        op: Op,
        started: Instant,
        result: &Result<T, Failure>,
        messages: impl FnOnce(&T) -> u64,
    ) -> bool {
        let (latency, outcome) = match result {
            Ok(value) => (Some(started.elapsed()), Ok(messages(value))),
            Err(failure @ Failure::Status(_)) | Err(failure @ Failure::BadResponse(_)) => {
                (Some(started.elapsed()), Err(failure))
            }
            Err(failure) => (None, Err(failure)),
        };
        let moved = *outcome.as_ref().unwrap_or(&0);
        self.control.live.add(op, moved, outcome.is_err());
        self.stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(op, latency, outcome);
        if let Err(Failure::Connect(reason)) = result {
            self.control.fail(reason.clone());
            return false;
        }
        true
    }
}

/// Runs the load until it ends by itself or `interrupt` resolves.
pub async fn run(
    config: LoadConfig,
    interrupt: impl Future<Output = ()>,
) -> Result<RunOutcome, LoadError> {
    let queues: Vec<String> = (0..config.queues.max(1))
        .map(|i| format!("{}-{i}", config.queue_prefix))
        .collect();

    // Preflight: one connection that must work, then the queues.
    let mut setup = Client::new(&config.target, &config.identity, config.timeout);
    setup
        .connect()
        .await
        .map_err(|failure| LoadError::Unreachable {
            url: config.target.url.clone(),
            reason: match failure {
                Failure::Connect(reason) => reason,
                other => other.to_string(),
            },
        })?;
    for queue in &queues {
        setup
            .create_queue(queue)
            .await
            .map_err(|failure| LoadError::Setup {
                url: config.target.url.clone(),
                reason: format!("creating queue {queue}: {failure}"),
            })?;
    }

    let started = Instant::now();
    let control = Arc::new(Control {
        stop: AtomicBool::new(false),
        stop_signal: watch::channel(false).0,
        deadline: started + config.duration,
        post_slots: AtomicU64::new(0),
        consumed: AtomicU64::new(0),
        producers_running: AtomicUsize::new(config.producers),
        consumers_running: AtomicUsize::new(config.consumers),
        fatal: Mutex::new(None),
        live: Live::default(),
    });
    let config = Arc::new(config);
    let queues = Arc::new(queues);
    let body = message_body(config.message_size);
    let mut worker_stats = Vec::new();
    let mut workers = JoinSet::new();
    let mut spawn = |role: Role, index: usize| {
        let stats = Arc::new(Mutex::new(Stats::default()));
        worker_stats.push(stats.clone());
        let recorder = Recorder {
            stats,
            control: control.clone(),
        };
        let worker = Worker {
            client: Client::new(&config.target, &config.identity, config.timeout),
            config: config.clone(),
            queues: queues.clone(),
            recorder,
            index,
            stop: control.stop_signal.subscribe(),
        };
        match role {
            Role::Producer => {
                let http_body = Bytes::from(
                    json!({ "messages": vec![json!({"ttl": config.message_ttl, "body": body}); config.batch] })
                        .to_string(),
                );
                let ws_messages =
                    vec![json!({"ttl": config.message_ttl, "body": body}); config.batch];
                workers.spawn(worker.produce(http_body, ws_messages))
            }
            Role::Consumer => workers.spawn(worker.consume()),
            Role::Observer => workers.spawn(worker.observe()),
        };
    };
    for index in 0..config.producers {
        spawn(Role::Producer, index);
    }
    for index in 0..config.consumers {
        spawn(Role::Consumer, index);
    }
    for index in 0..config.observers {
        spawn(Role::Observer, index);
    }

    let progress = Progress::start(
        config.progress,
        started,
        config.duration,
        config.messages,
        &control.live,
    );
    let mut interrupted = false;
    tokio::pin!(interrupt);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            joined = workers.join_next() => {
                if joined.is_none() {
                    break;
                }
            }
            _ = &mut interrupt, if !interrupted => {
                interrupted = true;
                control.stop();
                progress.note("interrupted: finishing the requests in flight");
                // Requests in flight end within the timeout; after that, give up on them.
                let grace = config.timeout + Duration::from_secs(1);
                if tokio::time::timeout(grace, async { while workers.join_next().await.is_some() {} })
                    .await
                    .is_err()
                {
                    workers.abort_all();
                }
                break;
            }
            _ = tick.tick() => progress.update(&control.live),
        }
    }
    let elapsed = started.elapsed();
    progress.finish();

    let mut stats = Stats::default();
    for worker in &worker_stats {
        stats.merge(&worker.lock().unwrap_or_else(|e| e.into_inner()));
    }
    let fatal = control
        .fatal
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();

    if !config.keep_queues && fatal.is_none() {
        // Best effort, and never long: the figures are already taken.
        let teardown = async {
            for queue in queues.iter() {
                if setup.delete_queue(queue).await.is_err() {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(config.timeout.min(Duration::from_secs(5)), teardown).await;
    }

    let summary = Summary::new(&config, &stats, elapsed, interrupted);
    Ok(RunOutcome {
        summary,
        interrupted,
        fatal,
    })
}

#[derive(Clone, Copy)]
enum Role {
    Producer,
    Consumer,
    Observer,
}

struct Worker {
    client: Client,
    config: Arc<LoadConfig>,
    queues: Arc<Vec<String>>,
    recorder: Recorder,
    index: usize,
    stop: watch::Receiver<bool>,
}

/// Runs one request unless the run ends first (deadline, Ctrl-C, dead
/// server): a request still in flight then is abandoned and not counted, so
/// the rates cover exactly the run's time, as a slow server cannot stretch it.
async fn within<F: Future>(
    control: &Control,
    stop: &mut watch::Receiver<bool>,
    request: F,
) -> Option<F::Output> {
    let deadline = tokio::time::Instant::from_std(control.deadline);
    tokio::select! {
        biased;
        output = request => Some(output),
        _ = tokio::time::sleep_until(deadline) => None,
        _ = stop.wait_for(|stopped| *stopped) => None,
    }
}

impl Worker {
    fn control(&self) -> &Control {
        &self.recorder.control
    }

    /// Queue `round` of this worker: workers start spread over the queues and rotate.
    fn queue(&self, round: usize) -> &str {
        &self.queues[(self.index + round) % self.queues.len()]
    }

    async fn produce(mut self, http_body: Bytes, ws_messages: Vec<Value>) {
        let batch = self.config.batch as u64;
        let ws_messages = Value::Array(ws_messages);
        let mut round = 0usize;
        while !self.control().should_stop() {
            if let Some(limit) = self.config.messages {
                let first = self
                    .control()
                    .post_slots
                    .fetch_add(batch, Ordering::Relaxed);
                if first >= limit {
                    break;
                }
            }
            if !self.config.post_pause.is_zero() {
                let pause = tokio::time::sleep(self.config.post_pause);
                if within(&self.recorder.control, &mut self.stop, pause)
                    .await
                    .is_none()
                {
                    break;
                }
            }
            let queue = self.queue(round).to_string();
            round = round.wrapping_add(1);
            let started = Instant::now();
            let request = self.client.post(&queue, &http_body, &ws_messages);
            let Some(result) = within(&self.recorder.control, &mut self.stop, request).await else {
                break;
            };
            if !self.recorder.record(Op::Post, started, &result, |_| batch) {
                break;
            }
        }
        self.control()
            .producers_running
            .fetch_sub(1, Ordering::Relaxed);
    }

    /// Claims and deletes until the end; stops early once the producers are
    /// done (or there are none) and every queue came back empty in a row, or
    /// once a `--messages` run has consumed its count.
    async fn consume(mut self) {
        let mut round = 0usize;
        let mut empty_in_a_row = 0usize;
        let queues = self.queues.len();
        while !self.control().should_stop() {
            if let Some(limit) = self.config.messages {
                if self.control().consumed.load(Ordering::Relaxed) >= limit {
                    break;
                }
            }
            let queue = self.queue(round).to_string();
            round = round.wrapping_add(1);
            let started = Instant::now();
            let request = self.client.claim(
                &queue,
                self.config.claim_limit,
                self.config.claim_ttl,
                self.config.claim_grace,
            );
            let Some(result) = within(&self.recorder.control, &mut self.stop, request).await else {
                break;
            };
            let go_on = self
                .recorder
                .record(Op::Claim, started, &result, |claimed| {
                    claimed.as_ref().map_or(0, |c| c.message_ids.len() as u64)
                });
            if !go_on {
                break;
            }
            let claimed = match result {
                Ok(Some(claimed)) if !claimed.message_ids.is_empty() => claimed,
                Ok(_) => {
                    empty_in_a_row += 1;
                    let producers_done =
                        self.control().producers_running.load(Ordering::Relaxed) == 0;
                    if producers_done && empty_in_a_row >= queues {
                        break;
                    }
                    if !self.config.empty_claim_backoff.is_zero() {
                        tokio::time::sleep(self.config.empty_claim_backoff).await;
                    }
                    continue;
                }
                Err(_) => continue,
            };
            empty_in_a_row = 0;
            if self.config.bulk_delete {
                let started = Instant::now();
                let request = self.client.delete_many(&queue, &claimed.message_ids);
                let Some(result) = within(&self.recorder.control, &mut self.stop, request).await
                else {
                    break;
                };
                let count = claimed.message_ids.len() as u64;
                if result.is_ok() {
                    self.control().consumed.fetch_add(count, Ordering::Relaxed);
                }
                if !self
                    .recorder
                    .record(Op::DeleteMany, started, &result, |_| count)
                {
                    break;
                }
            } else {
                let mut go_on = true;
                for message_id in &claimed.message_ids {
                    // A run ends on time: what is left of the claim expires.
                    if self.control().should_stop() {
                        break;
                    }
                    let started = Instant::now();
                    let request = self.client.delete(&queue, message_id, &claimed.claim_id);
                    let Some(result) =
                        within(&self.recorder.control, &mut self.stop, request).await
                    else {
                        go_on = false;
                        break;
                    };
                    if result.is_ok() {
                        self.control().consumed.fetch_add(1, Ordering::Relaxed);
                    }
                    if !self.recorder.record(Op::Delete, started, &result, |_| 1) {
                        go_on = false;
                        break;
                    }
                }
                if !go_on {
                    break;
                }
            }
        }
        self.control()
            .consumers_running
            .fetch_sub(1, Ordering::Relaxed);
    }

    /// Lists the first page of each queue in turn until producers and
    /// consumers are done (or the deadline).
    async fn observe(mut self) {
        let mut round = 0usize;
        let mut requests = 0u64;
        let alone = self.config.producers == 0 && self.config.consumers == 0;
        while !self.control().should_stop() {
            if alone {
                if let Some(limit) = self.config.messages {
                    if requests >= limit {
                        break;
                    }
                }
            } else if self.control().producers_running.load(Ordering::Relaxed) == 0
                && self.control().consumers_running.load(Ordering::Relaxed) == 0
            {
                break;
            }
            let queue = self.queue(round).to_string();
            round = round.wrapping_add(1);
            requests += 1;
            let started = Instant::now();
            let request = self.client.list(&queue, self.config.list_limit);
            let Some(result) = within(&self.recorder.control, &mut self.stop, request).await else {
                break;
            };
            if !self
                .recorder
                .record(Op::List, started, &result, |count| *count)
            {
                break;
            }
        }
    }
}

impl LoadConfig {
    /// The transport and encoding, for reports.
    pub fn transport_name(&self) -> (&'static str, &'static str) {
        match self.target.kind {
            TargetKind::Http => ("http", "json"),
            TargetKind::WebSocket { msgpack: false } => ("websocket", "json"),
            TargetKind::WebSocket { msgpack: true } => ("websocket", "msgpack"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_body_has_the_requested_size() {
        assert_eq!(message_body(256).to_string().len(), 256);
        assert_eq!(message_body(1024).to_string().len(), 1024);
        assert_eq!(message_body(0).to_string(), r#"{"data":""}"#);
    }
}
