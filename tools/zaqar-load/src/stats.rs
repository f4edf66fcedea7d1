//! What the workers measure: per-operation counts, latency histograms and
//! failures, plus the lock-free live counters the progress line reads.

use std::{
    collections::BTreeMap,
    fmt,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use hdrhistogram::Histogram;

/// The operations the roles perform.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Op {
    /// Producers: `POST /v2/queues/{q}/messages` / `message_post`.
    Post,
    /// Consumers: `POST /v2/queues/{q}/claims` / `claim_create`.
    Claim,
    /// Consumers: `DELETE /v2/queues/{q}/messages/{id}?claim_id=` / `message_delete`.
    Delete,
    /// Consumers with `--bulk-delete`: `DELETE /v2/queues/{q}/messages?ids=` / `message_delete_many`.
    DeleteMany,
    /// Observers: `GET /v2/queues/{q}/messages` / `message_list`.
    List,
}

impl Op {
    pub const ALL: [Op; 5] = [Op::Post, Op::Claim, Op::Delete, Op::DeleteMany, Op::List];

    pub fn name(self) -> &'static str {
        match self {
            Op::Post => "post",
            Op::Claim => "claim",
            Op::Delete => "delete",
            Op::DeleteMany => "delete_many",
            Op::List => "list",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why a request did not succeed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The server answered with a non-2xx status.
    Status(u16),
    /// The connection failed while the request was in flight (reset, closed).
    Io(String),
    /// No answer within `--timeout`.
    Timeout,
    /// A 2xx answer that could not be understood.
    BadResponse(String),
    /// A new connection could not be opened: the server is down. Ends the run.
    Connect(String),
}

impl Failure {
    /// The key under which the failure is counted ("503", "io", ...).
    pub fn key(&self) -> String {
        match self {
            Failure::Status(code) => code.to_string(),
            Failure::Io(_) => "io".into(),
            Failure::Timeout => "timeout".into(),
            Failure::BadResponse(_) => "bad_response".into(),
            Failure::Connect(_) => "connect".into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Status(code) => write!(f, "status {code}"),
            Failure::Io(message) => write!(f, "connection error: {message}"),
            Failure::Timeout => write!(f, "timed out"),
            Failure::BadResponse(message) => write!(f, "bad response: {message}"),
            Failure::Connect(message) => write!(f, "cannot connect: {message}"),
        }
    }
}

/// Latencies are kept in microseconds, from 1 µs to 10 minutes, 3 digits.
const HIST_MAX_US: u64 = 600_000_000;

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("valid histogram bounds")
}

/// One operation's figures.
#[derive(Clone, Debug)]
pub struct OpStats {
    /// Requests that got an answer or failed (every attempt).
    pub requests: u64,
    /// Messages moved by the successful requests (posted, claimed, deleted, listed).
    pub messages: u64,
    /// Successful requests that moved no message (a claim answered 204, an empty page).
    pub empty: u64,
    /// Latency of every answered request (any status), in µs.
    pub latency: Histogram<u64>,
    /// Failures by key ("503", "io", "timeout", ...).
    pub errors: BTreeMap<String, u64>,
}

impl Default for OpStats {
    fn default() -> Self {
        OpStats {
            requests: 0,
            messages: 0,
            empty: 0,
            latency: new_histogram(),
            errors: BTreeMap::new(),
        }
    }
}

impl OpStats {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    fn merge(&mut self, other: &OpStats) {
        self.requests += other.requests;
        self.messages += other.messages;
        self.empty += other.empty;
        self.latency
            .add(&other.latency)
            .expect("same histogram bounds");
        for (key, count) in &other.errors {
            *self.errors.entry(key.clone()).or_default() += count;
        }
    }
}

/// All operations' figures of one worker (or, merged, of the run).
#[derive(Clone, Debug, Default)]
pub struct Stats {
    ops: [OpStats; 5],
}

impl Stats {
    pub fn op(&self, op: Op) -> &OpStats {
        &self.ops[op.index()]
    }

    /// Records one request: its latency when an answer came back, and either
    /// the number of messages it moved or why it failed.
    pub fn record(&mut self, op: Op, latency: Option<Duration>, result: Result<u64, &Failure>) {
        let stats = &mut self.ops[op.index()];
        stats.requests += 1;
        if let Some(latency) = latency {
            let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
            stats
                .latency
                .saturating_record(micros.clamp(1, HIST_MAX_US));
        }
        match result {
            Ok(0) => stats.empty += 1,
            Ok(messages) => stats.messages += messages,
            Err(failure) => *stats.errors.entry(failure.key()).or_default() += 1,
        }
    }

    pub fn merge(&mut self, other: &Stats) {
        for (mine, theirs) in self.ops.iter_mut().zip(other.ops.iter()) {
            mine.merge(theirs);
        }
    }
}

/// Counters shared by all workers for the live progress line.
#[derive(Debug, Default)]
pub struct Live {
    requests: [AtomicU64; 5],
    messages: [AtomicU64; 5],
    errors: AtomicU64,
}

/// A snapshot of [`Live`].
#[derive(Clone, Copy, Debug, Default)]
pub struct LiveSnapshot {
    pub requests: [u64; 5],
    pub messages: [u64; 5],
    pub errors: u64,
}

impl Live {
    pub fn add(&self, op: Op, messages: u64, failed: bool) {
        self.requests[op.index()].fetch_add(1, Ordering::Relaxed);
        if messages > 0 {
            self.messages[op.index()].fetch_add(messages, Ordering::Relaxed);
        }
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> LiveSnapshot {
        LiveSnapshot {
            requests: std::array::from_fn(|i| self.requests[i].load(Ordering::Relaxed)),
            messages: std::array::from_fn(|i| self.messages[i].load(Ordering::Relaxed)),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

impl LiveSnapshot {
    pub fn requests(&self, op: Op) -> u64 {
        self.requests[op.index()]
    }

    pub fn messages(&self, op: Op) -> u64 {
        self.messages[op.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_merges() {
        let mut a = Stats::default();
        a.record(Op::Post, Some(Duration::from_micros(100)), Ok(1));
        a.record(
            Op::Post,
            Some(Duration::from_micros(300)),
            Err(&Failure::Status(503)),
        );
        let mut b = Stats::default();
        b.record(Op::Post, None, Err(&Failure::Timeout));
        b.record(Op::Claim, Some(Duration::from_millis(2)), Ok(0));
        a.merge(&b);
        let post = a.op(Op::Post);
        assert_eq!(post.requests, 3);
        assert_eq!(post.messages, 1);
        assert_eq!(post.latency.len(), 2);
        assert_eq!(post.errors.get("503"), Some(&1));
        assert_eq!(post.errors.get("timeout"), Some(&1));
        assert_eq!(a.op(Op::Claim).empty, 1);
    }
}
