//! The post log: how a lone post is made durable without a durable redb
//! commit.
//!
//! A durable redb commit does fixed work whatever it carries (it records
//! the pages the commit frees and allocates in redb's system tables, frees
//! those of earlier commits, and runs a second commit to do so): ~150,000 of
//! the ~295,000 instructions a lone post cost, half of a single client's
//! wait (docs/storage-embedded.md, "Lone posts through the post log"). So a
//! post that is the only write in flight is written here, as the post's
//! inputs (queue, client id, time, messages and the random part of their
//! ids), and synced before it is answered (the kernel writes it while the
//! post is applied, see [`crate::log_ring`]); it is applied in a redb
//! commit that is *not* durable (made after the answer, see
//! [`crate::late_commit`]),
//! which also records the post's log sequence number (LSN) in the `meta`
//! table. Every 512 posts (or once the file is full) a durable redb commit
//! takes in all of them and the log starts over.
//!
//! The writer thread does the same for a batch made only of posts, claims
//! (without a dead-letter policy) and deletes of a message, what producers
//! and consumers send: one record holds the batch's writes ([`LoggedOp`]),
//! handed to the journal's sync thread as a journal record would be, the
//! batch is committed without durability, and its callers are answered once
//! the record is durable. Any other batch commits durably, which takes in
//! every write logged before it: the log starts over once that commit's
//! record is durable (docs/storage-embedded.md, "Batches of posts through
//! the post log" and "Claims and deletes through the post log"). A lone
//! claim or delete commits durably, as before.
//!
//! After a crash, redb comes back at its last durable commit, whose `meta`
//! row names the last logged record it holds; the writes logged after it
//! are applied again, in order, to that same state: each post gets the
//! sequence number and id it was answered with, each claim (whose id was
//! drawn before it was logged) takes the same messages, and each delete
//! removes what it removed. Each depends only on that state and the time
//! it carries. Nothing but logged writes is ever committed without
//! durability, so nothing else can have come between them.
//!
//! The file is allocated and zero-filled once and overwritten from its
//! start after each durable commit; records are written with direct I/O
//! where the file system allows it, as the journal's are. A record is valid
//! when its checksum holds and its LSN follows the one before it (the first
//! may have any): records left from before the last restart of the log
//! carry LSNs no higher than the one the durable commit recorded, so they
//! are skipped, and a record torn by a crash ends the scan.
//!
//! Record: `MAGIC u32 | lsn u64 | payload length u32 | crc32 u32 | payload`,
//! padded with zeros to a multiple of [`ALIGN`]; the crc covers the LSN,
//! the length and the payload.

use std::{
    fs::{self, File, OpenOptions},
    io,
    os::unix::fs::FileExt,
    path::Path,
    sync::Arc,
};

use plugin_api::{
    storage::{ClaimRequest, NewMessage, QueueRef, StoredClaim},
    types::{ROption, RString, RVec},
};

use crate::{
    codec::{Reader, Writer},
    error::{OpError, OpResult},
    group_commit::WriteTables,
    journal::{open_segment, sync_dir, AlignedBuffer, ALIGN},
    log_ring::{LogRing, WriteInFlight},
};

/// The log's file in the data directory.
pub(crate) const FILE: &str = "posts.log";
/// The size of a new log file. Records of posts too large for what is left
/// go through a durable commit instead. A file of another size (made by a
/// build with another size) is used as it is, so that its records are kept.
const CAPACITY: u64 = 1024 * 1024;
/// At most this many posts are logged between two durable commits: each
/// non-durable commit leaves redb a list of freed pages to keep in memory
/// (and pages the file cannot reuse) until the next durable one records
/// them, which makes that commit slower the more there are. One post in
/// this many waits for it, so above 100 it stays out of the 99th
/// percentile; for a lone writer the cost per post hardly falls beyond 64
/// (callgrind, one producer: 185,700 instructions a post at 16, 176,700 at
/// 64, 175,200 at 128, 174,100 at 256; lone posts, one block each, fill the
/// file at 256). Batches of posts gain more: at 64 producers, 512 instead
/// of 128 gave 3-13 % more posts/s in three alternating rounds of three
/// (docs/BENCHMARKS.md, "Batches of posts through the post log"). A claim
/// or a delete counts as one post.
pub(crate) const POSTS_PER_CYCLE: u32 = 512;

const MAGIC: u32 = 0x5a51_504c; // "ZQPL"
const HEADER: usize = 20;
/// A record of one post.
const PAYLOAD_V1: u8 = 1;
/// A record of a batch's posts: their count, then each one's version 1
/// payload, length-prefixed. Builds before it refuse to open a log that
/// holds one not yet taken in by a durable commit. Still read; no longer
/// written.
const PAYLOAD_BATCH: u8 = 2;
/// A record of a batch's operations (posts, deletes of a message, claims):
/// their count, then each one's kind and its payload, length-prefixed.
/// Builds before it refuse to open a log that holds one not yet taken in.
const PAYLOAD_OPS: u8 = 3;
const OP_POST: u8 = 1;
const OP_DELETE: u8 = 2;
const OP_CLAIM: u8 = 3;

/// A write the post log can make durable, as it keeps it: everything its
/// application depends on, so that applying it again after a crash, in
/// order and to the same state, does exactly what was answered.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum LoggedOp {
    Post(Arc<LoggedPost>),
    Delete(Arc<LoggedDelete>),
    Claim(Arc<LoggedClaim>),
}

