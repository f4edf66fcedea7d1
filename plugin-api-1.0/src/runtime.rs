//! Running plugin futures safely on whichever side of the boundary they are.
//!
//! Two traps are handled here so that no plugin author has to think of them:
//!
//! * **Tokio's context is per copy of tokio.** A plugin built as a dynamic
//!   library links its own tokio, whose thread-locals are empty even while the
//!   host polls the plugin's future from a host runtime thread: sockets and
//!   timers would fail with "there is no reactor running". [`handle`] gives the
//!   runtime to use: the current one when there is one (a built-in plugin,
//!   linked into the host, shares the host's runtime), else a runtime the
//!   plugin library owns, started on first use. Every future handed across the
//!   boundary by this crate's adapters enters that runtime on each poll, which
//!   costs about a tenth of a microsecond.
//! * **A panic must not cross the boundary** (it would abort the process).
//!   [`guard`] catches panics both while a call builds its future and while the
//!   future is polled, and turns them into [`PluginError`]s with
//!   [`ErrorCode::PANICKED`](crate::ErrorCode::PANICKED).

use std::{
    future::Future,
    panic::{catch_unwind, AssertUnwindSafe},
    pin::Pin,
    sync::OnceLock,
    task::{Context, Poll},
};

use abi_stable::std_types::RResult;
use async_ffi::{FfiFuture, FutureExt as _};
use tokio::runtime::{Handle, Runtime};

use crate::error::{PluginError, PluginResult};

/// The runtime owned by this copy of the plugin-api crate, for plugins that
/// run without a host runtime in their tokio's context (dynamic libraries).
fn own_runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("zaqar-plugin-rt")
            .enable_all()
            .build()
            .expect("a plugin cannot run without its tokio runtime")
    })
}

/// The tokio runtime a plugin should spawn its tasks on: the caller's current
/// runtime if this copy of tokio sees one, else the plugin library's own.
pub fn handle() -> Handle {
    Handle::try_current().unwrap_or_else(|_| own_runtime().handle().clone())
}

/// Spawns a task on [`handle`]'s runtime. Use this instead of `tokio::spawn`
/// in plugin code, which panics inside a dynamic library.
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    handle().spawn(future)
}

/// Builds a future with `make` and wraps it for the boundary: panics while
/// building or polling become `Err(PluginError)`, and each poll runs inside a
/// tokio runtime context this copy of tokio can see.
pub fn guard<M, Fut, T>(make: M) -> FfiFuture<RResult<T, PluginError>>
where
    M: FnOnce() -> Fut,
    Fut: Future<Output = PluginResult<T>> + Send + 'static,
    T: Send + 'static,
{
    match catch_unwind(AssertUnwindSafe(make)) {
        Ok(future) => Guarded { inner: future }.into_ffi(),
        Err(payload) => {
            let error = PluginError::from_panic(payload.as_ref());
            async move { RResult::RErr(error) }.into_ffi()
        }
    }
}

/// Like [`guard`] for calls that cannot fail except by panicking.
pub fn guard_infallible<M, Fut, T>(make: M) -> FfiFuture<RResult<T, PluginError>>
where
    M: FnOnce() -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    guard(move || {
        let future = make();
        async move { Ok(future.await) }
    })
}

/// Enters a runtime context when this copy of tokio has none. Returns a guard
/// that leaves it when dropped.
fn enter_runtime_if_needed() -> Option<tokio::runtime::EnterGuard<'static>> {
    match Handle::try_current() {
        Ok(_) => None,
        Err(_) => Some(own_runtime().enter()),
    }
}

/// The future behind [`guard`].
struct Guarded<F> {
    inner: F,
}

impl<F, T> Future for Guarded<F>
where
    F: Future<Output = PluginResult<T>>,
{
    type Output = RResult<T, PluginError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `inner` is structurally pinned: it is never moved out of
        // `self`, and `Guarded` has no Drop impl and no Unpin opt-in.
        let inner = unsafe { self.map_unchecked_mut(|s| &mut s.inner) };
        let _context = enter_runtime_if_needed();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(result)) => Poll::Ready(result.into()),
            Err(payload) => Poll::Ready(RResult::RErr(PluginError::from_panic(payload.as_ref()))),
        }
    }
}
