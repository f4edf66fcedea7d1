//! The socket's outgoing side. Every frame (push, reply, ping, pong,
//! close) is written as ready-made bytes straight from the call that
//! produces it, with a non-blocking write, while nothing is queued before
//! it: a push to an idle, reading client costs one `send` and no task
//! wake-up. Only what the socket cannot take at once (the client reads
//! slower than frames come, its TCP window is full) is queued, bounded in
//! frames and in bytes, for the connection's task to write when the socket
//! is writable again. A full queue means the client reads slower than
//! messages arrive; the socket is closed (code 1008) instead of buffering
//! without bound.

use std::{
    collections::VecDeque,
    io::{self, IoSlice},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use plugin_api::transport::{PushFrame, PushSink};
use tokio::{
    net::TcpStream,
    sync::{watch, Notify},
};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Frames up to this size are joined on the stack and sent as one buffer.
const SMALL_FRAME: usize = 1024;

/// Why the server closes a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason {
    /// The WebSocket close code.
    pub code: CloseCode,
    /// The reason text sent with it.
    pub reason: String,
}

/// Asks for the socket to be closed with `reason`, unless a reason is
/// already set.
pub fn request_close(close: &watch::Sender<Option<CloseReason>>, reason: CloseReason) {
    close.send_if_modified(|current| {
        if current.is_some() {
            return false;
        }
        *current = Some(reason);
        true
    });
}

/// A WebSocket frame's opcode (RFC 6455).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    /// A text frame (JSON).
    Text = 0x1,
    /// A binary frame (MsgPack).
    Binary = 0x2,
    /// A close frame.
    Close = 0x8,
    /// A ping.
    Ping = 0x9,
    /// A pong.
    Pong = 0xA,
}

/// The header of a final, unmasked (server) frame of `len` payload bytes:
/// FIN and opcode, then the length in 7, 16 or 64 bits.
fn frame_header(opcode: OpCode, len: usize, out: &mut [u8; 10]) -> usize {
    out[0] = 0x80 | opcode as u8;
    if len < 126 {
        out[1] = len as u8;
        2
    } else if let Ok(short) = u16::try_from(len) {
        out[1] = 126;
        out[2..4].copy_from_slice(&short.to_be_bytes());
        4
    } else {
        out[1] = 127;
        out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    }
}

/// How one write of a frame went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    /// Written or queued.
    Yes,
    /// Not taken: the queue is full (for a push: the socket is being
    /// closed as a slow consumer) or the socket is gone.
    No,
}

#[derive(Default)]
struct Pending {
    /// Frames not yet written, oldest first; the front one may be written
    /// in part (`written` bytes of it).
    frames: VecDeque<Vec<u8>>,
    written: usize,
    /// The client has received the start of the front frame (from a write
    /// of the queue, or from the direct write that queued only its rest):
    /// the rest must go out before any other frame, or the client misreads
    /// everything after it.
    front_started: bool,
    /// Bytes in `frames` not yet written.
    bytes: usize,
    /// Since when the front frame has waited for the socket to take more.
    blocked_since: Option<Instant>,
    /// Nothing more is taken (the socket is closing or gone).
    closed: bool,
    /// A push of this socket waits in its thread's send batch (see
    /// [`crate::batch`]): it goes before everything in `frames`, so
    /// nothing is written until the batch's outcome is known.
    in_batch: bool,
    /// [`Outbox::begin_close`] was called: the connection's task writes
    /// what is left and then stops.
    finishing: bool,
}

/// Limits of one socket's queue.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    /// Frames that may wait.
    pub frames: usize,
    /// Bytes that may wait (one frame always may, however large).
    pub bytes: usize,
}

/// One socket's outgoing side, shared by its connection task and the
/// host's push sink.
pub struct Outbox {
    stream: Arc<TcpStream>,
    pending: Mutex<Pending>,
    /// Wakes the connection task: something was queued.
    queued: Notify,
    limits: QueueLimits,
    close: watch::Sender<Option<CloseReason>>,
}

