//! The time limit on receiving a request's headers, apart from the
//! keep-alive idle limit.
//!
//! hyper has one timer for both (it starts when the connection waits for a
//! request), so a slow-header client could hold a connection for the whole
//! idle limit. The clock starts instead when the first byte of a request
//! arrives (seen by [`HeadWatchedIo`]) and stops when hyper hands the
//! request to the service.
//!
//! The watchdog is woken by its own timer only, never by a request: a
//! wake-up per request would make the connection's task wake itself while
//! it is being polled, which tokio answers by rescheduling the task and
//! waking an idle worker thread to steal it (see [`crate::repoll`], which
//! deals with hyper's own wake-up of the same kind). So the phase and the
//! time its head began share one atomic word, and the watchdog looks at it
//! when a head begun then could first be overdue.

use std::{
    io,
    pin::Pin,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::Instant,
};

/// No request under way: the connection waits (hyper's idle limit runs).
const IDLE: u64 = 0;
/// The head is complete and the request is being served.
const IN_REQUEST: u64 = u64::MAX;

/// Where one connection is in its request cycle: [`IDLE`], [`IN_REQUEST`],
/// or reading a head since the instant the word encodes (see
/// [`HeadClock::encode`]).
pub struct HeadClock {
    phase: AtomicU64,
    /// The instant phases are counted from.
    origin: Instant,
}

impl HeadClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            phase: AtomicU64::new(IDLE),
            origin: Instant::now(),
        })
    }

    /// The phase "reading a head since `at`": microseconds since `origin`,
    /// plus one so that it is never [`IDLE`].
    fn encode(&self, at: Instant) -> u64 {
        let micros = u64::try_from(at.duration_since(self.origin).as_micros()).unwrap_or(u64::MAX);
        micros.saturating_add(1).min(IN_REQUEST - 1)
    }

    /// When the head being read began, if one is.
    fn head_started(&self) -> Option<Instant> {
        match self.phase.load(Ordering::Acquire) {
            IDLE | IN_REQUEST => None,
            since => Some(self.origin + Duration::from_micros(since - 1)),
        }
    }

    fn bytes_arrived(&self) {
        // Only the first bytes of a head start its clock.
        if self.phase.load(Ordering::Acquire) != IDLE {
            return;
        }
        let now = self.encode(Instant::now());
        let _ = self
            .phase
            .compare_exchange(IDLE, now, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Marks the head complete; the returned guard marks the connection
    /// idle again when the request is answered (or abandoned).
    pub fn request_started(self: &Arc<Self>) -> InRequest {
        self.phase.store(IN_REQUEST, Ordering::Release);
        InRequest(self.clone())
    }

    /// Resolves when a head took longer than `limit`: looks every `limit`
    /// while no head is being read, and at the instant the head being read
    /// reaches it otherwise, so a slow head is cut when its limit passes.
    pub async fn overdue(&self, limit: Duration) {
        let mut look_at = Instant::now() + limit;
        loop {
            tokio::time::sleep_until(look_at).await;
            let now = Instant::now();
            look_at = match self.head_started() {
                Some(started) if now >= started + limit => return,
                Some(started) => started + limit,
                None => now + limit,
            };
        }
    }
}

/// The connection is serving a request; idle again when dropped.
pub struct InRequest(Arc<HeadClock>);

impl Drop for InRequest {
    fn drop(&mut self) {
        self.0.phase.store(IDLE, Ordering::Release);
    }
}

/// A stream that starts the head clock when bytes arrive on an idle
/// connection.
pub struct HeadWatchedIo<T> {
    inner: T,
    clock: Arc<HeadClock>,
}

impl<T> HeadWatchedIo<T> {
    pub fn new(inner: T, clock: Arc<HeadClock>) -> Self {
        Self { inner, clock }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for HeadWatchedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.clock.bytes_arrived();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for HeadWatchedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(10);

    /// When `overdue` resolves, counted from the start, within `horizon`.
    async fn overdue_after(clock: &Arc<HeadClock>, horizon: Duration) -> Option<Duration> {
        let start = Instant::now();
        tokio::time::timeout(horizon, clock.overdue(LIMIT))
            .await
            .ok()
            .map(|()| start.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_begun_mid_period_is_cut_when_its_own_limit_passes() {
        let clock = HeadClock::new();
        let watched = clock.clone();
        let watchdog = tokio::spawn(async move { overdue_after(&watched, LIMIT * 5).await });
        tokio::time::sleep(Duration::from_secs(7)).await;
        clock.bytes_arrived();
        // More bytes of the same head do not restart its clock.
        tokio::time::sleep(Duration::from_secs(5)).await;
        clock.bytes_arrived();
        let cut = watchdog.await.unwrap().expect("the slow head is cut");
        assert_eq!(cut, Duration::from_secs(17));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_or_one_whose_heads_complete_is_never_cut() {
        let clock = HeadClock::new();
        let watched = clock.clone();
        let watchdog = tokio::spawn(async move { overdue_after(&watched, LIMIT * 6).await });
        tokio::time::sleep(LIMIT * 2).await;
        // Requests whose heads each take most of the limit, one after another.
        for _ in 0..4 {
            clock.bytes_arrived();
            tokio::time::sleep(LIMIT - Duration::from_secs(1)).await;
            drop(clock.request_started());
        }
        assert_eq!(watchdog.await.unwrap(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_head_after_a_request_gets_a_clock_of_its_own() {
        let clock = HeadClock::new();
        clock.bytes_arrived();
        tokio::time::sleep(Duration::from_secs(9)).await;
        let in_request = clock.request_started();
        // Bytes while the request is served (its body) start no clock.
        clock.bytes_arrived();
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(in_request);
        let watched = clock.clone();
        let watchdog = tokio::spawn(async move { overdue_after(&watched, LIMIT * 5).await });
        tokio::time::sleep(Duration::from_secs(3)).await;
        clock.bytes_arrived();
        let cut = watchdog
            .await
            .unwrap()
            .expect("the second head, left unfinished, is cut");
        assert_eq!(cut, Duration::from_secs(13));
    }
}
