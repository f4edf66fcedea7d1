//! The embedded store's journal replay on a damaged or hostile journal
//! segment: opening the store either replays it or refuses to start with
//! an error; it never panics or hangs.
//!
//! Every whole record of the input gets its checksum recomputed before the
//! segment is written: a mutated payload would otherwise fail its checksum
//! and end the replay right there (a torn record), so the fuzzer would never
//! reach the entries' decoding nor redb reading the file they produce. Torn
//! records (cut short) and foreign ones (other magic or generation) still
//! reach the store as they are.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storage_embedded::{EmbeddedConfig, EmbeddedMessageStore};

/// The segment's generation, from its file name below.
const GENERATION: u64 = 1;
const MAGIC: u32 = 0x5a51_4a32;
const HEADER: usize = 20;
/// The length at which the store counts its spare segment as ready.
const SPARE_BYTES: u64 = 16 * 1024 * 1024;

/// Rewrites the checksum of each whole record of this generation, in
/// place: `MAGIC u32 | generation u64 | length u32 | crc32 u32 | payload`,
/// the crc covering generation and payload.
fn reseal(segment: &mut [u8]) {
    let mut at = 0;
    while let Some(header) = segment.get(at..at + HEADER) {
        let magic = u32::from_le_bytes(header[0..4].try_into().unwrap());
        let generation = u64::from_le_bytes(header[4..12].try_into().unwrap());
        let length = u32::from_le_bytes(header[12..16].try_into().unwrap()) as usize;
        if magic != MAGIC || generation != GENERATION {
            return;
        }
        let end = at + HEADER + length;
        let Some(payload) = segment.get(at + HEADER..end) else {
            return;
        };
        let mut crc = crc32fast::Hasher::new();
        crc.update(&GENERATION.to_le_bytes());
        crc.update(payload);
        segment[at + 16..at + 20].copy_from_slice(&crc.finalize().to_le_bytes());
        at = end;
    }
}

fuzz_target!(|data: &[u8]| {
    let mut segment = data.to_vec();
    reseal(&mut segment);
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join(format!("journal-{GENERATION:020}.log")),
        &segment,
    )
    .expect("write");
    // A spare segment of full length (sparse, so free) spares every run
    // the store zero-filling and syncing 16 MiB for one.
    std::fs::File::create(dir.path().join("journal-spare.log"))
        .and_then(|spare| spare.set_len(SPARE_BYTES))
        .expect("spare");
    let config = EmbeddedConfig {
        path: dir.path().to_path_buf(),
        ..EmbeddedConfig::default()
    };
    let _ = EmbeddedMessageStore::open(&config);
});