impl Outbox {
    /// The outgoing side of `stream`; `close` is told when a push finds the
    /// queue full or the socket gone.
    pub fn new(
        stream: Arc<TcpStream>,
        limits: QueueLimits,
        close: watch::Sender<Option<CloseReason>>,
    ) -> Self {
        Self {
            stream,
            pending: Mutex::default(),
            queued: Notify::new(),
            limits,
            close,
        }
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes a push made of `parts`, or queues what the socket does not
    /// take at once. A full queue closes the socket as a slow consumer.
    pub fn push(&self, opcode: OpCode, parts: &[&[u8]]) -> Queued {
        let mut pending = self.pending();
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if !self.has_room(&pending, len) {
            return Queued::No;
        }
        self.write_or_queue(&mut pending, opcode, parts, len)
    }

    /// The same as [`Outbox::push`], except that a push to a socket with
    /// nothing waiting is copied into this thread's send batch instead of
    /// written at once; [`crate::batch::flush`] writes it. Without a batch
    /// on this thread (no io_uring), writes at once.
    pub fn push_batched(self: &Arc<Self>, opcode: OpCode, parts: &[&[u8]]) -> Queued {
        let mut pending = self.pending();
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if !self.has_room(&pending, len) {
            return Queued::No;
        }
        if pending.frames.is_empty() && !pending.in_batch {
            let mut header = [0u8; 10];
            let header_len = frame_header(opcode, len, &mut header);
            if crate::batch::hold(self, &header[..header_len], parts) {
                pending.in_batch = true;
                return Queued::Yes;
            }
        }
        self.write_or_queue(&mut pending, opcode, parts, len)
    }

    /// Whether a push of `len` bytes may be taken; if the queue is full,
    /// asks for the socket to be closed as a slow consumer.
    fn has_room(&self, pending: &MutexGuard<'_, Pending>, len: usize) -> bool {
        if pending.closed {
            return false;
        }
        if !pending.frames.is_empty() {
            let overflow = if pending.frames.len() >= self.limits.frames {
                Some(format!(
                    "slow consumer: more than {} frames waiting to be sent",
                    self.limits.frames
                ))
            } else if pending.bytes + len + 10 > self.limits.bytes {
                Some(format!(
                    "slow consumer: more than {} bytes waiting to be sent",
                    self.limits.bytes
                ))
            } else {
                None
            };
            if let Some(reason) = overflow {
                // The watch has its own lock, never taken around this one.
                request_close(
                    &self.close,
                    CloseReason {
                        code: CloseCode::Policy,
                        reason,
                    },
                );
                return false;
            }
        }
        true
    }

    /// Settles a push that waited in the thread's send batch: `frame` is
    /// what was handed to the kernel, `sent` what `send(2)` answered (bytes
    /// taken, or a negative errno). What the socket did not take goes
    /// first in the queue, before anything queued while it waited.
    pub(crate) fn settle_batched(&self, frame: &[u8], sent: i32) {
        let mut pending = self.pending();
        pending.in_batch = false;
        let written = match usize::try_from(sent) {
            Ok(written) => written.min(frame.len()),
            Err(_) if sent == -libc::EAGAIN || sent == -libc::EINTR => 0,
            Err(_) => {
                pending.closed = true;
                drop(pending);
                request_close(&self.close, gone());
                self.queued.notify_one();
                return;
            }
        };
        // A push not started on a socket that is closing is dropped, as
        // queued pushes are; one started must be finished.
        if written < frame.len() && !(pending.finishing && written == 0) {
            pending.bytes += frame.len() - written;
            pending.frames.push_front(frame[written..].to_vec());
            pending.written = 0;
            pending.front_started = written > 0;
        }
        if !pending.frames.is_empty() {
            if pending.blocked_since.is_none() {
                pending.blocked_since = Some(Instant::now());
            }
            self.queued.notify_one();
        } else if pending.finishing {
            self.queued.notify_one();
        }
    }

    /// The socket's file descriptor, for the send batch.
    pub(crate) fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.stream.as_raw_fd()
    }

