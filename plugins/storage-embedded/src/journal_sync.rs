//! The journal's syncs, pipelined: the writer thread hands a commit's
//! journal record to a sync thread and goes on applying the next batch
//! while the record is written and synced; the committed batch's callers
//! are answered, and its changes announced, once the record is durable.
//!
//! Why: with the sync on the writer thread, a batch's apply and commit (CPU)
//! and its record's write and sync (the disk, ~0.2 ms a record under load)
//! ran one after the other, and the writes queued meanwhile waited for both.
//! Where the writer bounds the rate (claims and deletes, WebSocket posts) the
//! overlap is worth 5-15 % (docs/storage-embedded.md, "Pipelined journal
//! syncs").
//!
//! The rules that keep a crash from losing or damaging anything:
//! * **One record in flight.** A commit writes its pages in place over pages
//!   that were free as of the last commit redb was told is durable. Once a
//!   record is handed over, redb believes that commit durable, so the next
//!   commit may reuse pages the previous durable state still needs: its
//!   in-place writes therefore wait until the record in flight is durable
//!   ([`JournalSync::wait_idle`]). The next batch's apply (the B-tree work,
//!   in memory) is what overlaps the sync. A batch of posts only is made
//!   durable by a post-log record instead (see [`crate::post_log`]) and
//!   committed without durability: that record tells redb nothing, so the
//!   page writes that follow wait only for the journal's own last record.
//! * **Answers in record order, only once durable** ([`JournalSync::after_durable`]):
//!   completions run in the order their records were handed over, on
//!   whichever thread sees their record durable first.
//! * **Reads show nothing that is not durable**: a commit is visible to
//!   readers as soon as redb's commit returns, so a read waits until the
//!   last record handed over when it began is durable
//!   ([`JournalSync::settled`]) before answering.
//! * **A failed write or sync stops all writing** until the process
//!   restarts and replays the journal: after a failed `fdatasync` the
//!   kernel may have dropped the dirty data, so a retry that succeeds
//!   proves nothing; and a torn record in the middle of the journal would
//!   end its replay there.
//!
//! A commit of a batch of one on its caller's thread (the lone write) writes
//! and syncs its record there ([`JournalSync::run_inline`]): handing it to the
//! sync thread and back would wake two sleeping threads for nothing to
//! overlap.

use std::{
    collections::VecDeque,
    io,
    panic::{catch_unwind, AssertUnwindSafe},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Condvar, Mutex, MutexGuard,
    },
    thread::JoinHandle,
};

use plugin_api::{PluginError, PluginResult};

/// A record's place in the order records are handed over, from 1.
pub(crate) type Ticket = u64;

/// What to do once a record is durable (`Ok`), or once it never will be
/// (`Err`: `UNAVAILABLE`, with the reason).
pub(crate) type Completion = Box<dyn FnOnce(PluginResult<()>) + Send>;

/// The answer for what will never be durable.
fn unavailable(reason: &str) -> PluginError {
    PluginError::unavailable(format!("embedded store: {reason}"))
}

/// Writes and syncs one record.
type SyncJob = Box<dyn FnOnce() -> io::Result<()> + Send>;

/// The records handed over and made durable, and the sync thread.
pub(crate) struct JournalSync {
    state: Mutex<Progress>,
    /// Signalled when a record is handed over, and on stop: what the sync
    /// thread waits for.
    handed: Condvar,
    /// Signalled when a record is made durable or fails, if anyone waits
    /// (see [`Progress::watchers`]).
    changed: Condvar,
    /// Held while completions run, so that they run one at a time in order.
    completing: Mutex<()>,
    /// The last ticket handed over (or written inline).
    submitted: AtomicU64,
    /// The last ticket durable: every record up to it is.
    durable: AtomicU64,
    /// Whether `sync_data` hands records to the sync thread (the writer
    /// thread's batches) or syncs them on the calling thread.
    deferred: AtomicBool,
    /// Set once a record failed (see [`Progress::failed`]).
    stopped: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Default)]
struct Progress {
    /// Why writing stopped, once a record failed.
    failed: Option<String>,
    /// The record handed over and not yet taken by the sync thread.
    job: Option<(Ticket, SyncJob)>,
    completions: VecDeque<(Ticket, Completion)>,
    stop: bool,
    /// Threads waiting on `changed`. A lone post's record is synced inline
    /// and nobody waits for it; signalling anyway costs a system call per
    /// post, and used to wake the sync thread for nothing.
    watchers: usize,
}