impl LoggedOp {
    /// Applies the operation again at open; what it answers is dropped.
    pub(crate) fn replay(&self, t: &mut WriteTables<'_>) -> OpResult<()> {
        match self {
            Self::Post(post) => crate::messages::post_logged(t, post).map(|_| ()),
            Self::Delete(delete) => delete.apply(t),
            Self::Claim(claim) => claim.apply(t).map(|_| ()),
        }
    }

    /// One record for `ops`, in the order they were applied.
    pub(crate) fn encode_batch(ops: &[&LoggedOp]) -> Vec<u8> {
        let mut w = Writer::with_capacity(8 + ops.len() * 256);
        w.u8(PAYLOAD_OPS)
            .u32(u32::try_from(ops.len()).expect("a batch holds few writes"));
        for op in ops {
            match op {
                Self::Post(post) => w.u8(OP_POST).bytes(&post.encode()),
                Self::Delete(delete) => w.u8(OP_DELETE).bytes(&delete.encode()),
                Self::Claim(claim) => w.u8(OP_CLAIM).bytes(&claim.encode()),
            };
        }
        w.finish()
    }

    /// The operations of a record: of one post, of a batch's posts, or of a
    /// batch's operations.
    pub(crate) fn decode_record(payload: &[u8]) -> Result<Vec<Self>, OpError> {
        match payload.first() {
            Some(&PAYLOAD_OPS) => {}
            Some(&PAYLOAD_BATCH) => {
                let posts = LoggedPost::decode_batch(payload)?;
                return Ok(posts
                    .into_iter()
                    .map(|post| Self::Post(Arc::new(post)))
                    .collect());
            }
            _ => return Ok(vec![Self::Post(Arc::new(LoggedPost::decode(payload)?))]),
        }
        let mut r = Reader::new(payload);
        r.version(PAYLOAD_OPS)?;
        let count = r.u32()? as usize;
        let mut ops = Vec::with_capacity(count.min(4096));
        for _ in 0..count {
            let kind = r.u8()?;
            let payload = r.bytes()?;
            ops.push(match kind {
                OP_POST => Self::Post(Arc::new(LoggedPost::decode(payload)?)),
                OP_DELETE => Self::Delete(Arc::new(LoggedDelete::decode(payload)?)),
                OP_CLAIM => Self::Claim(Arc::new(LoggedClaim::decode(payload)?)),
                other => {
                    return Err(crate::error::corrupt(format!(
                        "a post-log record holds an operation of unknown kind {other}"
                    )))
                }
            });
        }
        Ok(ops)
    }
}

/// The delete of one message, as the log keeps it. Whether its claim
/// allows it depends only on the state it is applied to and `now_ms`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LoggedDelete {
    pub queue: QueueRef,
    pub id: RString,
    pub claim_id: Option<RString>,
    pub now_ms: u64,
}

impl LoggedDelete {
    pub(crate) fn apply(&self, t: &mut WriteTables<'_>) -> OpResult<()> {
        let claim_id = self.claim_id.as_ref().map(RString::as_str);
        crate::messages::delete(t, &self.queue, &self.id, claim_id, self.now_ms)
    }

    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(96);
        w.bytes(self.queue.project.as_bytes())
            .bytes(self.queue.name.as_bytes())
            .bytes(self.id.as_bytes())
            .u8(u8::from(self.claim_id.is_some()))
            .bytes(self.claim_id.as_ref().map_or(&[][..], |c| c.as_bytes()))
            .u64(self.now_ms);
        w.finish()
    }

    fn decode(payload: &[u8]) -> Result<Self, OpError> {
        let mut r = Reader::new(payload);
        let queue = QueueRef::new(r.str()?, r.str()?);
        let id = RString::from(r.str()?);
        let has_claim = r.u8()? != 0;
        let claim_id = r.str()?;
        Ok(Self {
            queue,
            id,
            claim_id: has_claim.then(|| RString::from(claim_id)),
            now_ms: r.u64()?,
        })
    }
}

/// A claim, as the log keeps it: with its id drawn beforehand, the messages
/// it takes depend only on the state it is applied to and `now_ms`. Only a
/// claim without a dead-letter policy is logged: moving a message to a
/// dead-letter queue draws the random part of its new id.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LoggedClaim {
    pub queue: QueueRef,
    pub ttl: u32,
    pub grace: u32,
    pub limit: u32,
    pub now_ms: u64,
    pub claim: u128,
}

impl LoggedClaim {
    /// The claim `request` makes of `queue`, with a new id; `None` if it
    /// has a dead-letter policy.
    pub(crate) fn of(queue: QueueRef, request: &ClaimRequest, now_ms: u64) -> Option<Self> {
        request.dead_letter.is_none().then(|| Self {
            queue,
            ttl: request.ttl,
            grace: request.grace,
            limit: request.limit,
            now_ms,
            claim: crate::ids::new_claim(),
        })
    }

    pub(crate) fn apply(&self, t: &mut WriteTables<'_>) -> OpResult<StoredClaim> {
        let request = ClaimRequest {
            ttl: self.ttl,
            grace: self.grace,
            limit: self.limit,
            dead_letter: ROption::RNone,
        };
        crate::claims::create(t, &self.queue, &request, self.now_ms, self.claim)
    }

    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(80);
        w.bytes(self.queue.project.as_bytes())
            .bytes(self.queue.name.as_bytes())
            .u32(self.ttl)
            .u32(self.grace)
            .u32(self.limit)
            .u64(self.now_ms)
            .u128(self.claim);
        w.finish()
    }

    fn decode(payload: &[u8]) -> Result<Self, OpError> {
        let mut r = Reader::new(payload);
        Ok(Self {
            queue: QueueRef::new(r.str()?, r.str()?),
            ttl: r.u32()?,
            grace: r.u32()?,
            limit: r.u32()?,
            now_ms: r.u64()?,
            claim: r.u128()?,
        })
    }
}

