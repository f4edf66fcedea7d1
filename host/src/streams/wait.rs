//! Long-polling message listings and claims (`GET .../messages?wait=S`,
//! `POST .../claims?wait=S`): instead of answering empty at once, wait up
//! to `wait` seconds (at most `[streams] max_wait`) for the first message,
//! woken by the queue's tail when a post commits — not by a timer loop.

use std::time::Duration;

use tokio::time::Instant;

use crate::api::{
    action::{Caller, Reply},
    command::Command,
    errors::{ApiError, ApiResult},
    params::QueryParams,
    queues::queue_ref,
    Api,
};

/// Reads `wait` (seconds, 0..=`max_wait`).
pub fn wait_param(api: &Api, params: &QueryParams) -> ApiResult<Option<Duration>> {
    let max = api.streams.max_wait;
    match params.int("wait")? {
        None => Ok(None),
        Some(seconds) if (0..=max as i64).contains(&seconds) => {
            Ok(Some(Duration::from_secs(seconds as u64)))
        }
        Some(_) => Err(ApiError::api(format!(
            "wait must be from 0 to {max} seconds."
        ))),
    }
}

fn is_empty(reply: &Reply) -> bool {
    match reply {
        Reply::MessageList { messages, .. } => messages.is_empty(),
        Reply::ClaimCreated(claim) => claim.messages.is_empty(),
        _ => false,
    }
}

/// Runs `command`; a message listing or claim with `wait` that found
/// nothing runs again each time a post commits, until it finds something
/// or the wait is over (or the server stops).
pub async fn dispatch(
    api: &Api,
    caller: &Caller,
    command: &Command<'_>,
    params: &QueryParams,
) -> ApiResult<Reply> {
    let waits = matches!(
        command,
        Command::MessageList { .. } | Command::ClaimCreate { .. }
    );
    let wait = if waits {
        wait_param(api, params)?
    } else {
        None
    };
    let (Some(wait), Some(queue)) = (wait, command.queue()) else {
        return api.dispatch(caller, command).await;
    };
    let deadline = Instant::now() + wait;
    // Subscribed before the first read: a post committing in between
    // still wakes us.
    let mut tail = api.notify.pushes.tail(&queue_ref(caller, queue));
    let mut stopping = api.stopping();
    loop {
        tail.borrow_and_update();
        let reply = api.dispatch(caller, command).await?;
        if !is_empty(&reply) || Instant::now() >= deadline || *stopping.borrow() {
            return Ok(reply);
        }
        tokio::select! {
            changed = tail.changed() => {
                if changed.is_err() {
                    tokio::time::sleep_until(deadline).await;
                }
            }
            _ = tokio::time::sleep_until(deadline) => {}
            _ = stopping.changed() => {}
        }
    }
}
