//! The time limit on receiving a request's headers, apart from the
//! keep-alive idle limit.
//!
//! hyper has one timer for both (it starts when the connection waits for a
//! request), so a slow-header client could hold a connection for the whole
//! idle limit. The clock starts instead when the first byte of a request
//! arrives (seen by [`HeadWatchedIo`]) and stops when hyper hands the
//! request to the service.

use std::{
    io,
    pin::Pin,
    sync::{
        atomic::{AtomicU64, AtomicU8, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::Notify,
    time::Instant,
};

const IDLE: u8 = 0;
const READING_HEAD: u8 = 1;
const IN_REQUEST: u8 = 2;

/// Where one connection is in its request cycle.
pub struct HeadClock {
    phase: AtomicU8,
    /// Counts heads started, so the watchdog can tell a new head from the
    /// one it was timing.
    heads: AtomicU64,
    started: std::sync::Mutex<Instant>,
    head_started: Notify,
}

impl HeadClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            phase: AtomicU8::new(IDLE),
            heads: AtomicU64::new(0),
            started: std::sync::Mutex::new(Instant::now()),
            head_started: Notify::new(),
        })
    }

    fn bytes_arrived(&self) {
        if self
            .phase
            .compare_exchange(IDLE, READING_HEAD, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            *self.started.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
            self.heads.fetch_add(1, Ordering::AcqRel);
            self.head_started.notify_one();
        }
    }

    /// Marks the head complete; the returned guard marks the connection
    /// idle again when the request is answered (or abandoned).
    pub fn request_started(self: &Arc<Self>) -> InRequest {
        self.phase.store(IN_REQUEST, Ordering::Release);
        InRequest(self.clone())
    }

    /// Resolves when a head took longer than `limit`.
    pub async fn overdue(&self, limit: Duration) {
        loop {
            if self.phase.load(Ordering::Acquire) != READING_HEAD {
                self.head_started.notified().await;
                continue;
            }
            let head = self.heads.load(Ordering::Acquire);
            let started = *self.started.lock().unwrap_or_else(|e| e.into_inner());
            tokio::time::sleep_until(started + limit).await;
            if self.phase.load(Ordering::Acquire) == READING_HEAD
                && self.heads.load(Ordering::Acquire) == head
            {
                return;
            }
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