/// A post as the log keeps it: everything its application depends on.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LoggedPost {
    pub queue: QueueRef,
    pub client_id: RString,
    pub now_ms: u64,
    pub messages: RVec<NewMessage>,
    /// The random part of each message's id, in order.
    pub tags: Vec<u32>,
}

impl LoggedPost {
    /// A post of `messages`, with the random part of each message's id
    /// drawn now.
    pub(crate) fn new(
        queue: QueueRef,
        client_id: RString,
        now_ms: u64,
        messages: RVec<NewMessage>,
    ) -> Self {
        let tags = messages.iter().map(|_| crate::ids::new_tag()).collect();
        Self {
            queue,
            client_id,
            now_ms,
            messages,
            tags,
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let bodies: usize = self.messages.iter().map(|m| m.body.len() + 16).sum();
        let mut w = Writer::with_capacity(64 + bodies);
        w.u8(PAYLOAD_V1)
            .bytes(self.queue.project.as_bytes())
            .bytes(self.queue.name.as_bytes())
            .bytes(self.client_id.as_bytes())
            .u64(self.now_ms)
            .u32(u32::try_from(self.messages.len()).expect("a post holds few messages"));
        for (m, tag) in self.messages.iter().zip(&self.tags) {
            w.u32(m.ttl).u32(m.delay).u32(*tag).bytes(&m.body);
        }
        w.finish()
    }

    /// The posts of a record of a batch's posts (written by builds before
    /// [`PAYLOAD_OPS`]).
    fn decode_batch(payload: &[u8]) -> Result<Vec<Self>, OpError> {
        let mut r = Reader::new(payload);
        r.version(PAYLOAD_BATCH)?;
        let count = r.u32()? as usize;
        let mut posts = Vec::with_capacity(count.min(4096));
        for _ in 0..count {
            posts.push(Self::decode(r.bytes()?)?);
        }
        Ok(posts)
    }

    pub(crate) fn decode(payload: &[u8]) -> Result<Self, OpError> {
        let mut r = Reader::new(payload);
        r.version(PAYLOAD_V1)?;
        let queue = QueueRef::new(r.str()?, r.str()?);
        let client_id = RString::from(r.str()?);
        let now_ms = r.u64()?;
        let count = r.u32()? as usize;
        let mut messages = Vec::with_capacity(count.min(1024));
        let mut tags = Vec::with_capacity(count.min(1024));
        for _ in 0..count {
            let ttl = r.u32()?;
            let delay = r.u32()?;
            tags.push(r.u32()?);
            messages.push(NewMessage {
                ttl,
                delay,
                body: r.bytes()?.to_vec().into(),
            });
        }
        Ok(Self {
            queue,
            client_id,
            now_ms,
            messages: messages.into(),
            tags,
        })
    }
}

/// A record as found: its LSN and payload.
pub(crate) type Record = (u64, Vec<u8>);

/// The open log: where the next record goes.
pub(crate) struct PostLog {
    file: Arc<File>,
    /// The file's size, in whole blocks.
    capacity: u64,
    /// Where the next record goes.
    end: u64,
    /// The LSN the next record takes.
    next_lsn: u64,
    /// Posts since the log last started over.
    logged: u32,
    buffer: AlignedBuffer,
    /// Where a lone post's record is written, if the kernel lets us (see
    /// [`crate::log_ring`]); `pwrite` and `fdatasync` otherwise.
    ring: Option<LogRing>,
    /// A durable commit that holds every post logged so far: the log may
    /// start over once that commit's journal record is durable.
    taken_in_by: Option<crate::journal_sync::Ticket>,
}

impl PostLog {
    /// Opens the log in `dir` (creating and zero-filling it if needed) and
    /// returns it with the records it holds, oldest first. The log goes on
    /// after the last of them until [`PostLog::restart`].
    pub(crate) fn open(dir: &Path) -> io::Result<(Self, Vec<Record>)> {
        let path = dir.join(FILE);
        if !path.exists() {
            create(dir)?;
        }
        let contents = fs::read(&path)?;
        // Whole blocks only: direct I/O writes whole blocks.
        let capacity = contents.len() as u64 / ALIGN as u64 * ALIGN as u64;
        let (records, end) = scan(&contents);
        let next_lsn = records.last().map_or(1, |(lsn, _)| lsn + 1);
        let file = Arc::new(open_segment(OpenOptions::new().write(true), &path)?);
        let ring = LogRing::new()
            .inspect_err(|why| {
                crate::log::info(&format!(
                    "embedded store: the post log writes with pwrite and fdatasync: {why}"
                ))
            })
            .ok();
        let log = Self {
            file,
            capacity,
            end: end as u64,
            next_lsn,
            logged: u32::try_from(records.len()).unwrap_or(u32::MAX),
            buffer: AlignedBuffer::default(),
            ring,
            taken_in_by: None,
        };
        Ok((log, records))
    }

    /// Whether a record of `payload_len` bytes is taken now; if not, the
    /// caller commits durably and [`PostLog::restart`]s the log.
    pub(crate) fn takes(&self, payload_len: usize) -> bool {
        self.takes_posts(1, payload_len)
    }

