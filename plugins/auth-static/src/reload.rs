//! Keeping the table in step with the file: a task that re-reads it when
//! its modification stamp changes (polled, one `stat` per interval) and
//! whenever the process gets SIGHUP.
//!
//! A file that no longer parses does not replace the table: the last good
//! tokens stay in force and the error is logged, so a typo during an edit
//! does not lock every client out.

use std::{
    os::unix::fs::MetadataExt as _,
    path::Path,
    sync::{Arc, Weak},
    time::{Duration, SystemTime},
};

use plugin_api::LogLevel;
use tokio::signal::unix::{signal, SignalKind};

use crate::Shared;

/// What identifies one version of the file without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl Stamp {
    /// The file's stamp now, or `None` when it cannot be read.
    pub(crate) fn of(path: &Path) -> Option<Self> {
        let metadata = std::fs::metadata(path).ok()?;
        Some(Self {
            modified: metadata.modified().ok(),
            len: metadata.len(),
            inode: metadata.ino(),
        })
    }
}

/// Watches the file until the plugin is dropped (`shared` can no longer be
/// upgraded). `poll` of zero: SIGHUP only.
pub(crate) async fn watch(shared: Weak<Shared>, poll: Duration) {
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(hangup) => Some(hangup),
        Err(e) => {
            if let Some(shared) = shared.upgrade() {
                shared.log(
                    LogLevel::WARN,
                    &format!("cannot listen for SIGHUP ({e}); the tokens file is only polled"),
                );
            }
            None
        }
    };
    // Without polling, wake up now and then anyway to notice the drop.
    let tick = if poll.is_zero() {
        Duration::from_secs(1)
    } else {
        poll
    };
    loop {
        let forced = tokio::select! {
            _ = tokio::time::sleep(tick) => false,
            Some(()) = async {
                match hangup.as_mut() {
                    Some(hangup) => hangup.recv().await,
                    None => std::future::pending().await,
                }
            } => true,
        };
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if forced || (!poll.is_zero() && shared.changed_on_disk()) {
            reload(&shared, if forced { "SIGHUP" } else { "a change" });
        }
    }
}

/// Re-reads the file into `shared`, keeping the old table if it is bad.
pub(crate) fn reload(shared: &Arc<Shared>, why: &str) {
    match shared.reload() {
        Ok(count) => shared.log(
            LogLevel::INFO,
            &format!(
                "tokens file {} reloaded after {why}: {count} tokens",
                shared.path.display()
            ),
        ),
        Err(e) => shared.log(
            LogLevel::ERROR,
            &format!("{e}; after {why}, the previous tokens stay in force"),
        ),
    }
}