    /// Writes a frame the server sends on its own or in answer (reply,
    /// ping, pong) if the queue has room, else returns `None` (the caller
    /// waits with [`Outbox::flush`]). One frame always fits an empty queue.
    pub fn try_send(&self, opcode: OpCode, payload: &[u8]) -> Option<Queued> {
        let mut pending = self.pending();
        if pending.closed {
            return Some(Queued::No);
        }
        if !pending.frames.is_empty() && pending.bytes + payload.len() + 10 > self.limits.bytes {
            return None;
        }
        Some(self.write_or_queue(&mut pending, opcode, &[payload], payload.len()))
    }

    fn write_or_queue(
        &self,
        pending: &mut Pending,
        opcode: OpCode,
        parts: &[&[u8]],
        len: usize,
    ) -> Queued {
        let mut header = [0u8; 10];
        let header_len = frame_header(opcode, len, &mut header);
        let total = header_len + len;
        let mut written = 0;
        let nothing_before = pending.frames.is_empty() && !pending.in_batch;
        if nothing_before {
            match self.send_now(&header[..header_len], parts, total) {
                Ok(n) => written = n,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    pending.closed = true;
                    request_close(&self.close, gone());
                    return Queued::No;
                }
            }
            if written == total {
                return Queued::Yes;
            }
        }
        let mut frame = Vec::with_capacity(total - written);
        let mut skip = written;
        for piece in std::iter::once(&header[..header_len]).chain(parts.iter().copied()) {
            let from = skip.min(piece.len());
            frame.extend_from_slice(&piece[from..]);
            skip -= from;
        }
        if nothing_before {
            pending.front_started = written > 0;
            pending.blocked_since = Some(Instant::now());
            self.queued.notify_one();
        }
        pending.bytes += frame.len();
        pending.frames.push_back(frame);
        Queued::Yes
    }

    /// Writes what is queued as the socket takes it; returns once the queue
    /// is empty, or `Err` when the socket is gone or a write stayed blocked
    /// for `write_limit`. Waits for something to be queued first.
    pub async fn flush(&self, write_limit: Duration) -> Result<(), CloseReason> {
        loop {
            let due = {
                let pending = self.pending();
                if pending.finishing && !pending.in_batch && pending.frames.is_empty() {
                    return Ok(());
                }
                // A push in the send batch goes first; its settling wakes
                // this task if anything is left to write.
                pending
                    .blocked_since
                    .filter(|_| !pending.frames.is_empty() && !pending.in_batch)
                    .map(|since| since + write_limit)
            };
            let Some(due) = due else {
                self.queued.notified().await;
                continue;
            };
            tokio::select! {
                ready = self.stream.writable() => {
                    if ready.is_err() {
                        return Err(gone());
                    }
                }
                _ = tokio::time::sleep_until(due.into()) => {
                    return Err(CloseReason {
                        code: CloseCode::Policy,
                        reason: format!(
                            "slow consumer: a write blocked for {} s",
                            write_limit.as_secs()
                        ),
                    });
                }
            }
            if self.write_queued()? {
                return Ok(());
            }
        }
    }

    /// One non-blocking send of the frame `header` + `parts` (`total`
    /// bytes); returns how much the socket took. A frame of up to
    /// [`SMALL_FRAME`] bytes (a push, a reply) is joined on the stack and
    /// handed to `send(2)`: one buffer, and none of `writev`'s file-layer
    /// work (position lock, iovec copy, file permission hooks), which on a
    /// fan-out to thousands of sockets is a measurable share of each push.
    /// Larger frames go out with `sendmsg(2)` from the parts as they are
    /// (the header and up to three parts; what is left of a frame with more
    /// is not lost: like any short write, the caller queues the rest).
    ///
    /// The call goes to the socket directly, not through tokio's readiness
    /// check (`try_io`), which on a fan-out is another shared object read
    /// per socket. A `WouldBlock` here leaves tokio believing the socket
    /// writable; that costs [`Outbox::flush`] one extra pass, whose
    /// `try_write` then clears the readiness and waits for the next edge.
    fn send_now(&self, header: &[u8], parts: &[&[u8]], total: usize) -> io::Result<usize> {
        let socket = socket2::SockRef::from(&*self.stream);
        if total <= SMALL_FRAME {
            let mut frame = [0u8; SMALL_FRAME];
            let mut end = 0;
            for piece in std::iter::once(header).chain(parts.iter().copied()) {
                frame[end..end + piece.len()].copy_from_slice(piece);
                end += piece.len();
            }
            return socket.send(&frame[..end]);
        }
        let mut slices = [IoSlice::new(&[]); 4];
        slices[0] = IoSlice::new(header);
        let count = 1 + parts.len().min(3);
        for (slice, part) in slices[1..count].iter_mut().zip(parts) {
            *slice = IoSlice::new(part);
        }
        socket.send_vectored(&slices[..count])
    }

    /// Writes queued frames until the socket would block; returns whether
    /// the queue is empty.
    fn write_queued(&self) -> Result<bool, CloseReason> {
        let mut guard = self.pending();
        let pending = &mut *guard;
        if pending.in_batch {
            return Ok(false);
        }
        let mut progressed = false;
        while let Some(front) = pending.frames.front() {
            let rest = &front[pending.written..];
            match self.stream.try_write(rest) {
                Ok(n) => {
                    progressed |= n > 0;
                    let whole = n == rest.len();
                    pending.bytes -= n;
                    if whole {
                        pending.frames.pop_front();
                        pending.written = 0;
                        pending.front_started = false;
                    } else {
                        pending.written += n;
                        pending.front_started |= n > 0;
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    pending.closed = true;
                    return Err(gone());
                }
            }
        }
        let empty = pending.frames.is_empty();
        if empty {
            pending.blocked_since = None;
            pending.frames = VecDeque::new();
        } else if progressed {
            pending.blocked_since = Some(Instant::now());
        }
        Ok(empty)
    }

    /// Takes nothing more and drops what is queued (but the rest of a
    /// frame written in part, which the client needs to read the next
    /// one), then writes the close frame for `reason`, if any. Returns
    /// whether something is left for [`Outbox::flush`] to write.
    pub fn begin_close(&self, reason: Option<&CloseReason>) -> bool {
        let mut pending = self.pending();
        pending.finishing = true;
        if pending.closed && pending.frames.is_empty() && !pending.in_batch {
            return false;
        }
        let partly_written = pending
            .front_started
            .then(|| pending.frames.pop_front())
            .flatten();
        pending.frames.clear();
        pending.bytes = 0;
        match partly_written {
            Some(front) => {
                pending.bytes = front.len() - pending.written;
                pending.frames.push_back(front);
            }
            None => {
                pending.written = 0;
                pending.front_started = false;
            }
        }
        if let Some(reason) = reason {
            // 1005 says no code was given: the answer then has none either.
            let mut payload = Vec::new();
            if reason.code != CloseCode::Status {
                payload.extend_from_slice(&u16::from(reason.code).to_be_bytes());
                payload.extend_from_slice(within_close_limit(&reason.reason).as_bytes());
            }
            self.write_or_queue(&mut pending, OpCode::Close, &[&payload], payload.len());
        }
        pending.closed = true;
        if pending.frames.is_empty() {
            return pending.in_batch;
        }
        // The close frame gets the time of a write of its own, however
        // long the queue before it was blocked.
        pending.blocked_since = Some(Instant::now());
        true
    }
}

