//! Versioned schema migrations, embedded in the crate and applied at
//! start-up, each in its own transaction.
//!
//! `zaqar_schema_version` holds one row: the version the database is at. A
//! database at a version newer than this code knows was migrated by a newer
//! zaqar-server; it is refused rather than written with old assumptions.
//! Hosts starting together serialize on a transaction-level advisory lock.

use deadpool_postgres::Object;
use plugin_api::ErrorCode;

use crate::db::{caller, OpResult};

/// Every migration, in order: `(version, SQL)`. Append only.
pub(crate) const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../migrations/0001_initial.sql")),
    (2, include_str!("../migrations/0002_change_feed.sql")),
];

/// The schema version this code writes.
pub const SCHEMA_VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Arbitrary key of the advisory lock that serializes migrations.
const MIGRATION_LOCK: i64 = 0x7a61_7161_7200_0001;

/// Applies the missing migrations; returns the resulting version.
pub(crate) async fn run(client: &mut Object) -> OpResult<i32> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS zaqar_schema_version (version integer NOT NULL)")
        .await?;
    let current: i32 = match tx
        .query_opt("SELECT version FROM zaqar_schema_version", &[])
        .await?
    {
        Some(row) => row.get(0),
        None => {
            tx.execute("INSERT INTO zaqar_schema_version (version) VALUES (0)", &[])
                .await?;
            0
        }
    };
    if current > SCHEMA_VERSION {
        return Err(caller(
            ErrorCode::BAD_CONFIG,
            format!(
                "the database's schema is at version {current}, newer than this \
                 zaqar-server knows (version {SCHEMA_VERSION}); run a zaqar-server \
                 at least as new as the one that migrated it"
            ),
        ));
    }
    for &(version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.batch_execute(sql).await?;
        tx.execute("UPDATE zaqar_schema_version SET version = $1", &[&version])
            .await?;
    }
    tx.commit().await?;
    Ok(SCHEMA_VERSION)
}
