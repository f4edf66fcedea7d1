//! A histogram observed with three relaxed atomic additions and no lock,
//! so a request pays nanoseconds for its latency to be recorded.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use prometheus_client::encoding::MetricEncoder;

/// Request and store latencies, in nanoseconds: 0.5 ms … 10 s.
pub const LATENCY_NS: &[u64] = &[
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// Messages in one store write (a post, a claim, a bulk delete).
pub const BATCH_SIZES: &[u64] = &[1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];

/// Observations counted into fixed buckets (`value <= bound`), with their
/// sum; `scale` turns the integer unit into the exposed one (ns → s).
#[derive(Debug)]
pub struct AtomicHistogram {
    bounds: &'static [u64],
    scale: f64,
    /// One per bound, then the `+Inf` bucket.
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
}

impl AtomicHistogram {
    /// An empty histogram over `bounds` (ascending).
    pub fn new(bounds: &'static [u64], scale: f64) -> Self {
        Self {
            bounds,
            scale,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, value: u64) {
        let bucket = self.bounds.partition_point(|&bound| bound < value);
        self.buckets[bucket].fetch_add(1, Relaxed);
        self.sum.fetch_add(value, Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Relaxed)).sum()
    }

    /// Writes the histogram; the count is the buckets' total, so a scrape
    /// racing an observation still reads a consistent `+Inf` bucket.
    pub fn encode(&self, mut encoder: MetricEncoder) -> std::fmt::Result {
        let buckets: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .map(|&bound| bound as f64 * self.scale)
            .chain([f64::INFINITY])
            .zip(self.buckets.iter().map(|b| b.load(Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = self.sum.load(Relaxed) as f64 * self.scale;
        encoder
            .encode_histogram::<prometheus_client::encoding::NoLabelSet>(sum, count, &buckets, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_on_a_bound_counts_in_that_bucket() {
        let histogram = AtomicHistogram::new(BATCH_SIZES, 1.0);
        for value in [1, 2, 3, 1000, 1001] {
            histogram.observe(value);
        }
        let counts: Vec<u64> = histogram.buckets.iter().map(|b| b.load(Relaxed)).collect();
        assert_eq!(counts, [1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1]);
        assert_eq!(histogram.count(), 5);
        assert_eq!(histogram.sum.load(Relaxed), 2007);
    }
}