fn gone() -> CloseReason {
    CloseReason {
        code: CloseCode::Away,
        reason: String::new(),
    }
}

/// A close frame's reason may be at most 123 bytes (RFC 6455 §5.5).
fn within_close_limit(reason: &str) -> &str {
    const LIMIT: usize = 123;
    if reason.len() <= LIMIT {
        return reason;
    }
    let mut cut = LIMIT;
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    &reason[..cut]
}

/// The host's handle on one socket.
pub struct SocketSink {
    /// The socket's outgoing side.
    pub outbox: Arc<Outbox>,
    /// Batched pushes go through the thread's send batch
    /// (`batched_pushes` in the transport's configuration).
    pub batched: bool,
}

// The host's pushes are JSON it wrote itself (UTF-8) or MsgPack.
fn push_opcode(binary: bool) -> OpCode {
    if binary {
        OpCode::Binary
    } else {
        OpCode::Text
    }
}

impl PushSink for SocketSink {
    fn push(&self, frame: PushFrame) -> bool {
        self.push_parts(frame.binary, &frame.payload, &[])
    }

    fn push_parts(&self, binary: bool, shared: &[u8], tail: &[u8]) -> bool {
        self.outbox.push(push_opcode(binary), &[shared, tail]) == Queued::Yes
    }

