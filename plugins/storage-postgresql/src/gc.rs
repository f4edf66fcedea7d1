//! The collector: a background task that deletes expired messages, claims,
//! subscriptions, notification-log copies and leases in bounded batches. Reads never depend on it (they
//! hide expired rows by `now_ms`); it only keeps the tables small.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{
    db::{Database, OpResult},
    log,
    sql::{big, execute},
};

/// Rows deleted per statement, so that no pass holds long locks.
pub(crate) const BATCH: i64 = 1000;

/// The wall clock in ms since the epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Deletes up to `batch` expired rows of each table; returns how many went.
/// The messages among them are added to the database's expired count
/// (several hosts may collect one database: each counts what it deleted,
/// so the sum over hosts is every message that expired once).
pub(crate) async fn pass(db: &Database, now_ms: u64, batch: i64) -> OpResult<u64> {
    let client = db.client().await.map_err(crate::db::OpError::Caller)?;
    let mut removed = 0;
    for table in [
        "zaqar_messages",
        "zaqar_claims",
        "zaqar_subscriptions",
        "zaqar_notification_log",
        "zaqar_leases",
    ] {
        let deleted = execute(
            &client,
            &format!(
                "DELETE FROM {table} WHERE ctid = ANY(ARRAY( \
                 SELECT ctid FROM {table} WHERE expires_ms <= $1 LIMIT $2))"
            ),
            &[&big(now_ms), &batch],
        )
        .await?;
        if table == "zaqar_messages" {
            db.messages_expired
                .fetch_add(deleted, std::sync::atomic::Ordering::Relaxed);
        }
        removed += deleted;
    }
    Ok(removed)
}

/// Runs [`pass`] every `interval` until the task is aborted; a full batch
/// is followed at once by another pass.
pub(crate) async fn run(db: Database, interval: Duration) {
    let mut failing = false;
    loop {
        tokio::time::sleep(interval).await;
        loop {
            match pass(&db, now_ms(), BATCH).await {
                Ok(removed) => {
                    failing = false;
                    if removed < BATCH as u64 {
                        break;
                    }
                }
                Err(e) => {
                    // One line per outage, not one per pass.
                    if !failing {
                        log::warn(&format!(
                            "postgresql store: expired-row collection failed: {}",
                            e.into_plugin().message
                        ));
                    }
                    failing = true;
                    break;
                }
            }
        }
    }
}
