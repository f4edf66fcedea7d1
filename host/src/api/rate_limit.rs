//! The per-project rate limit (`[server] rate_limit_per_project`): a token
//! bucket per project, refilled at the configured rate, holding at most
//! `rate_limit_burst` requests. Applied once a request's project is known,
//! to HTTP requests and WebSocket frames alike, so one tenant cannot starve
//! the others.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::Instant,
};

use super::errors::ApiError;

/// Buckets kept before idle (full) ones are dropped.
const PRUNE_AT: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

/// Token buckets by project.
#[derive(Debug)]
pub struct RateLimit {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimit {
    /// A limit of `per_second` requests per project, with room for `burst`
    /// at once (at least one). `None` when `per_second` is 0 (off).
    pub fn new(per_second: f64, burst: u32) -> Option<Self> {
        (per_second > 0.0).then(|| Self {
            per_second,
            burst: if burst == 0 {
                per_second.max(1.0)
            } else {
                f64::from(burst)
            },
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes one request's token for `project`, or refuses it with the
    /// whole seconds until a token is back.
    pub fn admit(&self, project: &str) -> Result<(), ApiError> {
        self.admit_at(project, Instant::now())
    }

    fn admit_at(&self, project: &str, now: Instant) -> Result<(), ApiError> {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= PRUNE_AT && !buckets.contains_key(project) {
            let (per_second, burst) = (self.per_second, self.burst);
            buckets.retain(|_, bucket| refill(*bucket, now, per_second, burst).tokens < burst);
        }
        let bucket = match buckets.get_mut(project) {
            Some(bucket) => bucket,
            None => buckets.entry(project.to_string()).or_insert(Bucket {
                tokens: self.burst,
                refilled: now,
            }),
        };
        *bucket = refill(*bucket, now, self.per_second, self.burst);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - bucket.tokens) / self.per_second;
        crate::metrics::global().rate_limited();
        Err(ApiError::TooManyRequests {
            retry_after: (wait.ceil() as u64).max(1),
        })
    }
}

fn refill(bucket: Bucket, now: Instant, per_second: f64, burst: f64) -> Bucket {
    let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
    Bucket {
        tokens: (bucket.tokens + elapsed * per_second).min(burst),
        refilled: now,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_is_admitted_then_refused_until_tokens_come_back() {
        let limit = RateLimit::new(2.0, 3).unwrap();
        let start = Instant::now();
        for _ in 0..3 {
            limit.admit_at("p", start).unwrap();
        }
        let Err(ApiError::TooManyRequests { retry_after }) = limit.admit_at("p", start) else {
            panic!("the fourth request at once is refused");
        };
        assert_eq!(retry_after, 1);
        // Another project has its own bucket.
        limit.admit_at("q", start).unwrap();
        // Half a second later one token is back.
        limit
            .admit_at("p", start + Duration::from_millis(500))
            .unwrap();
        assert!(limit
            .admit_at("p", start + Duration::from_millis(500))
            .is_err());
    }

    #[test]
    fn zero_is_off() {
        assert!(RateLimit::new(0.0, 10).is_none());
    }
}
