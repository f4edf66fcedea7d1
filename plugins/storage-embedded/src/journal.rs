//! A redb storage backend that makes each commit durable with one
//! sequential write instead of syncing the pages where they lie.
//!
//! A redb commit writes ~11–16 pages scattered over the database file and
//! then syncs it; on a virtual disk each scattered page is its own device
//! request, so that sync costs ~1.2–1.8 ms, while writing the same bytes
//! sequentially into an already allocated file and syncing it costs ~0.2 ms
//! (`cargo bench -p storage-embedded --bench plugin` prints the disk's
//! floor). So this backend writes pages in place *without* syncing them,
//! and on `sync_data` (redb's durability point) writes every write since the
//! last one — offset and bytes — as one checksummed record into a journal
//! segment and syncs only that.
//!
//! redb reuses a small set of pages over and over (strace: 14,400 page
//! writes in 1,313 commits touched 141 distinct pages), so the in-place
//! writes coalesce in the page cache. When a segment is full, writing moves
//! to the next one and a checkpoint thread syncs the database file once,
//! after which the old segments describe nothing the file lacks.
//!
//! Segments are preallocated: zero-filled once and then recycled as the
//! *spare* for the next rotation, because writing into blocks the file
//! system has not allocated yet (appending, or a sparse file) turns every
//! sync into a metadata commit as well and loses the gain. A recycled
//! segment still holds an older generation's records; every record carries
//! its segment's generation, so those are never mistaken for new ones.
//!
//! At open, before redb reads anything, the segments left over are replayed
//! in order onto the file: every commit redb was told is durable is then in
//! the file exactly as written, whatever the page cache lost in a power
//! failure. A record torn by a crash never had its `sync_data` return, so
//! redb never acknowledged it, and replay stops there.
//!
//! Records are written with `O_DIRECT` where the file system allows it:
//! the record goes from our buffer to the disk without being copied into
//! the page cache and written back by `fdatasync`, which takes ~30 us off
//! every commit on a virtual disk (and keeps 16 MiB segments out of the
//! page cache). That needs each write aligned to [`ALIGN`] in memory, offset
//! and length, so every record is padded with zeros to a multiple of it.
//!
//! Record: `MAGIC u32 | generation u64 | payload length u32 | crc32 u32 |
//! payload`, the crc covering generation and payload; payload = entries,
//! each `WRITE u8 | offset u64 | length u32 | bytes`, `WRITE_ZERO_TAIL u8 |
//! offset u64 | length u32 | kept u32 | first kept bytes` (the rest of the
//! `length` bytes are zeros) or `SET_LEN u8 | length u64`; integers
//! little-endian. Most of a redb page is unused and zeroed, so a commit's
//! pages are journaled without their zero tails: a lone post's record
//! shrinks from ~41 KiB to ~11 KiB, and the sync and checksum with it. A
//! record with [`MAGIC`] is padded to the next multiple of [`ALIGN`]; one
//! with [`PACKED_MAGIC`] (written by earlier versions, still replayed) is
//! followed directly by the next.

use std::{
    fs::{self, File, OpenOptions},
    io,
    ops::Bound,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc, Arc, Mutex,
    },
    thread::JoinHandle,
};

use redb::{backends::FileBackend, BackendError, StorageBackend};

use crate::journal_sync::{JournalSync, Ticket};

/// A segment this large is closed and checkpointed; also the size of the
/// preallocated spare.
pub(crate) const SEGMENT_BYTES: u64 = 16 * 1024 * 1024;

/// The lock file beside the database file.
pub(crate) const LOCK_FILE: &str = "journal.lock";

/// The preallocated segment the next rotation takes.
const SPARE_FILE: &str = "journal-spare.log";

const MAGIC: u32 = 0x5a51_4a33; // "ZQJ3"
const PACKED_MAGIC: u32 = 0x5a51_4a32; // "ZQJ2"
/// What direct I/O needs aligned; 4 KiB covers disks with 512-byte and
/// with 4 KiB sectors.
pub(crate) const ALIGN: usize = 4096;
const WRITE: u8 = 1;
const SET_LEN: u8 = 2;
/// A write whose trailing zeros are not in the record. Versions before it
/// refuse such a journal ("malformed journal entry") rather than skip it.
const WRITE_ZERO_TAIL: u8 = 3;
const HEADER: usize = 20;