    /// The same for a record of `posts` posts.
    pub(crate) fn takes_posts(&self, posts: u32, payload_len: usize) -> bool {
        self.logged.saturating_add(posts) <= POSTS_PER_CYCLE
            && self.end + padded(payload_len) <= self.capacity
    }

    /// Notes that the durable commit whose journal record is `ticket` holds
    /// every post logged so far.
    pub(crate) fn taken_in_by(&mut self, ticket: crate::journal_sync::Ticket) {
        if self.holds_posts() {
            self.taken_in_by = Some(ticket);
        }
    }

    /// Starts the log over if a durable commit noted by
    /// [`PostLog::taken_in_by`] holds its posts, once that commit's record
    /// is durable: only then may their records be overwritten.
    pub(crate) fn restart_if_taken_in(
        &mut self,
        sync: &crate::journal_sync::JournalSync,
    ) -> io::Result<()> {
        if let Some(ticket) = self.taken_in_by {
            sync.wait_durable(ticket)?;
            self.restart(0);
        }
        Ok(())
    }

    /// Whether posts were logged since the log last started over.
    pub(crate) fn holds_posts(&self) -> bool {
        self.logged > 0
    }

    /// The LSN the next record takes.
    pub(crate) fn next_lsn(&self) -> u64 {
        self.next_lsn
    }

    /// Writes `payload` as the next record and syncs it; returns its LSN.
    /// The caller has checked [`PostLog::takes`].
    #[cfg(test)]
    pub(crate) fn append(&mut self, payload: &[u8]) -> io::Result<u64> {
        self.append_posts(payload, 1)
    }

    /// The same for a record of `posts` posts.
    #[cfg(test)]
    pub(crate) fn append_posts(&mut self, payload: &[u8], posts: u32) -> io::Result<u64> {
        let lsn = self.next_lsn;
        self.start_append(payload, posts)?.finish()?;
        Ok(lsn)
    }

    /// Starts writing `payload`, of `posts` posts, as the next record,
    /// synced: through the ring if there is one, so that the caller works
    /// on while the disk syncs; at once otherwise. The record is durable
    /// once [`Appending::finish`] returns `Ok` (the caller has checked
    /// [`PostLog::takes_posts`]). Its place is taken either way: if the
    /// write fails, writing stops (see [`crate::journal_sync`]), so the
    /// place is never reused.
    pub(crate) fn start_append(&mut self, payload: &[u8], posts: u32) -> io::Result<Appending<'_>> {
        let record = record(self.next_lsn, payload)?;
        let len = self.buffer.fill(&record);
        let offset = self.take_place(len, posts);
        let bytes = self.buffer.filled(len);
        Ok(match &mut self.ring {
            Some(ring) => Appending::InFlight(ring.start(&self.file, bytes, offset)?),
            None => Appending::Done(write_synced(&self.file, bytes, offset)),
        })
    }

    /// Takes the place of the next record, of `posts` posts, and returns
    /// the write that puts it there and syncs it, to run on another thread
    /// (the caller has checked [`PostLog::takes_posts`]). Until the write
    /// has run, the record is not durable; if it fails, writing stops (see
    /// [`crate::journal_sync`]), so the place is never reused.
    pub(crate) fn reserve(&mut self, payload: &[u8], posts: u32) -> io::Result<LogWrite> {
        let record = record(self.next_lsn, payload)?;
        let mut buffer = AlignedBuffer::default();
        let len = buffer.fill(&record);
        let offset = self.take_place(len, posts);
        Ok(LogWrite {
            file: Arc::clone(&self.file),
            offset,
            buffer,
            len,
        })
    }

    /// Gives the next record, `len` bytes padded, of `posts` posts, its
    /// place and LSN; returns its offset.
    fn take_place(&mut self, len: usize, posts: u32) -> u64 {
        let offset = self.end;
        self.end += len as u64;
        self.next_lsn += 1;
        self.logged = self.logged.saturating_add(posts);
        offset
    }

    /// Starts the log over from its beginning, once a durable commit holds
    /// every post logged so far; the next record takes `next_lsn` (at
    /// least the one it would have taken).
    pub(crate) fn restart(&mut self, next_lsn: u64) {
        self.end = 0;
        self.logged = 0;
        self.taken_in_by = None;
        self.next_lsn = self.next_lsn.max(next_lsn);
    }
}

/// A record's write started by [`PostLog::start_append`].
pub(crate) enum Appending<'a> {
    InFlight(WriteInFlight<'a>),
    Done(io::Result<()>),
}

impl Appending<'_> {
    /// Waits for the write; `Ok` once the record is durable.
    pub(crate) fn finish(self) -> io::Result<()> {
        match self {
            Self::InFlight(write) => write.finish(),
            Self::Done(outcome) => outcome,
        }
    }
}

/// A record's write, made by [`PostLog::reserve`].
pub(crate) struct LogWrite {
    file: Arc<File>,
    offset: u64,
    buffer: AlignedBuffer,
    len: usize,
}

impl LogWrite {
    /// Writes the record and syncs it.
    pub(crate) fn run(self) -> io::Result<()> {
        write_synced(&self.file, self.buffer.filled(self.len), self.offset)
    }
}

/// Writes `bytes` at `offset` and syncs them.
fn write_synced(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    file.write_all_at(bytes, offset)?;
    file.sync_data()
}

