//! Pushes of many sockets handed to the kernel together. A fan-out writes
//! one frame to each of thousands of sockets; one `send(2)` per socket
//! pays a system call's entry and exit each time, which on this kind of
//! machine is a measurable share of a push. Instead, each thread that
//! pushes keeps a batch: [`hold`] copies a frame into it, and [`flush`]
//! (when the batch is full, and when the host ends its fan-out round)
//! hands every frame to the kernel with one `io_uring_enter`, as
//! non-blocking sends, then settles each socket's outbox with what its
//! send answered (a short or refused send queues the rest, as a direct
//! write does).
//!
//! A thread whose kernel refuses io_uring (too old, or forbidden by a
//! seccomp profile) has no batch: [`hold`] declines and the push is written
//! at once. [`probe`] tells at start-up which it will be.

use std::{cell::RefCell, sync::Arc};

use crate::push::Outbox;

/// Frames held before the batch is written, whatever the fan-out's size:
/// past this, a larger batch saves no more per socket, and the first
/// sockets' pushes would wait for the last ones.
pub const BATCH_FRAMES: usize = 64;

/// One push held in the batch: `len` bytes at `start` of the batch's bytes.
struct Held {
    outbox: Arc<Outbox>,
    start: usize,
    len: usize,
}

#[cfg(target_os = "linux")]
type Ring = io_uring::IoUring;

#[cfg(not(target_os = "linux"))]
type Ring = ();

/// One thread's batch; `ring` is `None` where io_uring is refused.
struct SendBatch {
    ring: Option<Ring>,
    bytes: Vec<u8>,
    held: Vec<Held>,
    sent: Vec<i32>,
}

thread_local! {
    static BATCH: RefCell<Option<SendBatch>> = const { RefCell::new(None) };
}

/// Whether this kernel lets the transport batch its pushes; `Err` says why
/// not. Asked once, at start-up: a thread's own ring (made when the
/// thread first pushes) does not ask again.
#[cfg(target_os = "linux")]
pub fn probe() -> Result<(), String> {
    let ring = new_ring()?;
    let mut probe = io_uring::Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|error| format!("io_uring cannot say what it supports: {error}"))?;
    if !probe.is_supported(io_uring::opcode::Send::CODE) {
        return Err("this kernel's io_uring has no send operation".into());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
pub fn probe() -> Result<(), String> {
    new_ring().map(drop)
}

#[cfg(target_os = "linux")]
fn new_ring() -> Result<Ring, String> {
    io_uring::IoUring::new(BATCH_FRAMES as u32)
        .map_err(|error| format!("io_uring is not available: {error}"))
}

#[cfg(not(target_os = "linux"))]
fn new_ring() -> Result<Ring, String> {
    Err("batched sends need Linux's io_uring".into())
}

/// Copies the frame `header` + `parts` of `outbox`'s socket into this
/// thread's batch; false if the thread has no batch (write it at once).
/// The caller marks the outbox as having a push in the batch.
pub fn hold(outbox: &Arc<Outbox>, header: &[u8], parts: &[&[u8]]) -> bool {
    BATCH.with_borrow_mut(|batch| {
        let batch = batch.get_or_insert_with(|| SendBatch {
            ring: new_ring().ok(),
            bytes: Vec::new(),
            held: Vec::with_capacity(BATCH_FRAMES),
            sent: Vec::with_capacity(BATCH_FRAMES),
        });
        if batch.ring.is_none() {
            return false;
        }
        let start = batch.bytes.len();
        batch.bytes.extend_from_slice(header);
        for part in parts {
            batch.bytes.extend_from_slice(part);
        }
        batch.held.push(Held {
            outbox: outbox.clone(),
            start,
            len: batch.bytes.len() - start,
        });
        true
    })
}

/// Whether this thread's batch should be written before more is held.
pub fn is_full() -> bool {
    BATCH.with_borrow(|batch| batch.as_ref().is_some_and(|b| b.held.len() >= BATCH_FRAMES))
}

/// Writes this thread's batch, if it holds anything, and settles each
/// push's outbox. Must not be called with an outbox locked.
pub fn flush() {
    BATCH.with_borrow_mut(|batch| {
        let Some(batch) = batch.as_mut().filter(|b| !b.held.is_empty()) else {
            return;
        };
        let SendBatch {
            ring,
            bytes,
            held,
            sent,
        } = batch;
        sent.clear();
        sent.resize(held.len(), -libc::EIO);
        if let Some(healthy) = ring.as_mut().map(|ring| send_all(ring, bytes, held, sent)) {
            if !healthy {
                // Answers still owed would be mistaken for the next
                // batch's: this thread writes at once from now on.
                *ring = None;
            }
        }
        for (push, sent) in held.drain(..).zip(sent.iter()) {
            push.outbox
                .settle_batched(&bytes[push.start..push.start + push.len], *sent);
        }
        bytes.clear();
    });
}

/// An answer not yet reaped.
const OWED: i32 = i32::MIN;

/// Hands every held push to the kernel as one submission of non-blocking
/// sends and waits for all of their answers (a non-blocking send answers
/// at once); `sent[i]` gets push `i`'s. A push whose answer cannot be had
/// keeps `-EIO`, a failed send: its socket is closed rather than risk its
/// frame going out twice or in part. Returns false if the ring cannot be
/// trusted any more.
#[cfg(target_os = "linux")]
fn send_all(ring: &mut Ring, bytes: &[u8], held: &[Held], sent: &mut [i32]) -> bool {
    use io_uring::{opcode, types::Fd};

    // MSG_DONTWAIT: a socket that would block answers EAGAIN instead of
    // io_uring waiting for it, so the rest is queued in order.
    let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    for (index, push) in held.iter().enumerate() {
        let entry = opcode::Send::new(
            Fd(push.outbox.raw_fd()),
            bytes[push.start..].as_ptr(),
            push.len as u32,
        )
        .flags(flags)
        .build()
        .user_data(index as u64);
        // SAFETY: the buffer lives in `bytes`, which is not touched until
        // every entry's answer has been reaped below (or the ring is
        // dropped); the descriptor is kept open by the outbox in `held`.
        // The ring has room for a whole batch, so a push that fails
        // leaves its send not made and its answer `-EIO`.
        if unsafe { ring.submission().push(&entry) }.is_ok() {
            sent[index] = OWED;
        }
    }
    let mut waiting = sent.iter().filter(|s| **s == OWED).count();
    while waiting > 0 {
        match ring.submit_and_wait(waiting) {
            Ok(_) => {}
            Err(error) if error.raw_os_error() == Some(libc::EINTR) => {}
            Err(_) => break,
        }
        for completion in ring.completion() {
            let slot = sent.get_mut(completion.user_data() as usize);
            if let Some(slot) = slot.filter(|s| **s == OWED) {
                *slot = completion.result();
                waiting -= 1;
            }
        }
    }
    for slot in sent.iter_mut().filter(|s| **s == OWED) {
        *slot = -libc::EIO;
    }
    waiting == 0
}

#[cfg(not(target_os = "linux"))]
fn send_all(_: &mut Ring, _: &[u8], _: &[Held], _: &mut [i32]) -> bool {
    false
}
