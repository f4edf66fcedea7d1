//! Gathering a few writers' next writes into one commit.
//!
//! With a handful of writers, each waiting for its answer before it writes
//! again, the pipelined journal syncs split them into groups that take
//! turns: the writes answered by one record come back while the next batch
//! is already committing, so each commit carries about half of them and
//! pays redb's fixed durable-commit work for that half (at 4 writers, 1.8
//! writes per commit and ~120 µs of CPU per write). So when the writers
//! lately were few, the writer thread, once no record is in flight, waits
//! a moment for as many writes as there were writers before it commits:
//! one commit then carries them all (docs/storage-embedded.md, "Gathering a
//! few writers").
//!
//! Many writers fill batches on their own and are not waited for, and a
//! lone writer commits on its own thread as before. A wait that gathers
//! nothing (the writers counted were a passing overlap, not a steady load)
//! stops the waiting until the writers are counted again.

use std::{
    sync::{
        atomic::{fence, AtomicBool, AtomicUsize, Ordering},
        Condvar, Mutex, MutexGuard,
    },
    time::{Duration, Instant},
};

/// Waiting pays only while a commit's fixed work dominates its cost.
const MAX_WRITERS: usize = 8;

/// The longest a batch waits for the writers it expects: about one
/// answer's round trip to a client and back.
const WAIT: Duration = Duration::from_micros(200);

/// Batches over which the writers are counted.
const WINDOW_BATCHES: usize = 32;

/// How many writers there were lately, and the writer thread's wake-up
/// when a write is queued while it waits.
pub(crate) struct Gather {
    /// The longest a batch waits ([`WAIT`]).
    wait: Duration,
    lock: Mutex<()>,
    arrived: Condvar,
    waiting: AtomicBool,
    /// Most writes in flight at once in the current window.
    window_peak: AtomicUsize,
    /// Most writes in flight at once in the last full window.
    writers: AtomicUsize,
    /// Batches committed in the current window.
    batches: AtomicUsize,
    /// A wait gathered nothing in this window: no more waiting in it.
    missed: AtomicBool,
}

impl Default for Gather {
    fn default() -> Self {
        Self::waiting_at_most(WAIT)
    }
}

impl Gather {
    fn waiting_at_most(wait: Duration) -> Self {
        Self {
            wait,
            lock: Mutex::default(),
            arrived: Condvar::new(),
            waiting: AtomicBool::default(),
            window_peak: AtomicUsize::default(),
            writers: AtomicUsize::default(),
            batches: AtomicUsize::default(),
            missed: AtomicBool::default(),
        }
    }

    /// Notes `in_flight` writes at once, as a write starts.
    pub(crate) fn observe(&self, in_flight: usize) {
        if self.window_peak.load(Ordering::Relaxed) < in_flight {
            self.window_peak.fetch_max(in_flight, Ordering::Relaxed);
        }
    }

    /// The most writes in flight at once in the last window.
    pub(crate) fn writers(&self) -> usize {
        self.writers.load(Ordering::Relaxed)
    }

    /// Counts a committed batch; every [`WINDOW_BATCHES`], counts the
    /// writers again.
    pub(crate) fn batch_done(&self) {
        if self.batches.fetch_add(1, Ordering::Relaxed) + 1 < WINDOW_BATCHES {
            return;
        }
        self.batches.store(0, Ordering::Relaxed);
        let peak = self.window_peak.swap(0, Ordering::Relaxed);
        self.writers.store(peak, Ordering::Relaxed);
        self.missed.store(false, Ordering::Relaxed);
    }

    /// How many writes a batch should hold before it commits, when it
    /// should wait for any.
    pub(crate) fn target(&self) -> Option<usize> {
        let writers = self.writers();
        let few = (2..=MAX_WRITERS).contains(&writers);
        (few && !self.missed.load(Ordering::Relaxed)).then_some(writers)
    }

    /// Wakes the writer thread if it waits for writes; called once a write
    /// is queued.
    pub(crate) fn enqueued(&self) {
        // Pairs with the fence in `wait_for`: either the writer finds the
        // write queued, or this finds the writer waiting.
        fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::Relaxed) {
            let _guard = self.guard();
            self.arrived.notify_one();
        }
    }

    fn guard(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands the writes `next` yields to `take` until `take` says enough
    /// or the wait is over, sleeping while none is queued.
    pub(crate) fn wait_for<J>(
        &self,
        next: &mut dyn FnMut() -> Option<J>,
        mut take: impl FnMut(J) -> bool,
    ) {
        let deadline = Instant::now() + self.wait;
        let mut gathered = false;
        let mut guard = self.guard();
        self.waiting.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        loop {
            if let Some(job) = next() {
                gathered = true;
                if take(job) {
                    continue;
                }
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            guard = self
                .arrived
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        self.waiting.store(false, Ordering::Relaxed);
        drop(guard);
        if !gathered {
            self.missed.store(true, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{mpsc, Arc},
        thread,
    };

    use super::*;

    fn counted(writers: usize) -> Gather {
        counted_waiting(writers, WAIT)
    }

    fn counted_waiting(writers: usize, wait: Duration) -> Gather {
        let gather = Gather::waiting_at_most(wait);
        gather.observe(writers);
        for _ in 0..WINDOW_BATCHES {
            gather.batch_done();
        }
        gather
    }

    #[test]
    fn only_a_few_writers_are_waited_for() {
        assert_eq!(counted(1).target(), None, "a lone writer commits at once");
        assert_eq!(counted(4).target(), Some(4));
        assert_eq!(counted(MAX_WRITERS + 1).target(), None, "many fill batches");
    }

    #[test]
    fn writers_are_counted_again_every_window() {
        let gather = counted(4);
        gather.observe(2);
        for _ in 0..WINDOW_BATCHES - 1 {
            gather.batch_done();
        }
        assert_eq!(gather.writers(), 4, "the last full window's count");
        gather.batch_done();
        assert_eq!(gather.writers(), 2);
    }

    #[test]
    fn a_queued_write_wakes_the_wait_before_its_deadline() {
        let gather = Arc::new(counted_waiting(2, Duration::from_secs(30)));
        let (queue, queued) = mpsc::channel::<u32>();
        let writer = thread::spawn({
            let gather = Arc::clone(&gather);
            move || {
                thread::sleep(Duration::from_millis(20));
                queue.send(7).unwrap();
                gather.enqueued();
            }
        });
        let mut taken = Vec::new();
        let started = Instant::now();
        gather.wait_for(&mut || queued.try_recv().ok(), |job| {
            taken.push(job);
            false
        });
        writer.join().unwrap();
        assert_eq!(taken, [7]);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "woken by the queued write, not by the deadline"
        );
        assert_eq!(gather.target(), Some(2), "it gathered: keep waiting");
    }

    #[test]
    fn a_wait_that_gathers_nothing_stops_waiting_until_the_next_count() {
        let gather = counted(3);
        let started = Instant::now();
        gather.wait_for(&mut || None::<u32>, |_| true);
        assert!(started.elapsed() >= WAIT);
        assert_eq!(gather.target(), None);
        gather.observe(3);
        for _ in 0..WINDOW_BATCHES {
            gather.batch_done();
        }
        assert_eq!(gather.target(), Some(3));
    }
}
