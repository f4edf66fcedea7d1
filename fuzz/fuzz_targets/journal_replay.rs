//! The embedded store's journal replay on a damaged or hostile journal
//! segment: opening the store either replays it or refuses to start with
//! an error; it never panics or hangs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storage_embedded::{EmbeddedConfig, EmbeddedMessageStore};

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("journal-00000000000000000001.log"), data).expect("write");
    let config = EmbeddedConfig {
        path: dir.path().to_path_buf(),
        ..EmbeddedConfig::default()
    };
    let _ = EmbeddedMessageStore::open(&config);
});
