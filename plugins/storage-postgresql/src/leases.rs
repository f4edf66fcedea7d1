//! Leases (plugin-api 1.1): which host delivers which subscription. One
//! atomic upsert takes, renews or refuses a lease.

use deadpool_postgres::Object;

use crate::{
    db::OpResult,
    sql::{big, execute, query_opt},
};

/// Takes or renews `key` for `holder` until `now_ms + ttl_ms`; false if
/// another holder's lease is live.
pub(crate) async fn acquire(
    client: &Object,
    key: &str,
    holder: &str,
    ttl_ms: u64,
    now_ms: u64,
) -> OpResult<bool> {
    let row = query_opt(
        client,
        "INSERT INTO zaqar_leases (key, holder, expires_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (key) DO UPDATE SET holder = EXCLUDED.holder, expires_ms = EXCLUDED.expires_ms \
         WHERE zaqar_leases.holder = EXCLUDED.holder OR zaqar_leases.expires_ms <= $4 \
         RETURNING 1",
        &[&key, &holder, &big(now_ms.saturating_add(ttl_ms)), &big(now_ms)],
    )
    .await?;
    Ok(row.is_some())
}

/// Releases `key` if `holder` holds it.
pub(crate) async fn release(client: &Object, key: &str, holder: &str) -> OpResult<()> {
    execute(
        client,
        "DELETE FROM zaqar_leases WHERE key = $1 AND holder = $2",
        &[&key, &holder],
    )
    .await?;
    Ok(())
}