/// The database file's backend: redb's own file backend for reads and
/// locks, plus the journal for durability.
pub(crate) struct JournaledFile {
    inner: FileBackend,
    /// `journal.lock`, locked while this backend lives: replaying or
    /// deleting the segments of a database another process has open would
    /// destroy its durability, so this is taken before anything else.
    _lock: File,
    /// A second handle on the database file, to sync it from the
    /// checkpoint thread without going through redb's backend.
    database: Arc<File>,
    dir: PathBuf,
    state: Mutex<State>,
    spare_ready: Arc<AtomicBool>,
    checkpoints: Mutex<Option<Checkpointer>>,
    /// Where records are written and synced, and who waits for them.
    sync: Arc<JournalSync>,
    /// The ticket of this journal's last record. Pages are written in
    /// place once it is durable; a post-log record in flight after it (see
    /// [`crate::post_log`]) changes no page, so it is not waited for.
    pages_record: AtomicU64,
}

struct State {
    /// The next record: a header slot ([`HEADER`] bytes, filled in by
    /// [`seal`]) followed by the writes since the last `sync_data`, encoded
    /// as entries, so that a commit is written without copying it.
    pending: Vec<u8>,
    segment: Arc<File>,
    generation: u64,
    /// Where the next record goes in the segment.
    segment_bytes: u64,
    /// Whether the segment was zero-filled ahead (else each sync also
    /// commits file-system metadata, and the segment is left at the first
    /// chance).
    preallocated: bool,
    /// Whether the next record goes to the next segment (the last one
    /// filled this one, or it is not preallocated).
    rotation_due: bool,
    /// Buffers for records as written (`pending` padded, at an aligned
    /// address): one is with the record in flight, one is filled.
    buffers: Arc<Mutex<Vec<AlignedBuffer>>>,
}

/// A reusable buffer whose slices start at an [`ALIGN`]ed address, for
/// direct I/O.
#[derive(Default)]
pub(crate) struct AlignedBuffer {
    bytes: Vec<u8>,
}

impl AlignedBuffer {
    /// Fills the buffer with `record` padded with zeros to a multiple of
    /// [`ALIGN`]; returns the padded length.
    pub(crate) fn fill(&mut self, record: &[u8]) -> usize {
        let len = record.len().div_ceil(ALIGN) * ALIGN;
        if self.bytes.len() < len + ALIGN {
            self.bytes.resize(len + ALIGN, 0);
        }
        let start = self.bytes.as_ptr().align_offset(ALIGN);
        let out = &mut self.bytes[start..start + len];
        out[..record.len()].copy_from_slice(record);
        out[record.len()..].fill(0);
        len
    }

    /// The first `len` bytes [`AlignedBuffer::fill`] wrote, at an aligned
    /// address.
    pub(crate) fn filled(&self, len: usize) -> &[u8] {
        let start = self.bytes.as_ptr().align_offset(ALIGN);
        &self.bytes[start..start + len]
    }
}

/// Opens a journal segment for writing, with direct I/O when the file
/// system supports it (tmpfs, for one, does not).
pub(crate) fn open_segment(options: &mut OpenOptions, path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    match options.clone().custom_flags(libc::O_DIRECT).open(path) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => options.open(path),
        opened => opened,
    }
}

struct Checkpointer {
    requests: mpsc::Sender<u64>,
    thread: JoinHandle<()>,
}

impl std::fmt::Debug for JournaledFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournaledFile")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn segment_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("journal-{generation:020}.log"))
}

/// The journal segments in `dir`, oldest first.
fn segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(generation) = name
            .to_str()
            .and_then(|n| n.strip_prefix("journal-"))
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        found.push((generation, entry.path()));
    }
    found.sort();
    Ok(found)
}

pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Whether the spare exists and is whole (a crash while it was being
/// filled leaves only the temporary file).
fn spare_is_ready(dir: &Path) -> bool {
    fs::metadata(dir.join(SPARE_FILE)).is_ok_and(|m| m.len() >= SEGMENT_BYTES)
}

/// Zero-fills a new spare, unless a whole one is there.
fn ensure_spare(dir: &Path) -> io::Result<()> {
    if spare_is_ready(dir) {
        return Ok(());
    }
    let temporary = dir.join("journal-spare.tmp");
    let file = File::create(&temporary)?;
    let zeros = vec![0u8; 1024 * 1024];
    let mut at = 0;
    while at < SEGMENT_BYTES {
        file.write_all_at(&zeros, at)?;
        at += zeros.len() as u64;
    }
    file.sync_all()?;
    fs::rename(&temporary, dir.join(SPARE_FILE))?;
    sync_dir(dir)
}

/// Makes the spare the segment of `generation`.
fn take_spare(dir: &Path, generation: u64) -> io::Result<File> {
    let path = segment_path(dir, generation);
    fs::rename(dir.join(SPARE_FILE), &path)?;
    sync_dir(dir)?;
    open_segment(OpenOptions::new().write(true), &path)
}

/// A plain, growing segment, for when no spare is ready.
fn create_segment(dir: &Path, generation: u64) -> io::Result<File> {
    let segment = open_segment(
        OpenOptions::new().write(true).create_new(true),
        &segment_path(dir, generation),
    )?;
    // The new name must survive a crash before anything relies on it.
    sync_dir(dir)?;
    Ok(segment)
}

impl JournaledFile {
    /// Replays what a previous run left in the journal onto `file`, then
    /// opens it for redb with a fresh journal segment.
    pub(crate) fn open(file: &Path) -> io::Result<Self> {
        let dir = file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let lock = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))?;
        if let Err(e) = lock.try_lock() {
            return Err(match e {
                std::fs::TryLockError::WouldBlock => io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "another process has this data directory open",
                ),
                std::fs::TryLockError::Error(e) => e,
            });
        }
        let handle = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(file)?;
        let leftover = segments(&dir)?;
        let generation = leftover.last().map_or(0, |(g, _)| g + 1);
        if !leftover.is_empty() {
            let records = replay(&handle, &leftover)?;
            crate::log::info(&format!(
                "replayed {records} journal records from {} segment(s) onto {} \
                 (the last run did not stop cleanly)",
                leftover.len(),
                file.display()
            ));
            handle.sync_data()?;
            for (_, path) in &leftover {
                fs::remove_file(path)?;
            }
            sync_dir(&dir)?;
        }
        let (segment, preallocated) = if spare_is_ready(&dir) {
            (take_spare(&dir, generation)?, true)
        } else {
            (create_segment(&dir, generation)?, false)
        };
        let database = Arc::new(handle.try_clone()?);
        let spare_ready = Arc::new(AtomicBool::new(false));
        let checkpointer = start_checkpointer(dir.clone(), database.clone(), spare_ready.clone())?;
        let sync = JournalSync::start()?;
        Ok(Self {
            inner: FileBackend::new(handle).map_err(io::Error::other)?,
            _lock: lock,
            database,
            dir,
            state: Mutex::new(State {
                pending: vec![0; HEADER],
                segment: Arc::new(segment),
                generation,
                segment_bytes: 0,
                preallocated,
                rotation_due: !preallocated,
                buffers: Arc::default(),
            }),
            spare_ready,
            checkpoints: Mutex::new(Some(checkpointer)),
            sync,
            pages_record: AtomicU64::new(0),
        })
    }

    /// Where this journal's records are synced: the group commit answers
    /// its callers and readers settle through it.
    pub(crate) fn sync(&self) -> Arc<JournalSync> {
        Arc::clone(&self.sync)
    }

    /// Waits until the last record of this journal is durable: the pages
    /// a commit writes in place are free only as of the last commit redb
    /// was told is durable, whose record that is.
    fn wait_pages_free(&self) -> io::Result<()> {
        let record: Ticket = self.pages_record.load(Ordering::Acquire);
        self.sync.wait_settled(record)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves writing to the spare (the caller has claimed it) and asks for
    /// the older segments to be checkpointed.
    fn rotate(&self, state: &mut State) -> io::Result<()> {
        let next = state.generation + 1;
        state.segment = Arc::new(take_spare(&self.dir, next)?);
        state.generation = next;
        state.segment_bytes = 0;
        state.preallocated = true;
        if let Some(checkpointer) = self
            .checkpoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            let _ = checkpointer.requests.send(next);
        }
        Ok(())
    }
}