/// Record `lsn` holding `payload`, without its padding.
fn record(lsn: u64, payload: &[u8]) -> io::Result<Vec<u8>> {
    let mut record = Vec::with_capacity(HEADER + payload.len());
    record.extend_from_slice(&MAGIC.to_le_bytes());
    record.extend_from_slice(&lsn.to_le_bytes());
    let len = u32::try_from(payload.len()).map_err(io::Error::other)?;
    record.extend_from_slice(&len.to_le_bytes());
    record.extend_from_slice(&checksum(lsn, payload).to_le_bytes());
    record.extend_from_slice(payload);
    Ok(record)
}

fn padded(payload_len: usize) -> u64 {
    ((HEADER + payload_len).div_ceil(ALIGN) * ALIGN) as u64
}

fn checksum(lsn: u64, payload: &[u8]) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&lsn.to_le_bytes());
    crc.update(&(payload.len() as u32).to_le_bytes());
    crc.update(payload);
    crc.finalize()
}

/// The valid records from the start of `contents`, each LSN one more than
/// the last, and where the bytes they take end.
fn scan(contents: &[u8]) -> (Vec<Record>, usize) {
    let mut found: Vec<Record> = Vec::new();
    let mut at = 0;
    while let Some(header) = contents.get(at..at + HEADER) {
        let field = |from: usize, len: usize| &header[from..from + len];
        let magic = u32::from_le_bytes(field(0, 4).try_into().expect("4 bytes"));
        let lsn = u64::from_le_bytes(field(4, 8).try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(field(12, 4).try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(field(16, 4).try_into().expect("4 bytes"));
        let follows = found.last().is_none_or(|(last, _)| lsn == last + 1);
        let Some(payload) = contents.get(at + HEADER..at + HEADER + len) else {
            break;
        };
        if magic != MAGIC || !follows || checksum(lsn, payload) != crc {
            break;
        }
        found.push((lsn, payload.to_vec()));
        at += padded(len) as usize;
    }
    (found, at)
}

/// Creates the log file zero-filled, under a temporary name first so that a
/// crash never leaves a short one.
fn create(dir: &Path) -> io::Result<()> {
    let temporary = dir.join("posts.tmp");
    let file = File::create(&temporary)?;
    file.write_all_at(&vec![0u8; CAPACITY as usize], 0)?;
    file.sync_all()?;
    fs::rename(&temporary, dir.join(FILE))?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(body: &str, tag: u32) -> LoggedPost {
        LoggedPost {
            queue: QueueRef::new("p", "q"),
            client_id: "c".into(),
            now_ms: 42,
            messages: vec![NewMessage {
                ttl: 60,
                delay: 3,
                body: body.as_bytes().to_vec().into(),
            }]
            .into(),
            tags: vec![tag],
        }
    }

    #[test]
    fn a_logged_post_decodes_to_itself() {
        let logged = post("\"hello\"", 7);
        assert_eq!(LoggedPost::decode(&logged.encode()).unwrap(), logged);
        assert!(LoggedPost::decode(&logged.encode()[..10]).is_err());
    }

    /// A record of a batch's posts as builds of format 7 wrote it.
    fn batch_of_posts(posts: &[&LoggedPost]) -> Vec<u8> {
        let mut w = Writer::with_capacity(512);
        w.u8(PAYLOAD_BATCH).u32(posts.len() as u32);
        for post in posts {
            w.bytes(&post.encode());
        }
        w.finish()
    }

    fn delete(id: &str, claim_id: Option<&str>, now_ms: u64) -> LoggedOp {
        LoggedOp::Delete(Arc::new(LoggedDelete {
            queue: QueueRef::new("p", "q"),
            id: id.into(),
            claim_id: claim_id.map(RString::from),
            now_ms,
        }))
    }

    fn claim(claim: u128, limit: u32, now_ms: u64) -> LoggedOp {
        LoggedOp::Claim(Arc::new(LoggedClaim {
            queue: QueueRef::new("p", "q"),
            ttl: 60,
            grace: 30,
            limit,
            now_ms,
            claim,
        }))
    }

    #[test]
    fn a_record_decodes_to_its_operations_whichever_build_wrote_it() {
        let (first, second) = (post("\"one\"", 1), post("\"two\"", 2));
        let ops = vec![
            LoggedOp::Post(Arc::new(first.clone())),
            claim(0xc1a1, 10, 43),
            delete("0000000000000001000000a1", Some("0000000000000000c1a1"), 44),
            delete("0000000000000002000000b2", None, 45),
            LoggedOp::Post(Arc::new(second.clone())),
        ];
        let record = LoggedOp::encode_batch(&ops.iter().collect::<Vec<_>>());
        assert_eq!(LoggedOp::decode_record(&record).unwrap(), ops);
        assert!(LoggedOp::decode_record(&record[..record.len() - 1]).is_err());
        let as_posts = |posts: Vec<LoggedPost>| {
            posts
                .into_iter()
                .map(|post| LoggedOp::Post(Arc::new(post)))
                .collect::<Vec<_>>()
        };
        let old_batch = batch_of_posts(&[&first, &second]);
        assert_eq!(
            LoggedOp::decode_record(&old_batch).unwrap(),
            as_posts(vec![first.clone(), second])
        );
        assert_eq!(
            LoggedOp::decode_record(&first.encode()).unwrap(),
            as_posts(vec![first])
        );
    }

    #[test]
    fn a_reserved_record_is_found_once_its_write_has_run() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PostLog::open(dir.path()).unwrap();
        log.append(b"one").unwrap();
        let write = log.reserve(b"two", 3).unwrap();
        assert_eq!(log.next_lsn(), 3, "the place is taken at once");
        assert!(
            !log.takes_posts(POSTS_PER_CYCLE - 3, 1),
            "and its posts count"
        );
        let (_, found) = PostLog::open(dir.path()).unwrap();
        assert_eq!(found, vec![(1, b"one".to_vec())], "not written yet");
        write.run().unwrap();
        let (_, found) = PostLog::open(dir.path()).unwrap();
        assert_eq!(found, vec![(1, b"one".to_vec()), (2, b"two".to_vec())]);
    }

    #[test]
    fn records_are_found_again_in_order_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, found) = PostLog::open(dir.path()).unwrap();
        assert!(found.is_empty());
        assert_eq!(log.append(b"one").unwrap(), 1);
        assert_eq!(log.append(&[7u8; 5000]).unwrap(), 2);
        drop(log);
        let (log, found) = PostLog::open(dir.path()).unwrap();
        assert_eq!(found, vec![(1, b"one".to_vec()), (2, vec![7u8; 5000])]);
        assert_eq!(log.next_lsn(), 3);
    }

    #[test]
    fn after_a_restart_older_records_past_the_new_ones_are_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PostLog::open(dir.path()).unwrap();
        for payload in [b"a", b"b", b"c"] {
            log.append(payload).unwrap();
        }
        log.restart(4);
        assert_eq!(log.append(b"d").unwrap(), 4);
        drop(log);
        // "b" (LSN 2) and "c" (LSN 3) still lie after "d" in the file.
        let (_, found) = PostLog::open(dir.path()).unwrap();
        assert_eq!(found, vec![(4, b"d".to_vec())]);
    }

    #[test]
    fn a_torn_record_ends_the_scan() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PostLog::open(dir.path()).unwrap();
        for payload in [b"a", b"b", b"c"] {
            log.append(payload).unwrap();
        }
        drop(log);
        let path = dir.path().join(FILE);
        let mut bytes = fs::read(&path).unwrap();
        bytes[ALIGN + HEADER] ^= 0xff; // the payload of "b"
        fs::write(&path, &bytes).unwrap();
        let (log, found) = PostLog::open(dir.path()).unwrap();
        assert_eq!(found, vec![(1, b"a".to_vec())]);
        assert_eq!(log.next_lsn(), 2);
    }

    /// The messages of queue `p/q`, claimed and delayed ones included, at
    /// `now_ms`: `(id, body)`.
    fn listed(
        store: &crate::EmbeddedMessageStore,
        runtime: &tokio::runtime::Runtime,
        now_ms: u64,
    ) -> Vec<(String, Vec<u8>)> {
        use plugin_api::storage::MessageStore;

        let query = crate::test_support::every_message();
        runtime
            .block_on(store.message_list(QueueRef::new("p", "q"), query, now_ms))
            .unwrap()
            .iter()
            .map(|m| (m.id.to_string(), m.body.to_vec()))
            .collect()
    }

    /// What a crash leaves: posts in the log that the database file lacks.
    /// The next open applies them with the ids they were answered with,
    /// and only once.
    #[test]
    fn posts_only_the_log_holds_are_applied_at_open_with_their_ids() {
        use crate::{ids, test_support, EmbeddedMessageStore};

        let (_dir, config, runtime) = test_support::data_dir();
        drop(EmbeddedMessageStore::open(&config).unwrap());
        {
            let (mut log, found) = PostLog::open(&config.path).unwrap();
            assert!(found.is_empty(), "a clean close leaves nothing to apply");
            log.append(&post("\"first\"", 0xa1).encode()).unwrap();
            log.append(&post("\"second\"", 0xb2).encode()).unwrap();
        }
        let store = EmbeddedMessageStore::open(&config).unwrap();
        let expected = vec![
            (ids::message_id(1, 0xa1), b"\"first\"".to_vec()),
            (ids::message_id(2, 0xb2), b"\"second\"".to_vec()),
        ];
        assert_eq!(listed(&store, &runtime, 50), expected);
        drop(store);
        let store = EmbeddedMessageStore::open(&config).unwrap();
        assert_eq!(
            listed(&store, &runtime, 50),
            expected,
            "applied once, not again"
        );
    }

    /// The same for a record of a batch's posts, written by the writer
    /// thread under load: each gets the id it was answered with.
    #[test]
    fn a_batch_only_the_log_holds_is_applied_at_open_with_its_ids() {
        use crate::{ids, test_support, EmbeddedMessageStore};

        let (_dir, config, runtime) = test_support::data_dir();
        drop(EmbeddedMessageStore::open(&config).unwrap());
        {
            let (mut log, _) = PostLog::open(&config.path).unwrap();
            let (first, second) = (post("\"first\"", 0xa1), post("\"second\"", 0xb2));
            log.append_posts(&batch_of_posts(&[&first, &second]), 2)
                .unwrap();
            log.append(&post("\"third\"", 0xc3).encode()).unwrap();
        }
        let store = EmbeddedMessageStore::open(&config).unwrap();
        assert_eq!(
            listed(&store, &runtime, 50),
            vec![
                (ids::message_id(1, 0xa1), b"\"first\"".to_vec()),
                (ids::message_id(2, 0xb2), b"\"second\"".to_vec()),
                (ids::message_id(3, 0xc3), b"\"third\"".to_vec()),
            ]
        );
    }

    /// A runtime whose tasks run in parallel, so that writes meet in the
    /// writer's batches.
    fn four_worker_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap()
    }

    /// What a crash leaves of consumers' work: claims and deletes in the
    /// log that the database file lacks. The next open applies them in
    /// order, after the posts before them: the claim takes the same
    /// messages under the id it was answered with, each delete removes
    /// what it removed the first time, and all of it only once.
    #[test]
    fn claims_and_deletes_only_the_log_holds_are_applied_at_open() {
        use plugin_api::storage::MessageStore;

        use crate::{ids, test_support, EmbeddedMessageStore};

        let (_dir, config, runtime) = test_support::data_dir();
        drop(EmbeddedMessageStore::open(&config).unwrap());
        let (one, two, three) = (
            ids::message_id(1, 0xa1),
            ids::message_id(2, 0xb2),
            ids::message_id(3, 0xc3),
        );
        let claim_id = 0x00c1_a1c1_a1c1_a1c1_a1c1_a1c1_u128;
        {
            let (mut log, _) = PostLog::open(&config.path).unwrap();
            let posts = [
                post("\"one\"", 0xa1),
                post("\"two\"", 0xb2),
                post("\"three\"", 0xc3),
            ];
            let posts: Vec<LoggedOp> = posts
                .into_iter()
                .map(|post| LoggedOp::Post(Arc::new(post)))
                .collect();
            log.append_posts(
                &LoggedOp::encode_batch(&posts.iter().collect::<Vec<_>>()),
                3,
            )
            .unwrap();
            let consumed = [
                claim(claim_id, 2, 5_000),
                delete(&one, Some(&ids::claim_id(claim_id)), 5_001),
                // Refused the first time (claimed, and no claim id given):
                // refused again.
                delete(&two, None, 5_002),
                delete(&three, None, 5_003),
            ];
            log.append_posts(
                &LoggedOp::encode_batch(&consumed.iter().collect::<Vec<_>>()),
                4,
            )
            .unwrap();
        }
        for _ in 0..2 {
            let store = EmbeddedMessageStore::open(&config).unwrap();
            assert_eq!(
                listed(&store, &runtime, 6_000),
                vec![(two.clone(), b"\"two\"".to_vec())]
            );
            let held = runtime
                .block_on(store.claim_get(
                    QueueRef::new("p", "q"),
                    ids::claim_id(claim_id).into(),
                    6_000,
                ))
                .unwrap()
                .into_option()
                .expect("the claim is there under the id it was answered with");
            let held: Vec<String> = held.messages.iter().map(|m| m.id.to_string()).collect();
            assert_eq!(held, vec![two.clone()]);
            let stats = runtime
                .block_on(store.queue_stats(QueueRef::new("p", "q"), 6_000))
                .unwrap();
            assert_eq!((stats.claimed, stats.free, stats.total), (1, 0, 1));
        }
    }

    /// Consumers at once: their claims and deletes go to the log in
    /// batches, and after reopening every message was consumed once: none
    /// is left, none was claimed by two consumers.
    #[test]
    fn claims_and_deletes_of_many_consumers_go_through_the_log() {
        use std::{
            collections::HashSet,
            sync::{atomic::Ordering, Arc},
        };

        use plugin_api::storage::MessageStore;

        use crate::{group_commit::LOGGED_BATCHES, test_support, EmbeddedMessageStore};

        let (_dir, config, _) = test_support::data_dir();
        let runtime = four_worker_runtime();
        let store = Arc::new(EmbeddedMessageStore::open(&config).unwrap());
        let queue = QueueRef::new("p", "q");
        let total = 2 * POSTS_PER_CYCLE as usize;
        let messages: Vec<NewMessage> = (0..total)
            .map(|n| NewMessage {
                ttl: 600,
                delay: 0,
                body: format!("{n}").into_bytes().into(),
            })
            .collect();
        for chunk in messages.chunks(20) {
            runtime
                .block_on(store.message_post(queue.clone(), "c".into(), chunk.to_vec().into(), 10))
                .unwrap();
        }
        let before = LOGGED_BATCHES.load(Ordering::Relaxed);
        let consumers: Vec<_> = (0..8)
            .map(|_| {
                let (store, queue) = (Arc::clone(&store), queue.clone());
                runtime.spawn(async move {
                    let mut consumed = Vec::new();
                    loop {
                        let request = ClaimRequest {
                            ttl: 60,
                            grace: 0,
                            limit: 5,
                            dead_letter: ROption::RNone,
                        };
                        let claim = store
                            .claim_create(queue.clone(), request, 20)
                            .await
                            .unwrap();
                        if claim.messages.is_empty() {
                            return consumed;
                        }
                        for m in claim.messages.iter() {
                            store
                                .message_delete(
                                    queue.clone(),
                                    m.id.clone(),
                                    ROption::RSome(claim.id.clone()),
                                    21,
                                )
                                .await
                                .unwrap();
                            consumed.push(m.id.to_string());
                        }
                    }
                })
            })
            .collect();
        let mut consumed = Vec::new();
        for consumer in consumers {
            consumed.extend(runtime.block_on(consumer).unwrap());
        }
        assert!(
            LOGGED_BATCHES.load(Ordering::Relaxed) > before,
            "some batches of claims and deletes went through the post log"
        );
        assert_eq!(consumed.len(), total);
        assert_eq!(
            consumed.iter().collect::<HashSet<_>>().len(),
            total,
            "no message was claimed by two consumers"
        );
        drop(Arc::into_inner(store).expect("the consumers are done"));
        let store = EmbeddedMessageStore::open(&config).unwrap();
        let stats = runtime.block_on(store.queue_stats(queue, 30)).unwrap();
        assert_eq!((stats.claimed, stats.free, stats.total), (0, 0, 0));
    }

    /// Many writers at once: their posts go to the log in batches, a
    /// durable commit takes them in every cycle and the log starts over,
    /// and each post is there once after reopening, with the id it was
    /// answered with.
    #[test]
    fn posts_of_many_writers_cycle_through_the_log_and_are_kept_once() {
        use std::sync::{atomic::Ordering, Arc};

        use plugin_api::storage::MessageStore;

        use crate::{group_commit::LOGGED_BATCHES, test_support, EmbeddedMessageStore};

        let (_dir, config, _) = test_support::data_dir();
        let runtime = four_worker_runtime();
        let store = Arc::new(EmbeddedMessageStore::open(&config).unwrap());
        let before = LOGGED_BATCHES.load(Ordering::Relaxed);
        let writers: Vec<_> = (0..8)
            .map(|writer| {
                let store = Arc::clone(&store);
                runtime.spawn(async move {
                    let mut answered = Vec::new();
                    for n in 0..POSTS_PER_CYCLE / 2 {
                        let body = format!("\"{writer}-{n}\"").into_bytes();
                        let message = NewMessage {
                            ttl: 60,
                            delay: 0,
                            body: body.clone().into(),
                        };
                        let posted = store
                            .message_post(
                                QueueRef::new("p", "q"),
                                "c".into(),
                                vec![message].into(),
                                10,
                            )
                            .await
                            .unwrap();
                        answered.push((posted[0].id.to_string(), body));
                    }
                    answered
                })
            })
            .collect();
        let mut answered: Vec<(String, Vec<u8>)> = Vec::new();
        for writer in writers {
            answered.extend(runtime.block_on(writer).unwrap());
        }
        assert!(
            LOGGED_BATCHES.load(Ordering::Relaxed) > before,
            "some batches went through the post log"
        );
        drop(Arc::into_inner(store).expect("the writers are done"));
        let store = EmbeddedMessageStore::open(&config).unwrap();
        let mut query = test_support::every_message();
        query.limit = 8 * POSTS_PER_CYCLE;
        let mut listed: Vec<(String, Vec<u8>)> = runtime
            .block_on(store.message_list(QueueRef::new("p", "q"), query, 50))
            .unwrap()
            .iter()
            .map(|m| (m.id.to_string(), m.body.to_vec()))
            .collect();
        listed.sort();
        answered.sort();
        assert_eq!(answered.len(), 4 * POSTS_PER_CYCLE as usize);
        assert_eq!(listed, answered);
    }

    /// A post larger than the whole log is committed durably instead, and
    /// the log goes on with the posts after it.
    #[test]
    fn a_post_larger_than_the_log_is_committed_durably() {
        use plugin_api::storage::MessageStore;

        use crate::{test_support, EmbeddedMessageStore};

        let (_dir, config, runtime) = test_support::data_dir();
        let large = format!("\"{}\"", "x".repeat(CAPACITY as usize + 1000));
        let bodies = ["\"before\"", large.as_str(), "\"after\""];
        let store = EmbeddedMessageStore::open(&config).unwrap();
        for body in bodies {
            let message = NewMessage {
                ttl: 60,
                delay: 0,
                body: body.as_bytes().to_vec().into(),
            };
            let queue = QueueRef::new("p", "q");
            runtime
                .block_on(store.message_post(queue, "c".into(), vec![message].into(), 50))
                .unwrap();
        }
        drop(store);
        let store = EmbeddedMessageStore::open(&config).unwrap();
        let found: Vec<Vec<u8>> = listed(&store, &runtime, 60)
            .into_iter()
            .map(|(_, body)| body)
            .collect();
        assert_eq!(found, bodies.map(|b| b.as_bytes().to_vec()));
    }

    #[test]
    fn a_log_file_of_another_size_keeps_its_records() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PostLog::open(dir.path()).unwrap();
        log.append(b"kept").unwrap();
        drop(log);
        let file = dir.path().join(FILE);
        File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(4 * ALIGN as u64)
            .unwrap();
        let (mut log, found) = PostLog::open(dir.path()).unwrap();
        assert_eq!(found, vec![(1, b"kept".to_vec())]);
        log.append(b"second").unwrap();
        log.append(b"third").unwrap();
        log.append(b"fourth").unwrap();
        assert!(!log.takes(1), "four blocks hold four records");
    }

    #[test]
    fn a_full_cycle_or_a_full_file_is_refused_until_the_log_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PostLog::open(dir.path()).unwrap();
        assert!(!log.takes(CAPACITY as usize));
        // A cycle's worth of posts, in records of a batch of 8 each.
        for _ in 0..POSTS_PER_CYCLE / 8 {
            assert!(log.takes_posts(8, 10));
            log.append_posts(b"x", 8).unwrap();
        }
        assert!(!log.takes(10), "the cycle is full");
        log.restart(0);
        assert!(log.takes(10));
        assert_eq!(
            log.append(b"y").unwrap(),
            u64::from(POSTS_PER_CYCLE / 8) + 1
        );
        // Records of one post, one block each, fill the file first.
        for _ in 1..CAPACITY / ALIGN as u64 {
            log.append(b"z").unwrap();
        }
        assert!(!log.takes(10), "the file is full");
    }
}
