//! The change feed (plugin-api 1.1): every committing transaction that
//! changes what pushes and notifications depend on sends a `NOTIFY` on
//! [`CHANNEL`] (delivered by PostgreSQL at commit, in commit order, to every
//! host listening); each store started with `changes_watch` keeps one
//! dedicated connection that `LISTEN`s and hands the changes to the host.
//! When that connection is lost it reconnects with backoff and then sends
//! [`ChangeKind::RESYNC`], since changes committed meanwhile were missed.

use std::{sync::Arc, time::Duration};

use deadpool_postgres::GenericClient;
use futures_util::StreamExt;
use plugin_api::storage::{ChangeKind, ChangeSink, ChangeSinkBox, QueueChange, QueueRef};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::{AsyncMessage, NoTls};

use crate::{db::OpResult, log, sql::query};

/// The notification channel.
pub(crate) const CHANNEL: &str = "zaqar_changes";

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

/// The payload of a change: `kind.last_seq.hex(project).hex(queue).subscription`
/// (names hex-encoded so that no name can break the format).
fn encode(kind: ChangeKind, q: &QueueRef, last_seq: u64, subscription: &str) -> String {
    format!(
        "{}.{last_seq}.{}.{}.{subscription}",
        kind.0,
        hex(&q.project),
        hex(&q.name)
    )
}

fn decode(payload: &str) -> Option<QueueChange> {
    let mut parts = payload.split('.');
    let kind = ChangeKind(parts.next()?.parse().ok()?);
    let last_seq = parts.next()?.parse().ok()?;
    let project = unhex(parts.next()?)?;
    let queue = unhex(parts.next()?)?;
    let subscription = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    Some(QueueChange::new(
        kind,
        QueueRef::new(&project, &queue),
        last_seq,
        subscription,
    ))
}

/// Queues a change for announcement when the caller's transaction commits.
pub(crate) async fn announce<C: GenericClient + Sync>(
    c: &C,
    kind: ChangeKind,
    q: &QueueRef,
    last_seq: u64,
    subscription: &str,
) -> OpResult<()> {
    let payload = encode(kind, q, last_seq, subscription);
    query(c, "SELECT pg_notify($1, $2)", &[&CHANNEL, &payload]).await?;
    Ok(())
}

/// Listens until the connection is lost. `listening` is told once the
/// first `LISTEN` is in place; `listened` records that this attempt got
/// that far.
async fn listen_once(
    config: &tokio_postgres::Config,
    sink: &ChangeSinkBox,
    listening: &mut Option<oneshot::Sender<()>>,
    listened: &mut bool,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_owned()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    // Whatever committed while no connection listened was missed.
    sink.changed(QueueChange::resync());
    *listened = true;
    if let Some(listening) = listening.take() {
        let _ = listening.send(());
    }
    while let Some(payload) = rx.recv().await {
        match decode(&payload) {
            Some(change) => sink.changed(change),
            None => log::warn(&format!(
                "postgresql store: ignored a malformed change notification {payload:?}"
            )),
        }
    }
    drop(client);
    match driver.await {
        Ok(result) => result,
        Err(_) => Ok(()),
    }
}

/// Listens for changes for ever, reconnecting with backoff.
pub(crate) async fn run(
    config: tokio_postgres::Config,
    sink: ChangeSinkBox,
    listening: oneshot::Sender<()>,
    uri: Arc<str>,
) {
    let mut listening = Some(listening);
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut listened = false;
        let outcome = listen_once(&config, &sink, &mut listening, &mut listened).await;
        if listened {
            // It had worked: a new outage starts the backoff over.
            backoff = Duration::from_millis(100);
        }
        match outcome {
            Ok(()) => log::warn(&format!(
                "postgresql store: change feed connection to {uri} closed; reconnecting"
            )),
            Err(e) => log::warn(&format!(
                "postgresql store: change feed connection to {uri} lost ({e}); reconnecting"
            )),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_any_name() {
        let q = QueueRef::new("p.1|x", "q_1");
        let change = decode(&encode(ChangeKind::SUBSCRIPTIONS, &q, 42, "abc")).unwrap();
        assert_eq!(change.kind, ChangeKind::SUBSCRIPTIONS);
        assert_eq!(change.queue, q);
        assert_eq!(change.last_seq, 42);
        assert_eq!(change.subscription.as_str(), "abc");
        assert!(decode("0.1.zz.00.").is_none());
    }
}
