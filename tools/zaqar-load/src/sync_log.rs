//! The least a durable server must do before it answers a write: put the
//! request's bytes on disk and `fdatasync` them. The durable reference server
//! (`zaqar-load reference-server --durable-dir DIR`) hands each post's body
//! to a [`SyncLog`], whose one thread writes everything handed to it since
//! its last sync with one `pwrite`, syncs once, and only then lets those
//! requests be answered (group commit, as the embedded store's writer does
//! under load).
//!
//! The log rewrites a region written in full and synced when it is opened,
//! so a sync never has to update the file's size or extents: the cheapest
//! sync the disk has, the same one `bench/http-floor.sh` times alone.

use std::{
    fs::{File, OpenOptions},
    io,
    os::unix::fs::FileExt,
    path::Path,
    sync::{Arc, Condvar, Mutex},
    thread,
};

use tokio::sync::oneshot;

/// The region the log rewrites, round and round.
const REGION_BYTES: u64 = 64 << 20;
/// The file's name in the directory it is given.
const FILE_NAME: &str = "reference-sync-log";

/// A group-commit log served by one thread. Cloning shares it.
#[derive(Clone)]
pub struct SyncLog {
    shared: Arc<Shared>,
}

struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    waiters: Vec<oneshot::Sender<()>>,
}

impl SyncLog {
    /// Opens (creating) the log in `dir`, writes and syncs its whole region
    /// once, and starts its thread. The thread lives as long as the process.
    pub fn open(dir: &Path) -> io::Result<SyncLog> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(FILE_NAME))?;
        let chunk = vec![0u8; 1 << 20];
        let mut offset = 0;
        while offset < REGION_BYTES {
            file.write_all_at(&chunk, offset)?;
            offset += chunk.len() as u64;
        }
        file.sync_all()?;
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
        });
        let writer = Arc::clone(&shared);
        thread::Builder::new()
            .name("reference-sync".into())
            .spawn(move || write_and_sync(&writer, &file))?;
        Ok(SyncLog { shared })
    }

    /// Resolves once `bytes` are on disk.
    pub async fn append(&self, bytes: &[u8]) {
        let (done, synced) = oneshot::channel();
        {
            let mut pending = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            pending.bytes.extend_from_slice(bytes);
            pending.waiters.push(done);
        }
        self.shared.wake.notify_one();
        // The thread only drops a waiter unanswered if its write failed, and
        // then it has already stopped the process.
        let _ = synced.await;
    }
}

fn write_and_sync(shared: &Shared, file: &File) {
    let mut offset = 0u64;
    let mut batch = Pending::default();
    loop {
        {
            let mut pending = shared.pending.lock().unwrap_or_else(|p| p.into_inner());
            while pending.waiters.is_empty() {
                pending = shared.wake.wait(pending).unwrap_or_else(|p| p.into_inner());
            }
            std::mem::swap(&mut *pending, &mut batch);
        }
        let len = batch.bytes.len() as u64;
        if offset + len > REGION_BYTES {
            offset = 0;
        }
        let written = file
            .write_all_at(&batch.bytes, offset)
            .and_then(|()| file.sync_data());
        if let Err(error) = written {
            // A floor that cannot sync measures nothing: stop loudly rather
            // than answer writes that are not on disk.
            eprintln!("zaqar-load: the reference server's log failed: {error}");
            std::process::exit(1);
        }
        offset += len;
        for waiter in batch.waiters.drain(..) {
            let _ = waiter.send(());
        }
        batch.bytes.clear();
    }
}
