//! Leases: `key` → (holder, expiry), taken, renewed and released in write
//! transactions of the group commit, so two acquirers can never both win.
//! Expired leases are not swept: there is one per subscription at most,
//! and the next acquirer overwrites it.

use redb::ReadableTable;

use crate::{codec::LeaseRecord, error::OpResult, group_commit::WriteTables};

/// Takes or renews the lease for `holder` until `now_ms + ttl_ms`; false
/// if another holder's lease is live.
pub(crate) fn acquire(
    t: &mut WriteTables<'_>,
    key: &str,
    holder: &str,
    ttl_ms: u64,
    now_ms: u64,
) -> OpResult<bool> {
    if let Some(v) = t.leases.get(key)? {
        let current = LeaseRecord::decode(v.value())?;
        if current.holder != holder && current.expires_ms > now_ms {
            return Ok(false);
        }
    }
    let record = LeaseRecord {
        holder: holder.to_owned(),
        expires_ms: now_ms.saturating_add(ttl_ms),
    };
    t.leases.insert(key, record.encode().as_slice())?;
    Ok(true)
}

/// Releases the lease if `holder` holds it (live or not).
pub(crate) fn release(t: &mut WriteTables<'_>, key: &str, holder: &str) -> OpResult<()> {
    let held = match t.leases.get(key)? {
        Some(v) => LeaseRecord::decode(v.value())?.holder == holder,
        None => false,
    };
    if held {
        t.leases.remove(key)?;
    }
    Ok(())
}