    fn push_batched(&self, binary: bool, shared: &[u8], tail: &[u8]) -> bool {
        if !self.batched {
            return self.push_parts(binary, shared, tail);
        }
        let queued = self
            .outbox
            .push_batched(push_opcode(binary), &[shared, tail]);
        // Written here, not while the outbox was locked: settling the
        // batch locks the outbox of every push in it.
        if crate::batch::is_full() {
            crate::batch::flush();
        }
        queued == Queued::Yes
    }

    fn flush_batch(&self) {
        crate::batch::flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_headers_use_the_shortest_length_form() {
        let mut header = [0u8; 10];
        assert_eq!(frame_header(OpCode::Text, 125, &mut header), 2);
        assert_eq!(header[..2], [0x81, 125]);
        assert_eq!(frame_header(OpCode::Binary, 126, &mut header), 4);
        assert_eq!(header[..4], [0x82, 126, 0, 126]);
        assert_eq!(frame_header(OpCode::Close, 70_000, &mut header), 10);
        assert_eq!(header[..10], [0x88, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
    }

    /// Reads server (unmasked) frames from `bytes`: (opcode, payload).
    fn frames_in(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut frames = Vec::new();
        while !bytes.is_empty() {
            let opcode = bytes[0] & 0x0f;
            let (len, header) = match bytes[1] {
                126 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
                127 => (
                    u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                short => (short as usize, 2),
            };
            assert!(bytes.len() >= header + len, "a frame is cut short");
            frames.push((opcode, bytes[header..header + len].to_vec()));
            bytes = &bytes[header + len..];
        }
        frames
    }

    /// An outbox on the server end of a loopback connection, the client
    /// end, and what the outbox asks to close with.
    async fn connected(
        limits: QueueLimits,
    ) -> (
        Arc<Outbox>,
        tokio::net::TcpStream,
        watch::Receiver<Option<CloseReason>>,
    ) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (close, closing) = watch::channel(None);
        (
            Arc::new(Outbox::new(Arc::new(server), limits, close)),
            client,
            closing,
        )
    }

    /// Closes `outbox` with nothing left to write and returns the frames
    /// the client received.
    async fn closed_and_read(
        outbox: Arc<Outbox>,
        mut client: tokio::net::TcpStream,
    ) -> Vec<(u8, Vec<u8>)> {
        use tokio::io::AsyncReadExt;

        assert!(!outbox.begin_close(None));
        drop(outbox);
        let mut received = Vec::new();
        client.read_to_end(&mut received).await.unwrap();
        frames_in(&received)
    }

    /// Lets the socket's task write what `outbox` holds (a close frame
    /// last) while the client reads, and returns the frames it received.
    async fn flushed_and_read(
        outbox: Arc<Outbox>,
        mut client: tokio::net::TcpStream,
    ) -> Vec<(u8, Vec<u8>)> {
        use tokio::io::AsyncReadExt;

        let reading = tokio::spawn(async move {
            let mut received = Vec::new();
            client.read_to_end(&mut received).await.unwrap();
            received
        });
        outbox.flush(Duration::from_secs(10)).await.unwrap();
        drop(outbox);
        frames_in(&reading.await.unwrap())
    }

    /// Frames sent whole at once, joined on the stack or sent from their
    /// parts (both sides of [`SMALL_FRAME`]), arrive intact and in order.
    #[tokio::test(flavor = "current_thread")]
    async fn frames_of_every_size_arrive_whole_and_in_order() {
        let (outbox, client, _closing) = connected(QueueLimits {
            frames: 8,
            bytes: 1 << 20,
        })
        .await;
        let sizes = [
            0,
            1,
            125,
            126,
            SMALL_FRAME - 4,
            SMALL_FRAME - 3,
            SMALL_FRAME,
            70_000,
        ];
        let mut sent = Vec::new();
        for (index, size) in sizes.into_iter().enumerate() {
            let body = vec![b'a' + index as u8; size];
            let (head, tail) = body.split_at(size / 2);
            let opcode = if index % 2 == 0 {
                OpCode::Text
            } else {
                OpCode::Binary
            };
            assert_eq!(outbox.push(opcode, &[head, tail]), Queued::Yes);
            sent.push((opcode as u8, body));
        }
        assert_eq!(closed_and_read(outbox, client).await, sent);
    }

    /// A client that stops reading in the middle of a push, then is closed
    /// as a slow consumer: it must still receive that push whole and then
    /// the close frame, or it misreads the close frame as push bytes.
    #[tokio::test(flavor = "current_thread")]
    async fn a_push_written_in_part_is_finished_before_the_close_frame() {
        let (outbox, client, closing) = connected(QueueLimits {
            frames: 1,
            bytes: 64 << 20,
        })
        .await;
        // Larger than the socket buffers take while the client does not
        // read: written in part, the rest queued.
        let big = vec![b'x'; 32 << 20];
        assert_eq!(outbox.push(OpCode::Text, &[&big, b"tail"]), Queued::Yes);
        assert_eq!(outbox.push(OpCode::Text, &[b"next"]), Queued::No);
        let reason = closing.borrow().clone().expect("closed as a slow consumer");
        assert_eq!(reason.code, CloseCode::Policy);
        assert!(outbox.begin_close(Some(&reason)));

        let frames = flushed_and_read(outbox, client).await;

        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].0, OpCode::Text as u8);
        assert_eq!(frames[0].1.len(), big.len() + 4);
        assert!(frames[0].1.ends_with(b"tail"));
        assert_eq!(frames[1].0, OpCode::Close as u8);
        assert_eq!(frames[1].1[..2], 1008u16.to_be_bytes());
        assert!(String::from_utf8_lossy(&frames[1].1[2..]).contains("slow consumer"));
    }

    /// Pushes held in the thread's send batch (io_uring on this machine),
    /// with a second push and a reply to the same socket made while the
    /// first waits in the batch, and more pushes than one batch holds:
    /// everything arrives whole and in the order it was made.
    #[tokio::test(flavor = "current_thread")]
    async fn batched_pushes_arrive_whole_and_in_order() {
        crate::batch::probe().expect("this machine's kernel offers io_uring");
        let (outbox, client, _closing) = connected(QueueLimits {
            frames: 1024,
            bytes: 1 << 20,
        })
        .await;
        let mut sent = Vec::new();
        assert_eq!(
            outbox.push_batched(OpCode::Text, &[b"first ", b"push"]),
            Queued::Yes
        );
        sent.push((OpCode::Text as u8, b"first push".to_vec()));
        // The first push waits in the batch: these queue behind it.
        assert_eq!(
            outbox.push_batched(OpCode::Binary, &[b"second"]),
            Queued::Yes
        );
        sent.push((OpCode::Binary as u8, b"second".to_vec()));
        assert_eq!(outbox.try_send(OpCode::Text, b"reply"), Some(Queued::Yes));
        sent.push((OpCode::Text as u8, b"reply".to_vec()));
        crate::batch::flush();
        // The frames queued behind the batch are the task's to write.
        outbox.flush(Duration::from_secs(10)).await.unwrap();
        for round in 0..3 * crate::batch::BATCH_FRAMES {
            let body = format!("push {round}").into_bytes();
            assert_eq!(outbox.push_batched(OpCode::Text, &[&body]), Queued::Yes);
            sent.push((OpCode::Text as u8, body));
            if crate::batch::is_full() {
                crate::batch::flush();
            }
            if round % 7 == 0 {
                crate::batch::flush();
            }
        }
        crate::batch::flush();
        // A push made while the socket's previous one waited in the batch
        // was queued behind it, for the socket's task.
        assert!(!outbox.pending().frames.is_empty());
        outbox.flush(Duration::from_secs(10)).await.unwrap();
        assert_eq!(closed_and_read(outbox, client).await, sent);
    }

    /// A batched push that the socket takes only in part (the client does
    /// not read): the rest is queued first, the socket's task finishes it
    /// once the client reads, and the close frame asked for while the push
    /// waited in the batch comes after it.
    #[tokio::test(flavor = "current_thread")]
    async fn a_batched_push_taken_in_part_is_finished_before_the_close_frame() {
        crate::batch::probe().expect("this machine's kernel offers io_uring");
        let (outbox, client, _closing) = connected(QueueLimits {
            frames: 8,
            bytes: 64 << 20,
        })
        .await;
        let big = vec![b'y'; 32 << 20];
        assert_eq!(
            outbox.push_batched(OpCode::Binary, &[&big, b"end"]),
            Queued::Yes
        );
        let reason = CloseReason {
            code: CloseCode::Normal,
            reason: "bye".into(),
        };
        assert!(
            outbox.begin_close(Some(&reason)),
            "the push in the batch is still to be settled"
        );
        crate::batch::flush();

        let frames = flushed_and_read(outbox, client).await;
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].0, OpCode::Binary as u8);
        assert_eq!(frames[0].1.len(), big.len() + 3);
        assert!(frames[0].1.ends_with(b"end"));
        assert_eq!(frames[1].0, OpCode::Close as u8);
        assert_eq!(frames[1].1, b"\x03\xe8bye");
    }

    /// A socket that is closing drops a batched push that nothing of was
    /// sent, as it drops queued pushes, and its task's last flush returns
    /// once the batch has settled it.
    #[tokio::test(flavor = "current_thread")]
    async fn closing_while_a_push_waits_in_the_batch_ends_cleanly() {
        crate::batch::probe().expect("this machine's kernel offers io_uring");
        let (outbox, mut client, _closing) = connected(QueueLimits {
            frames: 8,
            bytes: 1 << 20,
        })
        .await;
        assert_eq!(outbox.push_batched(OpCode::Text, &[b"late"]), Queued::Yes);
        assert!(outbox.begin_close(None));
        let task = {
            let outbox = outbox.clone();
            tokio::spawn(async move { outbox.flush(Duration::from_secs(10)).await })
        };
        tokio::task::yield_now().await;
        crate::batch::flush();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the last flush returns once the batch settled the push")
            .unwrap()
            .unwrap();
        drop(outbox);
        let mut received = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut client, &mut received)
            .await
            .unwrap();
        // Sent whole by the batch (the socket had room): nothing was cut.
        assert_eq!(
            frames_in(&received),
            vec![(OpCode::Text as u8, b"late".to_vec())]
        );
    }
}
