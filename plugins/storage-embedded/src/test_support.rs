//! What the unit tests of several modules share.

use std::path::Path;

use plugin_api::{storage::MessageListQuery, types::ROption::RNone};
use redb::{Database, ReadableDatabase};

use crate::{schema, EmbeddedConfig};

/// A data directory (in a temp dir, removed with it), the store's
/// configuration for it and a runtime to drive the store with.
pub(crate) fn data_dir() -> (tempfile::TempDir, EmbeddedConfig, tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let config = EmbeddedConfig {
        path: data,
        ..EmbeddedConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    (dir, config, runtime)
}

/// The format a closed database file says it is in.
pub(crate) fn format_of(file: &Path) -> u64 {
    let db = Database::create(file).unwrap();
    let txn = db.begin_read().unwrap();
    let meta = txn.open_table(schema::META).unwrap();
    let format = meta.get(schema::META_FORMAT).unwrap().unwrap().value();
    format
}

/// A listing of up to ten messages from the first, claimed and delayed ones
/// included.
pub(crate) fn every_message() -> MessageListQuery {
    MessageListQuery {
        after_seq: RNone,
        limit: 10,
        exclude_client: RNone,
        include_claimed: true,
        include_delayed: true,
    }
}
