//! Delivery leases: while a worker delivers a subscription it holds the
//! subscription's lease in the store, so that among the hosts sharing the
//! store one at a time delivers it. A host that dies stops renewing; once
//! its lease expires another host's worker takes the subscription over and
//! resumes from the durable cursor, so at most the attempt in flight at the
//! crash is repeated.

use std::time::{Duration, Instant};

use plugin_api::{
    storage::{MessageStore, MessageStoreBox, QueueRef},
    PluginError,
};

use crate::api::clock;

/// How long a lease lasts without renewal: how long a dead host's
/// subscriptions wait before another host takes them over.
pub const LEASE_TTL: Duration = Duration::from_secs(10);
/// A held lease is renewed when it is older than this.
const RENEW_AFTER: Duration = Duration::from_secs(3);

/// One subscription's lease as this host's worker sees it.
pub struct Lease {
    key: String,
    holder: String,
    renewed: Option<Instant>,
    /// The store has no leases: this host is alone and always holds it.
    alone: bool,
}

impl Lease {
    /// The lease of subscription `id` of `queue`, held as `host_id`.
    pub fn new(queue: &QueueRef, id: &str, host_id: &str) -> Self {
        Self {
            key: format!("notify/{}/{}/{id}", queue.project, queue.name),
            holder: host_id.to_string(),
            renewed: None,
            alone: false,
        }
    }

    /// Whether this host holds the lease now, taking or renewing it as
    /// needed. A store error counts as not holding it: better to wait than
    /// to deliver twice.
    pub async fn hold(&mut self, store: &MessageStoreBox) -> bool {
        if self.alone || self.renewed.is_some_and(|at| at.elapsed() < RENEW_AFTER) {
            return true;
        }
        let ttl_ms = LEASE_TTL.as_millis() as u64;
        let acquired = store
            .lease_acquire(
                self.key.as_str().into(),
                self.holder.as_str().into(),
                ttl_ms,
                clock::now_ms(),
            )
            .await;
        match acquired {
            Ok(true) => {
                self.renewed = Some(Instant::now());
                true
            }
            Ok(false) => {
                self.renewed = None;
                false
            }
            Err(error) => self.failed(error),
        }
    }

    fn failed(&mut self, error: PluginError) -> bool {
        if error.is_unsupported() {
            self.alone = true;
            return true;
        }
        tracing::warn!(%error, lease = %self.key, "cannot renew the delivery lease; waiting");
        self.renewed = None;
        false
    }

    /// Gives the lease up (the worker stops), so another host need not wait
    /// for it to expire.
    pub async fn release(&mut self, store: &MessageStoreBox) {
        if self.alone || self.renewed.take().is_none() {
            return;
        }
        let _ = store
            .lease_release(self.key.as_str().into(), self.holder.as_str().into())
            .await;
    }
}