fn start_checkpointer(
    dir: PathBuf,
    database: Arc<File>,
    spare_ready: Arc<AtomicBool>,
) -> io::Result<Checkpointer> {
    let (requests, received) = mpsc::channel::<u64>();
    let thread = std::thread::Builder::new()
        .name("zaqar-journal".into())
        .spawn(move || {
            let prepare = || match ensure_spare(&dir) {
                Ok(()) => spare_ready.store(true, Ordering::Release),
                Err(e) => crate::log::warn(&format!(
                    "cannot prepare a journal segment in {}: {e}",
                    dir.display()
                )),
            };
            prepare();
            // Each request: every segment older than the given generation
            // is covered once the database file is synced.
            while let Ok(below) = received.recv() {
                if let Err(e) = checkpoint(&dir, &database, below) {
                    // The segments stay; the next checkpoint or the next
                    // open replays them, which is harmless.
                    crate::log::warn(&format!(
                        "checkpoint of {} failed, journal kept: {e}",
                        dir.display()
                    ));
                }
                prepare();
            }
        })?;
    Ok(Checkpointer { requests, thread })
}

/// Syncs the database file, then recycles the first whole segment older
/// than `below` as the spare (when there is none) and deletes the rest.
fn checkpoint(dir: &Path, database: &File, below: u64) -> io::Result<()> {
    database.sync_data()?;
    for (generation, path) in segments(dir)? {
        if generation >= below {
            continue;
        }
        let whole = fs::metadata(&path).is_ok_and(|m| m.len() >= SEGMENT_BYTES);
        if whole && !dir.join(SPARE_FILE).exists() {
            fs::rename(&path, dir.join(SPARE_FILE))?;
        } else {
            fs::remove_file(&path)?;
        }
    }
    sync_dir(dir)
}

/// What is at a position of a segment.
enum Slot<'a> {
    /// A whole record of this segment's generation.
    Record(&'a [u8], usize),
    /// Zeros, a record of an older generation, or nothing: the end.
    End,
    /// A record of this generation that is cut short or fails its checksum.
    Torn,
}

fn slot_at(bytes: &[u8], at: usize, generation: u64) -> Slot<'_> {
    let Some(header) = bytes.get(at..at + HEADER) else {
        return if bytes.len() > at {
            Slot::Torn
        } else {
            Slot::End
        };
    };
    let word = |i: usize| u32::from_le_bytes(header[i..i + 4].try_into().unwrap());
    let stamped = u64::from_le_bytes(header[4..12].try_into().unwrap());
    let padded = match word(0) {
        MAGIC => true,
        PACKED_MAGIC => false,
        _ => return Slot::End,
    };
    if stamped != generation {
        return Slot::End;
    }
    let length = word(12) as usize;
    let Some(payload) = bytes.get(at + HEADER..at + HEADER + length) else {
        return Slot::Torn;
    };
    let mut crc = crc32fast::Hasher::new();
    crc.update(&header[4..12]);
    crc.update(payload);
    if crc.finalize() == word(16) {
        let end = at + HEADER + length;
        Slot::Record(
            payload,
            if padded {
                end.next_multiple_of(ALIGN)
            } else {
                end
            },
        )
    } else {
        Slot::Torn
    }
}

/// Applies the records of `segments` in order. A torn record ends the
/// replay if it is in the last segment (a crash during its write: never
/// acknowledged); anywhere else the journal is damaged and the database
/// cannot be trusted.
fn replay(database: &File, segments: &[(u64, PathBuf)]) -> io::Result<u64> {
    let mut records = 0;
    for (index, (generation, path)) in segments.iter().enumerate() {
        let bytes = fs::read(path)?;
        let last = index + 1 == segments.len();
        let mut at = 0;
        loop {
            match slot_at(&bytes, at, *generation) {
                Slot::Record(payload, next) => {
                    apply(database, payload)?;
                    records += 1;
                    at = next;
                }
                Slot::End => break,
                Slot::Torn if last => return Ok(records),
                Slot::Torn => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "journal segment {} is damaged at byte {at}; the database cannot be \
                             brought up to date",
                            path.display()
                        ),
                    ))
                }
            }
        }
    }
    Ok(records)
}

/// Fills in the header of `record` (a [`HEADER`]-byte slot followed by the
/// payload) as a record of `generation`.
fn seal(generation: u64, record: &mut [u8]) -> io::Result<()> {
    let (header, payload) = record.split_at_mut(HEADER);
    let length = u32::try_from(payload.len()).map_err(io::Error::other)?;
    let generation = generation.to_le_bytes();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&generation);
    crc.update(payload);
    header[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    header[4..12].copy_from_slice(&generation);
    header[12..16].copy_from_slice(&length.to_le_bytes());
    header[16..20].copy_from_slice(&crc.finalize().to_le_bytes());
    Ok(())
}

