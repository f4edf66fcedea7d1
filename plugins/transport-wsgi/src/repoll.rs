//! Polls a connection again at once when it woke itself while being polled.
//!
//! hyper's connection task wakes itself on every request with a body: the
//! service, reading the body, signals hyper's dispatcher through the body's
//! channel, and the dispatcher is the same task. Tokio takes a task woken
//! during its own poll for one that yielded: it queues it behind the others
//! and wakes an idle worker thread to steal it. So every post moved its
//! connection to the other thread and woke a sleeping one (measured with
//! one client posting: one of the server's 2.3 thread wake-ups a request,
//! and a quarter of its CPU; docs/BENCHMARKS.md, "A connection that woke
//! itself"). Polling again here keeps the connection where it runs;
//! wake-ups from elsewhere pass through.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{Context, Poll, Wake, Waker},
};

use futures_util::task::AtomicWaker;

/// How many times in a row a poll is repeated before the connection yields
/// to other tasks after all, as tokio would have made it.
const MAX_REPOLLS: u32 = 16;

/// `inner`, polled again at once whenever it wakes itself while polled.
pub struct Repoll<F> {
    inner: F,
    waker: Arc<SelfWaker>,
}

struct SelfWaker {
    /// Whether `inner` is being polled.
    polling: AtomicBool,
    /// Whether it was woken since its poll began.
    woken: AtomicBool,
    /// The task's own waker, for wake-ups outside a poll.
    task: AtomicWaker,
}

impl<F> Repoll<F> {
    pub fn new(inner: F) -> Self {
        Self {
            inner,
            waker: Arc::new(SelfWaker {
                polling: AtomicBool::new(false),
                woken: AtomicBool::new(false),
                task: AtomicWaker::new(),
            }),
        }
    }

    /// The future being polled.
    pub fn get_mut(&mut self) -> &mut F {
        &mut self.inner
    }
}

impl<F: Future + Unpin> Future for Repoll<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        this.waker.task.register(cx.waker());
        let waker = Waker::from(Arc::clone(&this.waker));
        let mut inner_cx = Context::from_waker(&waker);
        for _ in 0..MAX_REPOLLS {
            this.waker.woken.store(false, Ordering::SeqCst);
            this.waker.polling.store(true, Ordering::SeqCst);
            let polled = Pin::new(&mut this.inner).poll(&mut inner_cx);
            this.waker.polling.store(false, Ordering::SeqCst);
            if polled.is_ready() || !this.waker.woken.load(Ordering::SeqCst) {
                return polled;
            }
            if !tokio::task::coop::has_budget_remaining() {
                // Woken because its budget ran out: a poll now would fail
                // the same way.
                break;
            }
        }
        // Still waking itself: let the others run first.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Wake for SelfWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Noted first, so that a poll ending meanwhile either sees it and
        // polls again, or has ended before the check below and the task
        // is woken.
        self.woken.store(true, Ordering::SeqCst);
        if !self.polling.load(Ordering::SeqCst) {
            self.task.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::atomic::AtomicUsize,
        task::{Context, Poll},
    };

    use super::*;

    /// Wakes itself on each of its first `self_wakes` polls, then waits for
    /// a wake-up from outside.
    struct Waking {
        polls: Arc<AtomicUsize>,
        self_wakes: usize,
        outside: Arc<AtomicWaker>,
        done: Arc<AtomicBool>,
    }

    impl Future for Waking {
        type Output = ();

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let polls = self.polls.fetch_add(1, Ordering::SeqCst) + 1;
            if self.done.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            if polls <= self.self_wakes {
                cx.waker().wake_by_ref();
            } else {
                self.outside.register(cx.waker());
            }
            Poll::Pending
        }
    }

    struct Counting(AtomicUsize);

    impl Wake for Counting {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waking(
        self_wakes: usize,
    ) -> (
        Repoll<Waking>,
        Arc<AtomicUsize>,
        Arc<AtomicWaker>,
        Arc<AtomicBool>,
    ) {
        let polls = Arc::new(AtomicUsize::new(0));
        let outside = Arc::new(AtomicWaker::new());
        let done = Arc::new(AtomicBool::new(false));
        let future = Repoll::new(Waking {
            polls: polls.clone(),
            self_wakes,
            outside: outside.clone(),
            done: done.clone(),
        });
        (future, polls, outside, done)
    }

    #[test]
    fn a_future_that_wakes_itself_is_polled_again_without_waking_its_task() {
        let (mut future, polls, outside, done) = waking(3);
        let task = Arc::new(Counting(AtomicUsize::new(0)));
        let task_waker = Waker::from(task.clone());
        let mut cx = Context::from_waker(&task_waker);

        assert!(Pin::new(&mut future).poll(&mut cx).is_pending());
        assert_eq!(
            polls.load(Ordering::SeqCst),
            4,
            "three self-wakes, three more polls"
        );
        assert_eq!(task.0.load(Ordering::SeqCst), 0, "the task was not woken");

        // A wake-up from outside a poll reaches the task.
        done.store(true, Ordering::SeqCst);
        outside.wake();
        assert_eq!(task.0.load(Ordering::SeqCst), 1);
        assert!(Pin::new(&mut future).poll(&mut cx).is_ready());
    }

    #[test]
    fn a_future_that_keeps_waking_itself_yields_to_its_task_after_a_while() {
        let (mut future, polls, _outside, _done) = waking(usize::MAX);
        let task = Arc::new(Counting(AtomicUsize::new(0)));
        let task_waker = Waker::from(task.clone());
        let mut cx = Context::from_waker(&task_waker);

        assert!(Pin::new(&mut future).poll(&mut cx).is_pending());
        assert_eq!(polls.load(Ordering::SeqCst), MAX_REPOLLS as usize);
        assert_eq!(task.0.load(Ordering::SeqCst), 1, "woken to run again later");
    }
}
