//! [`BlockingReceiver`]: the [`Receiver`] for synchronous tests (the
//! end-to-end suites, which drive a spawned server from plain `#[test]`s).

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::runtime::Runtime;

use crate::receiver::{Received, Receiver, Reply};

#[derive(Default)]
struct Script {
    statuses: VecDeque<u16>,
    delay: Duration,
}

/// An http receiver on 127.0.0.1 answering 200 (or as scripted) on its own
/// runtime; it stops when dropped.
pub struct BlockingReceiver {
    runtime: Option<Runtime>,
    inner: Receiver,
    script: Arc<Mutex<Script>>,
    received: Mutex<Vec<Received>>,
}

impl BlockingReceiver {
    /// A receiver on a free port that answers 200 at once.
    pub fn start() -> Self {
        Self::start_on(0)
    }

    /// A receiver on `port` (0 for any free one).
    pub fn start_on(port: u16) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("the receiver's runtime");
        let script = Arc::new(Mutex::new(Script::default()));
        let scripted = Arc::clone(&script);
        let inner = runtime.block_on(Receiver::start_on("127.0.0.1", port, false, move |_| {
            let mut script = scripted.lock().unwrap_or_else(|e| e.into_inner());
            let status = script.statuses.pop_front().unwrap_or(200);
            Reply::status(status).delay(script.delay)
        }));
        Self {
            runtime: Some(runtime),
            inner,
            script,
            received: Mutex::new(Vec::new()),
        }
    }

    /// A port nothing listens on (yet): bound, then released.
    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port()
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        self.inner.url(path)
    }

    /// Answers the next requests with these statuses, then 200.
    pub fn answer_with(&self, statuses: &[u16]) {
        self.lock_script().statuses = statuses.iter().copied().collect();
    }

    /// Waits this long before answering each request.
    pub fn delay(&self, delay: Duration) {
        self.lock_script().delay = delay;
    }

    /// Everything received so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        let mut received = self.received.lock().unwrap_or_else(|e| e.into_inner());
        received.extend(self.inner.received());
        received.clone()
    }

    /// Waits until at least `count` requests arrived (panics after `timeout`).
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Received> {
        self.wait_until(&format!("{count} requests"), timeout, |received| {
            received.len() >= count
        })
    }

    /// Waits until what arrived satisfies `done`, `what` in words (panics
    /// after `timeout`). For counts that must not include repeats, such as
    /// a delivery retried after a host was killed.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let received = self.received();
            if done(&received) {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "receiver did not get {what} in {timeout:?}; got {} requests: {received:?}",
                received.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn lock_script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for BlockingReceiver {
    fn drop(&mut self) {
        // Connections may be stalled mid-answer: don't wait for them.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