/// `data` up to its last non-zero byte.
fn without_zero_tail(data: &[u8]) -> &[u8] {
    let mut end = data.len();
    // Sixteen bytes at a time while they are all zero, then byte by byte.
    while end >= 16 && u128::from_ne_bytes(data[end - 16..end].try_into().unwrap()) == 0 {
        end -= 16;
    }
    while end > 0 && data[end - 1] == 0 {
        end -= 1;
    }
    &data[..end]
}

fn apply(database: &File, mut payload: &[u8]) -> io::Result<()> {
    let damaged = || io::Error::new(io::ErrorKind::InvalidData, "malformed journal entry");
    let u64_at = |bytes: &[u8], at: usize| -> io::Result<u64> {
        let raw = bytes.get(at..at + 8).ok_or_else(damaged)?;
        Ok(u64::from_le_bytes(raw.try_into().unwrap()))
    };
    let u32_at = |bytes: &[u8], at: usize| -> io::Result<usize> {
        let raw = bytes.get(at..at + 4).ok_or_else(damaged)?;
        Ok(u32::from_le_bytes(raw.try_into().unwrap()) as usize)
    };
    while let Some((&kind, rest)) = payload.split_first() {
        match kind {
            WRITE => {
                let offset = u64_at(rest, 0)?;
                let length = u32_at(rest, 8)?;
                let data = rest.get(12..12 + length).ok_or_else(damaged)?;
                database.write_all_at(data, offset)?;
                payload = &rest[12 + length..];
            }
            WRITE_ZERO_TAIL => {
                let offset = u64_at(rest, 0)?;
                let (length, kept) = (u32_at(rest, 8)?, u32_at(rest, 12)?);
                if kept > length {
                    return Err(damaged());
                }
                let mut page = rest.get(16..16 + kept).ok_or_else(damaged)?.to_vec();
                // The zeros are written too: the file may hold older bytes there.
                page.resize(length, 0);
                database.write_all_at(&page, offset)?;
                payload = &rest[16 + kept..];
            }
            SET_LEN => {
                database.set_len(u64_at(rest, 0)?)?;
                payload = &rest[8..];
            }
            _ => return Err(damaged()),
        }
    }
    Ok(())
}

impl Drop for JournaledFile {
    fn drop(&mut self) {
        // redb closes the backend it owns; this is for one dropped unclosed.
        self.sync.stop();
    }
}