impl JournalSync {
    /// Starts the sync thread.
    pub(crate) fn start() -> io::Result<Arc<Self>> {
        let sync = Arc::new(Self {
            state: Mutex::new(Progress::default()),
            handed: Condvar::new(),
            changed: Condvar::new(),
            completing: Mutex::new(()),
            submitted: AtomicU64::new(0),
            durable: AtomicU64::new(0),
            deferred: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            thread: Mutex::new(None),
        });
        let thread = {
            let sync = Arc::clone(&sync);
            std::thread::Builder::new()
                .name("zaqar-journal-sync".into())
                .spawn(move || sync.run())?
        };
        *sync.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(thread);
        Ok(sync)
    }

    fn progress(&self) -> MutexGuard<'_, Progress> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The sync thread: one record at a time, then its completions.
    fn run(&self) {
        loop {
            let (ticket, job) = {
                let mut progress = self.progress();
                loop {
                    if let Some(job) = progress.job.take() {
                        break job;
                    }
                    if progress.stop {
                        return;
                    }
                    progress = self
                        .handed
                        .wait(progress)
                        .unwrap_or_else(|e| e.into_inner());
                }
            };
            let outcome = job();
            self.finished(ticket, outcome);
            self.complete_due();
        }
    }

    fn finished(&self, ticket: Ticket, outcome: io::Result<()>) {
        let mut progress = self.progress();
        match outcome {
            Ok(()) => self.durable.store(ticket, Ordering::Release),
            Err(e) => self.stopped_by(
                &mut progress,
                format!("a journal write failed, writing is stopped until restart: {e}"),
            ),
        }
        self.announce(progress);
    }

    /// Wakes whoever waits for progress, once `progress` (the lock, held
    /// while it was made) is released.
    fn announce(&self, progress: MutexGuard<'_, Progress>) {
        let watched = progress.watchers > 0;
        drop(progress);
        if watched {
            self.changed.notify_all();
        }
    }

