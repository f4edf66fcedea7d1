//! The summary of a run: a table for people, JSON for scripts (`--json`).

use std::{collections::BTreeMap, fmt::Write as _, time::Duration};

use serde::Serialize;

use crate::{
    stats::{Op, OpStats, Stats},
    workload::LoadConfig,
};

/// The machine-readable summary (`--json`). Field names are stable.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub target: String,
    /// `http` or `websocket`.
    pub transport: String,
    /// `json` or `msgpack`.
    pub encoding: String,
    /// Seconds from the first request to the last worker's end.
    pub duration_s: f64,
    pub interrupted: bool,
    pub config: ConfigSummary,
    pub totals: Totals,
    /// One entry per operation performed: `post`, `claim`, `delete`, `delete_many`, `list`.
    pub operations: BTreeMap<String, OpSummary>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ConfigSummary {
    pub producers: usize,
    pub consumers: usize,
    pub observers: usize,
    pub queues: usize,
    pub message_size: usize,
    pub batch: usize,
    pub claim_limit: usize,
    pub bulk_delete: bool,
    pub messages: Option<u64>,
    pub duration_limit_s: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Totals {
    pub requests: u64,
    pub requests_per_s: f64,
    pub errors: u64,
    /// Failures by key over all operations ("503", "io", "timeout", ...).
    pub errors_by_status: BTreeMap<String, u64>,
    pub messages_posted: u64,
    /// Producer throughput.
    pub posted_per_s: f64,
    pub messages_claimed: u64,
    pub messages_deleted: u64,
    /// Consumer throughput (messages deleted).
    pub consumed_per_s: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct OpSummary {
    /// Every attempt, failed ones included.
    pub requests: u64,
    pub requests_per_s: f64,
    /// Messages moved by the successful requests.
    pub messages: u64,
    pub messages_per_s: f64,
    /// Successful requests that moved nothing (claim 204, empty page).
    pub empty: u64,
    pub errors: u64,
    pub errors_by_status: BTreeMap<String, u64>,
    /// Latency of answered requests, milliseconds.
    pub latency_ms: Latency,
}

#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    pub samples: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

impl OpSummary {
    fn new(stats: &OpStats, seconds: f64) -> OpSummary {
        let h = &stats.latency;
        let latency = if h.is_empty() {
            Latency {
                samples: 0,
                mean: 0.0,
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                max: 0.0,
            }
        } else {
            Latency {
                samples: h.len(),
                mean: h.mean() / 1000.0,
                p50: ms(h.value_at_quantile(0.50)),
                p90: ms(h.value_at_quantile(0.90)),
                p99: ms(h.value_at_quantile(0.99)),
                max: ms(h.max()),
            }
        };
        OpSummary {
            requests: stats.requests,
            requests_per_s: stats.requests as f64 / seconds,
            messages: stats.messages,
            messages_per_s: stats.messages as f64 / seconds,
            empty: stats.empty,
            errors: stats.error_count(),
            errors_by_status: stats.errors.clone(),
            latency_ms: latency,
        }
    }
}

impl Summary {
    pub fn new(
        config: &LoadConfig,
        stats: &Stats,
        elapsed: Duration,
        interrupted: bool,
    ) -> Summary {
        let seconds = elapsed.as_secs_f64().max(1e-6);
        let mut operations = BTreeMap::new();
        let mut requests = 0;
        let mut errors_by_status: BTreeMap<String, u64> = BTreeMap::new();
        for op in Op::ALL {
            let op_stats = stats.op(op);
            if op_stats.requests == 0 {
                continue;
            }
            requests += op_stats.requests;
            for (key, count) in &op_stats.errors {
                *errors_by_status.entry(key.clone()).or_default() += count;
            }
            operations.insert(op.name().to_string(), OpSummary::new(op_stats, seconds));
        }
        let posted = stats.op(Op::Post).messages;
        let deleted = stats.op(Op::Delete).messages + stats.op(Op::DeleteMany).messages;
        let (transport, encoding) = config.transport_name();
        Summary {
            target: config.target.url.clone(),
            transport: transport.into(),
            encoding: encoding.into(),
            duration_s: seconds,
            interrupted,
            config: ConfigSummary {
                producers: config.producers,
                consumers: config.consumers,
                observers: config.observers,
                queues: config.queues,
                message_size: config.message_size,
                batch: config.batch,
                claim_limit: config.claim_limit,
                bulk_delete: config.bulk_delete,
                messages: config.messages,
                duration_limit_s: config.duration.as_secs_f64(),
            },
            totals: Totals {
                requests,
                requests_per_s: requests as f64 / seconds,
                errors: errors_by_status.values().sum(),
                errors_by_status,
                messages_posted: posted,
                posted_per_s: posted as f64 / seconds,
                messages_claimed: stats.op(Op::Claim).messages,
                messages_deleted: deleted,
                consumed_per_s: deleted as f64 / seconds,
            },
            operations,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".into())
    }

    /// The table printed at the end of a run.
    pub fn to_text(&self) -> String {
        let c = &self.config;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "zaqar-load: {} ({} {}) {:.2} s{}: {} producers, {} consumers, {} observers, {} queues, {}-byte messages, {} per post",
            self.target,
            self.transport,
            self.encoding,
            self.duration_s,
            if self.interrupted { " (interrupted)" } else { "" },
            c.producers,
            c.consumers,
            c.observers,
            c.queues,
            c.message_size,
            c.batch,
        );
        let _ = writeln!(
            out,
            "{:<12} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7}",
            "operation",
            "requests",
            "req/s",
            "messages",
            "msg/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "errors"
        );
        for (name, op) in &self.operations {
            let l = &op.latency_ms;
            let _ = writeln!(
                out,
                "{:<12} {:>9} {:>9.0} {:>9} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>7}",
                name,
                op.requests,
                op.requests_per_s,
                op.messages,
                op.messages_per_s,
                l.p50,
                l.p90,
                l.p99,
                l.max,
                op.errors
            );
        }
        let t = &self.totals;
        let _ = writeln!(
            out,
            "total: {} requests ({:.0}/s); posted {} messages ({:.0}/s); consumed {} ({:.0}/s); {} errors",
            t.requests, t.requests_per_s, t.messages_posted, t.posted_per_s, t.messages_deleted, t.consumed_per_s, t.errors
        );
        let failing: Vec<String> = self
            .operations
            .iter()
            .filter(|(_, op)| op.errors > 0)
            .map(|(name, op)| {
                let detail: Vec<String> = op
                    .errors_by_status
                    .iter()
                    .map(|(key, count)| format!("{key} x{count}"))
                    .collect();
                format!("{name}: {}", detail.join(", "))
            })
            .collect();
        if !failing.is_empty() {
            let _ = writeln!(out, "errors by status: {}", failing.join("; "));
        }
        out
    }
}