impl StorageBackend for JournaledFile {
    fn len(&self) -> Result<u64, io::Error> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        let mut state = self.state();
        self.wait_pages_free()?;
        self.inner.set_len(len)?;
        state.pending.push(SET_LEN);
        state.pending.extend_from_slice(&len.to_le_bytes());
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        let mut state = self.state();
        // The pages this commit overwrites are free only as of the last
        // durable commit (see crate::journal_sync).
        self.wait_pages_free()?;
        self.inner.write(offset, data)?;
        let length = u32::try_from(data.len()).map_err(io::Error::other)?;
        let kept = without_zero_tail(data);
        let trimmed = kept.len() < data.len();
        let pending = &mut state.pending;
        pending.push(if trimmed { WRITE_ZERO_TAIL } else { WRITE });
        pending.extend_from_slice(&offset.to_le_bytes());
        pending.extend_from_slice(&length.to_le_bytes());
        if trimmed {
            pending.extend_from_slice(&(kept.len() as u32).to_le_bytes());
        }
        pending.extend_from_slice(kept);
        Ok(())
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        let mut state = self.state();
        if state.pending.len() == HEADER {
            // Nothing new; what came before is durable once the record in
            // flight is, which a deferred commit's callers wait for anyway.
            return if self.sync.deferred() {
                Ok(())
            } else {
                self.sync.wait_idle()
            };
        }
        // The previous record is durable and its buffer back.
        self.sync.wait_idle()?;
        // Moving on only now, with no record in flight, so that the
        // checkpoint never retires a segment a record is still going to.
        if state.rotation_due && self.spare_ready.swap(false, Ordering::AcqRel) {
            if let Err(e) = self.rotate(&mut state) {
                crate::log::warn(&format!(
                    "cannot move to the next journal segment in {}: {e}",
                    self.dir.display()
                ));
            }
        }
        let State {
            pending,
            segment,
            generation,
            segment_bytes,
            buffers,
            ..
        } = &mut *state;
        seal(*generation, pending)?;
        let mut buffer = buffers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default();
        let len = buffer.fill(pending);
        let (segment, offset, buffers) = (Arc::clone(segment), *segment_bytes, Arc::clone(buffers));
        *segment_bytes += len as u64;
        pending.truncate(HEADER);
        state.rotation_due = state.segment_bytes >= SEGMENT_BYTES || !state.preallocated;
        let write = move || {
            let written = segment
                .write_all_at(buffer.filled(len), offset)
                .and_then(|()| segment.sync_data());
            buffers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(buffer);
            written
        };
        let outcome = if self.sync.deferred() {
            self.sync.submit(write);
            Ok(())
        } else {
            self.sync.run_inline(write)
        };
        self.pages_record
            .store(self.sync.submitted(), Ordering::Release);
        outcome
    }

    fn close(&self) -> Result<(), io::Error> {
        // Finish the record in flight, stop the checkpoint thread, then
        // leave a synced file and no journal (but the spare), so that a
        // clean shutdown replays nothing.
        self.sync.stop();
        if let Some(checkpointer) = self
            .checkpoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            drop(checkpointer.requests);
            let _ = checkpointer.thread.join();
        }
        if let Some(reason) = self.sync.failure() {
            // The journal holds what the file may lack: it stays for the
            // next open to replay.
            return Err(io::Error::other(reason));
        }
        let state = self.state();
        if state.pending.len() == HEADER {
            checkpoint(&self.dir, &self.database, state.generation + 1)?;
        }
        drop(state);
        self.inner.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal_files(dir: &Path) -> Vec<(u64, PathBuf)> {
        segments(dir).unwrap()
    }

    /// A sealed record of `generation` holding `payload` (unpadded).
    fn record(generation: u64, payload: &[u8]) -> Vec<u8> {
        let mut record = vec![0; HEADER];
        record.extend_from_slice(payload);
        seal(generation, &mut record).unwrap();
        record
    }

    /// The same as written by versions before records were padded.
    fn packed_record(generation: u64, payload: &[u8]) -> Vec<u8> {
        let mut record = record(generation, payload);
        record[0..4].copy_from_slice(&PACKED_MAGIC.to_le_bytes());
        record
    }

    fn write_entry(offset: u64, data: &[u8]) -> Vec<u8> {
        let mut entry = vec![WRITE];
        entry.extend_from_slice(&offset.to_le_bytes());
        entry.extend_from_slice(&(data.len() as u32).to_le_bytes());
        entry.extend_from_slice(data);
        entry
    }

    /// A backend writing into a zero-filled segment, which it keeps: the
    /// first open writes into a growing segment and leaves it for the spare
    /// as soon as the spare is ready, which would split what a test writes
    /// over two segments (and checkpoint the first) at a moment that
    /// depends on the machine.
    fn open_on_a_preallocated_segment(file: &Path) -> JournaledFile {
        let dir = file.parent().unwrap();
        let first = JournaledFile::open(file).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !spare_is_ready(dir) {
            assert!(
                std::time::Instant::now() < deadline,
                "the spare is never ready"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        first.close().unwrap();
        drop(first);
        JournaledFile::open(file).unwrap()
    }

    /// Power loss after an acknowledged sync: none of the in-place writes
    /// reached the disk, the journal brings every one of them back, and a
    /// write that was never synced stays lost.
    #[test]
    fn replay_restores_synced_writes_the_file_lost() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db");
        // On a growing segment, the first sync would rotate (and
        // checkpoint the record away) whenever the spare is ready by then.
        let backend = open_on_a_preallocated_segment(&file);
        backend.set_len(8192).unwrap();
        backend.write(0, &[1; 4096]).unwrap();
        backend.write(4096, &[2; 4096]).unwrap();
        backend.sync_data().unwrap();
        // Never synced:
        backend.write(0, &[3; 4096]).unwrap();
        // No close, as if the process died; and the page cache never
        // reached the disk.
        drop(backend);
        fs::write(&file, b"").unwrap();
        // A crash in the middle of the next record leaves a torn tail.
        let (generation, segment) = journal_files(dir.path()).pop().unwrap();
        let bytes = fs::read(&segment).unwrap();
        let mut end = 0;
        while let Slot::Record(_, next) = slot_at(&bytes, end, generation) {
            end = next;
        }
        let mut header = MAGIC.to_le_bytes().to_vec();
        header.extend_from_slice(&generation.to_le_bytes());
        header.extend_from_slice(&[0xff; 3]);
        let torn = OpenOptions::new().write(true).open(&segment).unwrap();
        torn.write_all_at(&header, end as u64).unwrap();
        assert!(matches!(
            slot_at(&fs::read(&segment).unwrap(), end, generation),
            Slot::Torn
        ));

        let reopened = JournaledFile::open(&file).unwrap();
        assert_eq!(reopened.len().unwrap(), 8192);
        let mut page = vec![0; 4096];
        reopened.read(0, &mut page).unwrap();
        assert!(
            page.iter().all(|&b| b == 1),
            "synced write restored, unsynced one not"
        );
        reopened.read(4096, &mut page).unwrap();
        assert!(page.iter().all(|&b| b == 2));
        // The replayed segments are gone.
        let left = journal_files(dir.path());
        assert!(left.iter().all(|(g, _)| *g > generation), "{left:?}");
    }

    /// A damaged record before the last segment is not a torn tail: the
    /// database would silently miss acknowledged commits, so opening fails.
    #[test]
    fn damage_inside_an_older_segment_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db");
        fs::write(&file, b"").unwrap();
        let mut damaged = record(0, &write_entry(0, &[5; 16]));
        let last = damaged.len() - 1;
        damaged[last] ^= 0xff;
        fs::write(segment_path(dir.path(), 0), damaged).unwrap();
        fs::write(segment_path(dir.path(), 1), b"").unwrap();
        let error = JournaledFile::open(&file).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("damaged"), "{error}");
    }

    /// A recycled segment still holds an older generation's records; they
    /// are not replayed, and what follows them is not read.
    #[test]
    fn records_of_an_older_generation_are_not_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db");
        fs::write(&file, b"").unwrap();
        let mut segment = record(1, &write_entry(0, &[7; 16]));
        segment.extend(record(0, &write_entry(0, &[5; 4096])));
        segment.extend(record(1, &write_entry(16, &[8; 16])));
        fs::write(segment_path(dir.path(), 1), segment).unwrap();
        let backend = JournaledFile::open(&file).unwrap();
        assert_eq!(backend.len().unwrap(), 16, "only the first record applied");
        let mut bytes = vec![0; 16];
        backend.read(0, &mut bytes).unwrap();
        assert_eq!(bytes, [7; 16]);
    }

    /// Each record the backend writes starts at a multiple of [`ALIGN`]
    /// (what direct I/O needs), and replay finds every one of them.
    #[test]
    fn records_are_padded_to_the_alignment_and_all_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db");
        let backend = open_on_a_preallocated_segment(&file);
        backend.set_len(3 * 4096).unwrap();
        for page in 0..3u8 {
            backend
                .write(u64::from(page) * 4096, &[page + 1; 100])
                .unwrap();
            backend.sync_data().unwrap();
        }
        drop(backend);
        fs::write(&file, b"").unwrap();
        let (generation, segment) = journal_files(dir.path()).pop().unwrap();
        let bytes = fs::read(&segment).unwrap();
        let mut starts = Vec::new();
        let mut at = 0;
        while let Slot::Record(_, next) = slot_at(&bytes, at, generation) {
            starts.push(at);
            at = next;
        }
        assert_eq!(starts, [0, ALIGN, 2 * ALIGN], "one record per sync");

        let reopened = JournaledFile::open(&file).unwrap();
        for page in 0..3u8 {
            let mut head = vec![0; 100];
            reopened.read(u64::from(page) * 4096, &mut head).unwrap();
            assert_eq!(head, [page + 1; 100]);
        }
    }

    /// A page is journaled without its trailing zeros, and replay writes
    /// the zeros back over whatever the file held there before.
    #[test]
    fn zero_tails_stay_out_of_the_record_and_are_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db");
        let backend = open_on_a_preallocated_segment(&file);
        backend.set_len(2 * 4096).unwrap();
        backend.write(0, &[7; 4096]).unwrap();
        backend.write(4096, &[7; 4096]).unwrap();
        backend.sync_data().unwrap();
        let mut mostly_zero = vec![0; 4096];
        mostly_zero[..99].fill(9);
        mostly_zero[99] = 1;
        backend.write(0, &mostly_zero).unwrap();
        backend.write(4096, &[0; 4096]).unwrap();
        backend.sync_data().unwrap();
        drop(backend);

        let (generation, segment) = journal_files(dir.path()).pop().unwrap();
        let bytes = fs::read(&segment).unwrap();
        let Slot::Record(first, next) = slot_at(&bytes, 0, generation) else {
            panic!("no first record");
        };
        assert!(first.len() > 2 * 4096, "a full page is kept whole");
        let Slot::Record(second, _) = slot_at(&bytes, next, generation) else {
            panic!("no second record");
        };
        assert_eq!(
            second.len(),
            (1 + 16 + 100) + (1 + 16),
            "zero tails left out"
        );

        // Power loss: the file keeps the first commit's pages only.
        fs::write(&file, [7; 2 * 4096]).unwrap();
        let reopened = JournaledFile::open(&file).unwrap();
        let mut page = vec![0; 4096];
        reopened.read(0, &mut page).unwrap();
        assert_eq!(page, mostly_zero);
        reopened.read(4096, &mut page).unwrap();
        assert!(page.iter().all(|&b| b == 0), "an all-zero page restored");
    }

    #[test]
    fn without_zero_tail_keeps_up_to_the_last_non_zero_byte() {
        for length in [0, 1, 15, 16, 17, 100, 4096] {
            for last in 0..length {
                let mut data = vec![0u8; length];
                data[last] = 1;
                assert_eq!(without_zero_tail(&data).len(), last + 1, "{length} {last}");
            }
            assert!(without_zero_tail(&vec![0u8; length]).is_empty());
        }
    }

    /// A journal left by a version that wrote records back to back (no
    /// padding) is still replayed in full.
    #[test]
    fn unpadded_records_of_earlier_versions_are_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db");
        fs::write(&file, b"").unwrap();
        let mut segment = packed_record(4, &write_entry(0, &[7; 16]));
        segment.extend(packed_record(4, &write_entry(16, &[8; 16])));
        fs::write(segment_path(dir.path(), 4), segment).unwrap();
        let backend = JournaledFile::open(&file).unwrap();
        let mut bytes = vec![0; 32];
        backend.read(0, &mut bytes).unwrap();
        assert_eq!(&bytes[..16], [7; 16]);
        assert_eq!(&bytes[16..], [8; 16]);
    }

    #[test]
    fn a_second_open_of_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db");
        let _first = JournaledFile::open(&file).unwrap();
        let error = JournaledFile::open(&file).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
    }

    /// Through redb: full segments are checkpointed while the database
    /// runs, a clean close leaves no journal (only the spare), and every
    /// commit is there after reopening.
    #[test]
    fn redb_commits_survive_and_a_clean_close_leaves_no_journal() {
        use redb::{Database, ReadableDatabase, ReadableTableMetadata, TableDefinition};
        const T: TableDefinition<u64, &[u8]> = TableDefinition::new("t");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db");
        let db = Database::builder()
            .create_with_backend(JournaledFile::open(&file).unwrap())
            .unwrap();
        // Values without zeros, so that journal records do not shrink
        // below the pages' size; and enough commits to fill more than one
        // segment at one 4 KiB page per commit.
        let value = vec![9u8; 4000];
        let commits = SEGMENT_BYTES / 4096 + 10;
        for i in 0..commits {
            let txn = db.begin_write().unwrap();
            txn.open_table(T)
                .unwrap()
                .insert(i, value.as_slice())
                .unwrap();
            txn.commit().unwrap();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while journal_files(dir.path()).len() > 1 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let live = journal_files(dir.path());
        assert_eq!(live.len(), 1, "older segments are checkpointed: {live:?}");
        assert!(
            live[0].0 >= 2,
            "rotated to the spare and past a full segment: {live:?}"
        );
        drop(db);
        assert!(
            journal_files(dir.path()).is_empty(),
            "clean close checkpoints"
        );
        assert!(
            spare_is_ready(dir.path()),
            "the spare is kept for the next start"
        );

        let db = Database::builder()
            .create_with_backend(JournaledFile::open(&file).unwrap())
            .unwrap();
        let txn = db.begin_read().unwrap();
        let table = txn.open_table(T).unwrap();
        assert_eq!(table.len().unwrap(), commits);
        assert_eq!(
            table.get(commits - 1).unwrap().unwrap().value(),
            value.as_slice()
        );
    }
}