    /// Waits on `changed` for progress, or until `timeout` passes.
    fn watch<'a>(
        &self,
        mut progress: MutexGuard<'a, Progress>,
        timeout: Option<std::time::Duration>,
    ) -> MutexGuard<'a, Progress> {
        progress.watchers += 1;
        let mut progress = match timeout {
            Some(timeout) => {
                self.changed
                    .wait_timeout(progress, timeout)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
            None => self
                .changed
                .wait(progress)
                .unwrap_or_else(|e| e.into_inner()),
        };
        progress.watchers -= 1;
        progress
    }

    /// Stops writing until restart because of `what`: every write then
    /// fails with it, and the store reports itself unhealthy.
    pub(crate) fn stop_writing(&self, what: &str) {
        let mut progress = self.progress();
        self.stopped_by(
            &mut progress,
            format!("{what}; writing is stopped until restart"),
        );
        self.announce(progress);
        self.complete_due();
    }

    fn stopped_by(&self, progress: &mut Progress, reason: String) {
        crate::log::warn(&format!("embedded store: {reason}"));
        progress.failed.get_or_insert(reason);
        self.stopped.store(true, Ordering::Release);
    }

    /// Whether records are handed to the sync thread.
    pub(crate) fn deferred(&self) -> bool {
        self.deferred.load(Ordering::Acquire)
    }

    /// Hands records to the sync thread from now on (`true`), or syncs them
    /// on the committing thread (`false`).
    pub(crate) fn set_deferred(&self, deferred: bool) {
        self.deferred.store(deferred, Ordering::Release);
    }

    /// The last ticket handed over: a commit that returned is covered by it.
    pub(crate) fn submitted(&self) -> Ticket {
        self.submitted.load(Ordering::Acquire)
    }

    /// Whether a record is in flight (and writing has not stopped).
    pub(crate) fn syncing(&self) -> bool {
        !self.writing_stopped() && self.durable.load(Ordering::Acquire) < self.submitted()
    }

    /// Waits until no record is in flight, writing stopped, or `timeout`
    /// passed.
    pub(crate) fn wait_idle_for(&self, timeout: std::time::Duration) {
        let progress = self.progress();
        if self.syncing() {
            drop(self.watch(progress, Some(timeout)));
        }
    }

    /// Whether writing stopped (see [`JournalSync::failure`] for why).
    pub(crate) fn writing_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Why writing stopped, if it did.
    pub(crate) fn failure(&self) -> Option<String> {
        self.progress().failed.clone()
    }

    fn stopped_error(reason: &str) -> io::Error {
        io::Error::other(reason.to_owned())
    }

    /// Waits until `ticket` is durable.
    pub(crate) fn wait_durable(&self, ticket: Ticket) -> io::Result<()> {
        if self.durable.load(Ordering::Acquire) >= ticket {
            return Ok(());
        }
        let mut progress = self.progress();
        loop {
            if let Some(reason) = &progress.failed {
                return Err(Self::stopped_error(reason));
            }
            if self.durable.load(Ordering::Acquire) >= ticket {
                return Ok(());
            }
            progress = self.watch(progress, None);
        }
    }

    /// Waits until no record is in flight (and fails once writing stopped).
    pub(crate) fn wait_idle(&self) -> io::Result<()> {
        self.wait_settled(self.submitted())
    }

    /// Waits until `ticket` is durable (and fails once writing stopped).
    pub(crate) fn wait_settled(&self, ticket: Ticket) -> io::Result<()> {
        self.wait_durable(ticket)?;
        // Every page write comes here: the lock only once writing stopped.
        if self.writing_stopped() {
            return Err(Self::stopped_error(&self.failure().unwrap_or_default()));
        }
        Ok(())
    }

    /// Hands `job` (write and sync the next record) to the sync thread.
    /// The caller has waited until no record is in flight, and holds the
    /// journal's lock or the writer's commit lock (records are handed over
    /// one at a time).
    pub(crate) fn submit(&self, job: impl FnOnce() -> io::Result<()> + Send + 'static) {
        let mut progress = self.progress();
        debug_assert!(progress.job.is_none(), "one record in flight at most");
        let ticket = self.submitted.load(Ordering::Acquire) + 1;
        self.submitted.store(ticket, Ordering::Release);
        progress.job = Some((ticket, Box::new(job)));
        drop(progress);
        self.handed.notify_one();
    }

    /// Runs `job` (write and sync the next record) on this thread, after
    /// any record in flight. A failure stops writing as on the sync thread.
    pub(crate) fn run_inline(&self, job: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
        self.wait_idle()?;
        let outcome = job();
        let failed = outcome
            .as_ref()
            .err()
            .map(|e| io::Error::new(e.kind(), e.to_string()));
        // Records are handed over under the journal's lock, one at a time.
        let ticket = self.submitted.load(Ordering::Acquire) + 1;
        self.submitted.store(ticket, Ordering::Release);
        self.finished(ticket, outcome);
        // A read that began meanwhile may wait on this ticket; after a
        // failure no completion would come from the commit to run it.
        self.complete_due();
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Runs `completion` once `ticket` is durable (at once, on this thread,
    /// if it already is), after those of earlier tickets.
    pub(crate) fn after_durable(&self, ticket: Ticket, completion: Completion) {
        let due = {
            let mut progress = self.progress();
            progress.completions.push_back((ticket, completion));
            progress.failed.is_some() || self.durable.load(Ordering::Acquire) >= ticket
        };
        if due {
            self.complete_due();
        }
    }

    /// Resolves once everything a read that began before this call may
    /// have seen is durable.
    pub(crate) async fn settled(&self) -> PluginResult<()> {
        self.settled_at(self.submitted()).await
    }

    /// Resolves once `ticket` is durable.
    pub(crate) async fn settled_at(&self, ticket: Ticket) -> PluginResult<()> {
        if self.durable.load(Ordering::Acquire) >= ticket {
            return Ok(());
        }
        let (sender, receiver) = tokio::sync::oneshot::channel();
        self.after_durable(
            ticket,
            Box::new(move |outcome| {
                let _ = sender.send(outcome);
            }),
        );
        receiver
            .await
            .unwrap_or_else(|_| Err(unavailable("the journal stopped")))
    }

    /// Runs, in order, the completions whose records are durable (or failed).
    fn complete_due(&self) {
        let _running = self.completing.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let next = {
                let mut progress = self.progress();
                let durable = self.durable.load(Ordering::Acquire);
                match progress.completions.front() {
                    Some((ticket, _)) if *ticket <= durable => {
                        progress.completions.pop_front().map(|(_, c)| (c, Ok(())))
                    }
                    Some(_) => match &progress.failed {
                        Some(reason) => {
                            let error = unavailable(reason);
                            progress
                                .completions
                                .pop_front()
                                .map(|(_, c)| (c, Err(error)))
                        }
                        None => None,
                    },
                    None => None,
                }
            };
            let Some((completion, outcome)) = next else {
                return;
            };
            // A completion answers callers and hands changes to sinks, none
            // of which may panic; if one does anyway, the others still run.
            if catch_unwind(AssertUnwindSafe(|| completion(outcome))).is_err() {
                crate::log::warn("embedded store: a write's completion panicked");
            }
        }
    }

    /// Finishes the record in flight and stops the sync thread.
    pub(crate) fn stop(&self) {
        let _ = self.wait_idle();
        self.progress().stop = true;
        self.handed.notify_all();
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
        self.complete_due();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// What completions saw: their label and outcome, in the order they ran.
    type Seen = Arc<Mutex<Vec<(u64, PluginResult<()>)>>>;

    fn noting(seen: &Seen, label: u64) -> Completion {
        let seen = Arc::clone(seen);
        Box::new(move |outcome| seen.lock().unwrap().push((label, outcome)))
    }

    #[test]
    fn completions_wait_for_their_record_and_run_in_order() {
        let sync = JournalSync::start().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (release, held) = mpsc::channel::<()>();
        sync.submit(move || {
            held.recv().unwrap();
            Ok(())
        });
        sync.after_durable(1, noting(&seen, 1));
        assert!(seen.lock().unwrap().is_empty(), "not durable yet");
        release.send(()).unwrap();
        sync.wait_idle().unwrap();
        // Its completion may still be running on the sync thread.
        sync.after_durable(1, noting(&seen, 2));
        sync.run_inline(|| Ok(())).unwrap();
        sync.after_durable(2, noting(&seen, 3));
        sync.stop();
        let labels: Vec<u64> = seen.lock().unwrap().iter().map(|(l, _)| *l).collect();
        assert_eq!(labels, [1, 2, 3]);
    }

    #[test]
    fn a_failed_record_fails_its_completions_and_stops_writing() {
        let sync = JournalSync::start().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        sync.submit(|| Err(io::Error::other("disk on fire")));
        sync.after_durable(1, noting(&seen, 1));
        assert!(sync.wait_durable(1).is_err());
        assert!(sync.wait_idle().is_err());
        assert!(
            sync.run_inline(|| Ok(())).is_err(),
            "nothing is written after a failure"
        );
        sync.after_durable(9, noting(&seen, 9));
        sync.stop();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert!(seen.iter().all(|(_, outcome)| outcome
            .as_ref()
            .is_err_and(|e| e.message.contains("disk on fire"))));
        assert!(sync.failure().is_some());
    }

    #[test]
    fn an_inline_record_runs_the_completions_waiting_on_it() {
        let sync = JournalSync::start().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        sync.after_durable(1, noting(&seen, 1));
        sync.run_inline(|| Ok(())).unwrap();
        assert_eq!(seen.lock().unwrap().len(), 1, "ran once durable");
        sync.after_durable(2, noting(&seen, 2));
        assert!(sync
            .run_inline(|| Err(io::Error::other("disk gone")))
            .is_err());
        let outcomes = std::mem::take(&mut *seen.lock().unwrap());
        assert!(outcomes[0].1.is_ok());
        assert!(
            outcomes[1]
                .1
                .as_ref()
                .is_err_and(|e| e.message.contains("disk gone")),
            "a failed record fails its waiters at once: {:?}",
            outcomes.get(1)
        );
        sync.stop();
    }

    #[test]
    fn a_read_settles_once_what_it_may_see_is_durable() {
        let sync = JournalSync::start().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(sync.settled()).unwrap();
        let (release, held) = mpsc::channel::<()>();
        sync.submit(move || {
            held.recv().unwrap();
            Ok(())
        });
        let settled = std::thread::spawn({
            let sync = Arc::clone(&sync);
            move || {
                tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap()
                    .block_on(sync.settled())
            }
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!settled.is_finished(), "the record is not durable yet");
        release.send(()).unwrap();
        settled.join().unwrap().unwrap();
        sync.stop();
    }
}
