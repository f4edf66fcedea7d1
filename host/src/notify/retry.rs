//! Zaqar's webhook retry policy: the waits before each attempt of a
//! delivery, from the subscription's `options._retry_policy` or the queue's
//! `_retry_policy`, with Zaqar's names and defaults.

use std::time::Duration;

use serde_json::{Map, Value};

/// Zaqar's `LINEAR_INTERVAL`: the step of the backoff series, in seconds.
const LINEAR_INTERVAL: i64 = 5;

/// A resolved policy.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub retries_with_no_delay: u32,
    pub minimum_delay_retries: u32,
    pub minimum_delay: i64,
    pub maximum_delay: i64,
    pub maximum_delay_retries: u32,
    pub backoff: Backoff,
}

/// `retry_backoff_function`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    Linear,
    Arithmetic,
    Geometric,
    Exponential,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries_with_no_delay: 3,
            minimum_delay_retries: 3,
            minimum_delay: 5,
            maximum_delay: 30,
            maximum_delay_retries: 3,
            backoff: Backoff::Linear,
        }
    }
}

fn object(value: Option<&Value>) -> Option<&Map<String, Value>> {
    value.and_then(Value::as_object).filter(|o| !o.is_empty())
}

fn overrides(policy: Option<&Map<String, Value>>) -> bool {
    policy
        .and_then(|p| p.get("ignore_subscription_override"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

impl RetryPolicy {
    /// Zaqar's choice: the queue's policy if either says
    /// `ignore_subscription_override`, else the subscription's if it has
    /// one, else the queue's, else the defaults. Policies were validated
    /// when stored; unreadable values fall back to the defaults.
    pub fn choose(subscription: Option<&Value>, queue: Option<&Value>) -> Self {
        let subscription = object(subscription);
        let queue = object(queue);
        let chosen = if overrides(subscription) || overrides(queue) {
            queue
        } else {
            subscription.or(queue)
        };
        chosen.map(Self::from_object).unwrap_or_default()
    }

    fn from_object(policy: &Map<String, Value>) -> Self {
        let defaults = Self::default();
        let int = |key: &str| policy.get(key).and_then(Value::as_i64).filter(|n| *n >= 0);
        let count = |key: &str, default: u32| int(key).map_or(default, |n| n.min(100) as u32);
        Self {
            retries_with_no_delay: count("retries_with_no_delay", defaults.retries_with_no_delay),
            minimum_delay_retries: count("minimum_delay_retries", defaults.minimum_delay_retries),
            minimum_delay: int("minimum_delay").unwrap_or(defaults.minimum_delay),
            maximum_delay: int("maximum_delay").unwrap_or(defaults.maximum_delay),
            maximum_delay_retries: count("maximum_delay_retries", defaults.maximum_delay_retries),
            backoff: match policy.get("retry_backoff_function").and_then(Value::as_str) {
                Some("arithmetic") => Backoff::Arithmetic,
                Some("geometric") => Backoff::Geometric,
                Some("exponential") => Backoff::Exponential,
                _ => Backoff::Linear,
            },
        }
    }

    /// The backoff series between `minimum_delay` and `maximum_delay`, in
    /// seconds, as Zaqar's `tasks/webhook.py` computes it.
    pub fn backoff_series(&self) -> Vec<i64> {
        let (min, max) = (self.minimum_delay, self.maximum_delay);
        let x_max = (max - min) / LINEAR_INTERVAL;
        if x_max < 2 || min <= 0 {
            return (min..max).step_by(LINEAR_INTERVAL as usize).collect();
        }
        match self.backoff {
            Backoff::Linear => (min..max).step_by(LINEAR_INTERVAL as usize).collect(),
            Backoff::Arithmetic => {
                let d = 2.0 * (max - min) as f64 / (x_max * (x_max - 1)) as f64;
                (1..=x_max)
                    .map(|a| (min as f64 + ((a - 1) * a) as f64 * d / 2.0) as i64)
                    .collect()
            }
            Backoff::Geometric => {
                let k = 10f64.powf((max as f64 / min as f64).log10() / (x_max - 1) as f64);
                (1..=x_max)
                    .map(|a| (min as f64 * k.powi((a - 1) as i32)) as i64)
                    .collect()
            }
            Backoff::Exponential => {
                let k = 10f64.powf((max as f64 / min as f64).log10() / (x_max - 1) as f64);
                let p = min as f64 / k;
                (1..=x_max).map(|a| (p * k.powi(a as i32)) as i64).collect()
            }
        }
    }

    /// The wait before each attempt: the first attempt at once, then
    /// `retries_with_no_delay` at once, `minimum_delay_retries` after
    /// `minimum_delay`, one after each step of the backoff series, and
    /// `maximum_delay_retries` after `maximum_delay`.
    pub fn waits(&self) -> Vec<Duration> {
        let seconds = |s: i64| Duration::from_secs(s.max(0) as u64);
        let mut waits = vec![Duration::ZERO];
        waits.extend((0..self.retries_with_no_delay).map(|_| Duration::ZERO));
        waits.extend((0..self.minimum_delay_retries).map(|_| seconds(self.minimum_delay)));
        waits.extend(self.backoff_series().into_iter().map(seconds));
        waits.extend((0..self.maximum_delay_retries).map(|_| seconds(self.maximum_delay)));
        waits
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn series(function: &str) -> Vec<i64> {
        RetryPolicy::choose(Some(&json!({"retry_backoff_function": function})), None)
            .backoff_series()
    }

    #[test]
    fn backoff_series_match_zaqars_with_default_delays() {
        assert_eq!(series("linear"), vec![5, 10, 15, 20, 25]);
        assert_eq!(series("arithmetic"), vec![5, 7, 12, 20, 30]);
        assert_eq!(series("geometric"), vec![5, 7, 12, 19, 30]);
        assert_eq!(series("exponential"), vec![5, 7, 12, 19, 30]);
    }

    #[test]
    fn default_policy_tries_sixteen_times() {
        let waits = RetryPolicy::default().waits();
        assert_eq!(waits.len(), 1 + 3 + 3 + 5 + 3);
        assert_eq!(waits[..4], [Duration::ZERO; 4]);
        assert_eq!(waits[4], Duration::from_secs(5));
        assert_eq!(*waits.last().unwrap(), Duration::from_secs(30));
    }

    #[test]
    fn subscription_policy_wins_unless_an_override_says_otherwise() {
        let subscription = json!({"retries_with_no_delay": 1});
        let queue = json!({"retries_with_no_delay": 7});
        assert_eq!(
            RetryPolicy::choose(Some(&subscription), Some(&queue)).retries_with_no_delay,
            1
        );
        let queue = json!({"retries_with_no_delay": 7, "ignore_subscription_override": true});
        assert_eq!(
            RetryPolicy::choose(Some(&subscription), Some(&queue)).retries_with_no_delay,
            7
        );
        assert_eq!(RetryPolicy::choose(None, None), RetryPolicy::default());
    }
}
