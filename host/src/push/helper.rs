//! One thread kept for large fan-outs, beside the one that runs the pump.
//!
//! A thread started per fan-out cost a thread's creation and its own send
//! batch (an io_uring ring, set up and torn down) per message, and under
//! load it got a core late: the scheduler queues a new thread behind the
//! running ones. This one sleeps between fan-outs and keeps its batch.
//! It still may get a core late when the machine is busy, which is why the
//! fan-out is shared in small portions rather than split in halves (see
//! `SHARE` in the parent module).

use std::{
    panic::{self, AssertUnwindSafe},
    sync::{Condvar, Mutex, MutexGuard, OnceLock},
    thread,
};

/// A half of a fan-out handed to the helper: a closure on the caller's
/// stack, its lifetime erased.
struct Job(*mut (dyn FnMut() + Send));

// SAFETY: the closure behind the pointer is `Send`, and only the helper
// calls it, while the caller that owns it waits in `join`.
unsafe impl Send for Job {}

enum Slot {
    /// Ready for a job.
    Free,
    /// A caller has handed over a job.
    Posted(Job),
    /// The helper is running the job.
    Running,
    /// The job is over; its caller has not yet taken note.
    Done,
}

struct Helper {
    slot: Mutex<Slot>,
    posted: Condvar,
    finished: Condvar,
}

impl Helper {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        // Nothing runs user code while holding the lock, so a poisoned
        // lock still holds a consistent slot.
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The process's helper, started at the first call; `None` when no
    /// thread could be started (then every fan-out runs on one thread).
    fn get() -> Option<&'static Helper> {
        static HELPER: OnceLock<Option<&'static Helper>> = OnceLock::new();
        *HELPER.get_or_init(|| {
            let helper: &'static Helper = Box::leak(Box::new(Helper {
                slot: Mutex::new(Slot::Free),
                posted: Condvar::new(),
                finished: Condvar::new(),
            }));
            match thread::Builder::new()
                .name("zaqar-fan-out".into())
                .spawn(move || helper.serve())
            {
                Ok(_) => Some(helper),
                Err(error) => {
                    tracing::warn!(%error, "cannot start the fan-out helper thread: large fan-outs run on one thread");
                    None
                }
            }
        })
    }

    fn serve(&self) {
        loop {
            let job = {
                let mut slot = self.lock();
                loop {
                    if let Slot::Posted(_) = &*slot {
                        break;
                    }
                    slot = self.posted.wait(slot).unwrap_or_else(|e| e.into_inner());
                }
                match std::mem::replace(&mut *slot, Slot::Running) {
                    Slot::Posted(job) => job,
                    _ => unreachable!("checked above"),
                }
            };
            // SAFETY: the caller keeps the closure alive, and touches
            // nothing it borrows, until the slot says `Done` (see `join`).
            // The closure catches its own panics.
            unsafe { (*job.0)() };
            *self.lock() = Slot::Done;
            self.finished.notify_one();
        }
    }
}

/// Runs `first` on this thread and `second` on the helper thread at the
/// same time, and returns both results. When the helper is busy with
/// another fan-out (or could not be started), runs both here, one after
/// the other. A panic in either is resumed here once both are over.
pub(super) fn join<A, B: Send>(
    first: impl FnOnce() -> A,
    second: impl FnOnce() -> B + Send,
) -> (A, B) {
    let Some(helper) = Helper::get() else {
        return (first(), second());
    };
    let mut slot = helper.lock();
    if !matches!(*slot, Slot::Free) {
        drop(slot);
        return (first(), second());
    }
    let mut second = Some(second);
    let mut theirs: Option<thread::Result<B>> = None;
    let mut task = || {
        if let Some(second) = second.take() {
            theirs = Some(panic::catch_unwind(AssertUnwindSafe(second)));
        }
    };
    let task: *mut (dyn FnMut() + Send + '_) = &mut task;
    // SAFETY: only the lifetime changes. This function does not return
    // or unwind (the first half's panic is caught) before the helper
    // has set the slot to `Done`, after its last use of the closure.
    let task: *mut (dyn FnMut() + Send + 'static) = unsafe { std::mem::transmute(task) };
    *slot = Slot::Posted(Job(task));
    drop(slot);
    helper.posted.notify_one();

    let mine = panic::catch_unwind(AssertUnwindSafe(first));

    let mut slot = helper.lock();
    while !matches!(*slot, Slot::Done) {
        slot = helper
            .finished
            .wait(slot)
            .unwrap_or_else(|e| e.into_inner());
    }
    *slot = Slot::Free;
    drop(slot);
    let theirs = theirs.expect("the helper ran the second half");
    match (mine, theirs) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(panic), _) | (_, Err(panic)) => panic::resume_unwind(panic),
    }
}

#[cfg(test)]
mod tests {
    use super::join;

    #[test]
    fn both_halves_run_and_the_second_on_the_helper_thread() {
        let mut left = vec![1, 2, 3];
        let mut right = vec![4, 5, 6];
        // Other tests may hold the helper for a moment (then the caller
        // runs both halves), so try until a join reaches it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut joins = 0;
        loop {
            joins += 1;
            let (a, b) = join(
                || {
                    left.iter_mut().for_each(|x| *x += 1);
                    std::thread::current().name().map(str::to_owned)
                },
                || {
                    right.iter_mut().for_each(|x| *x += 1);
                    std::thread::current().name().map(str::to_owned)
                },
            );
            assert_ne!(a.as_deref(), Some("zaqar-fan-out"));
            if b.as_deref() == Some("zaqar-fan-out") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the helper never ran a half"
            );
        }
        assert_eq!(left, [1 + joins, 2 + joins, 3 + joins]);
        assert_eq!(right, [4 + joins, 5 + joins, 6 + joins]);
    }

    #[test]
    fn a_busy_helper_leaves_both_halves_to_the_caller() {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    let mut total = 0u64;
                    for i in 0..200u64 {
                        let (a, b) = join(|| i, || i * 2);
                        total += a + b;
                    }
                    total
                })
            })
            .collect();
        for thread in threads {
            assert_eq!(thread.join().unwrap(), 3 * (0..200u64).sum::<u64>());
        }
    }

    #[test]
    fn a_panic_in_the_second_half_reaches_the_caller_after_both_are_over() {
        let mut first_done = false;
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            join(|| first_done = true, || panic!("second half"))
        }));
        assert!(caught.is_err());
        assert!(first_done);
        // The helper serves the next join.
        assert_eq!(join(|| 1, || 2), (1, 2));
    }
}
