//! `GET /v2/queues/{queue_name}/events`: a queue's messages as server-sent
//! events (with `Accept: text/event-stream`) or as a long-poll answer
//! (otherwise). Both take the stream options as query parameters and,
//! because a browser's `EventSource` cannot set headers, the identity as
//! query parameters too (`client_id`, `project_id`, `token`) when the
//! headers are absent.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use plugin_api::{
    storage::{MessageListQuery, MessageStore, QueueRef},
    transport::{
        wrap_push_sink, wrap_response_stream, ApiRequest, ApiResponse, Header, PushFrame, PushSink,
        ResponseStream, ServedResponse,
    },
    types::{ROption, RVec},
    PluginResult,
};
use tokio::{
    sync::{mpsc, watch},
    time::Instant,
};

use super::options::{self, Gap, StreamOptions};
use crate::{
    api::{
        clock,
        errors::{ApiError, ApiResult},
        http::{check_signature, identify, HttpResponse},
        params::QueryParams,
        queues::queue_ref,
        validation::QueueName,
        Api,
    },
    notify::{
        payload::{notification_json, Notified},
        Dispatcher,
    },
    push::{Format, StreamSpec},
};

/// Events buffered for a slow reader before its stream is ended.
const STREAM_BUFFER: usize = 1024;
/// Largest long-poll `limit`.
const MAX_LIMIT: u64 = 1000;
/// Default long-poll `limit`.
const DEFAULT_LIMIT: u64 = 100;
/// Messages read per page by a long-poll.
const PAGE: u32 = 100;
/// What a reconnecting `EventSource` waits, in milliseconds.
const RETRY_MS: u32 = 2000;

/// The queue name of an events path (`/v2/queues/{name}/events`).
pub fn events_queue(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v2/queues/")?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (name, tail) = rest.split_once('/')?;
    (tail == "events" && !name.is_empty()).then_some(name)
}

fn header<'a>(request: &'a ApiRequest, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|h| h.name.as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// Copies the identity query parameters into the headers they stand for,
/// where the request has no such header.
fn identity_from_query(request: &mut ApiRequest, params: &QueryParams) -> ApiResult<()> {
    for (param, name) in [
        ("client_id", "client-id"),
        ("project_id", "x-project-id"),
        ("token", "x-auth-token"),
    ] {
        if header(request, name).is_some() {
            continue;
        }
        if let Some(value) = params.text(param)? {
            request.headers.push(Header::new(name, value.as_ref()));
        }
    }
    Ok(())
}

/// Serves the events path.
pub async fn serve(api: &Api, mut request: ApiRequest, queue_name: &str) -> ServedResponse {
    match start(api, &mut request, queue_name).await {
        Ok(served) => served,
        Err(error) => whole(HttpResponse::error(&error)),
    }
}

fn whole(response: HttpResponse) -> ServedResponse {
    ServedResponse::whole(ApiResponse {
        status: response.status,
        headers: response
            .headers
            .iter()
            .map(|(name, value)| Header::new(name, value))
            .collect(),
        body: RVec::from(response.body),
    })
}

async fn start(api: &Api, request: &mut ApiRequest, queue_name: &str) -> ApiResult<ServedResponse> {
    let method = request.method.as_str().to_string();
    if method == "OPTIONS" {
        return Ok(whole(
            HttpResponse::empty(200).with("allow", "GET, OPTIONS".into()),
        ));
    }
    if method != "GET" {
        return Err(ApiError::MethodNotAllowed {
            allow: "GET, OPTIONS".into(),
        });
    }
    let params = QueryParams::parse(&request.query);
    let path = request.path.as_str().trim_end_matches('/').to_string();
    check_signature(api, request, &path)?;
    identity_from_query(request, &params)?;
    let caller = identify(api, request).await?;
    let queue = queue_ref(&caller, &QueueName::parse(queue_name, &caller.project)?);
    let options = StreamOptions::from_query(&params, header(request, "last-event-id"))?;
    let event_stream = header(request, "accept").is_some_and(|a| a.contains("text/event-stream"));
    let limit = if event_stream {
        DEFAULT_LIMIT
    } else {
        match params.int("limit")? {
            None => DEFAULT_LIMIT,
            Some(n) if (1..=MAX_LIMIT as i64).contains(&n) => n as u64,
            Some(_) => {
                return Err(ApiError::api(format!(
                    "limit must be from 1 to {MAX_LIMIT}."
                )))
            }
        }
    };
    let wait = super::wait::wait_param(api, &params)?;
    let resolved = options::resolve(&api.stores.messages, &queue, options.start).await?;
    if event_stream {
        Ok(open_stream(api, queue, options, resolved))
    } else {
        let wait = wait.unwrap_or_default();
        let body = long_poll(api, &queue, &options, resolved, wait, limit).await?;
        Ok(whole(HttpResponse::json(200, body)))
    }
}

/// A push sink feeding one event stream; a reader too slow to keep
/// `STREAM_BUFFER` events is ended as a slow consumer.
struct ChannelSink {
    sender: mpsc::Sender<Vec<u8>>,
    slow: Arc<AtomicBool>,
}

impl PushSink for ChannelSink {
    fn push(&self, frame: PushFrame) -> bool {
        match self.sender.try_send(frame.payload.into_vec()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.slow.store(true, Ordering::SeqCst);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

fn open_stream(
    api: &Api,
    queue: QueueRef,
    options: StreamOptions,
    resolved: options::Resolved,
) -> ServedResponse {
    let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
    let slow = Arc::new(AtomicBool::new(false));
    let connection = format!("sse-{}", uuid::Uuid::new_v4().simple());
    let pushes = &api.notify.pushes;
    pushes.open_stream(
        &connection,
        wrap_push_sink(ChannelSink {
            sender,
            slow: slow.clone(),
        }),
    );
    let spec = StreamSpec {
        format: Format::ServerSentEvent,
        after_seq: resolved.after_seq,
        gap: resolved.gap,
        filter: options.filter,
        acks: false,
    };
    pushes.subscribe_with(&connection, queue, &connection, None, spec);
    let stream = EventStream {
        state: tokio::sync::Mutex::new(StreamState {
            receiver,
            started: false,
            stopping: api.stopping(),
        }),
        slow,
        heartbeat: Duration::from_secs(api.streams.heartbeat),
        notify: api.notify.clone(),
        connection,
    };
    ServedResponse {
        response: ApiResponse {
            status: 200,
            headers: [
                ("content-type", "text/event-stream"),
                ("cache-control", "no-cache"),
                ("x-accel-buffering", "no"),
            ]
            .iter()
            .map(|(name, value)| Header::new(name, value))
            .collect(),
            body: RVec::new(),
        },
        stream: ROption::RSome(wrap_response_stream(stream)),
    }
}

struct StreamState {
    receiver: mpsc::Receiver<Vec<u8>>,
    started: bool,
    stopping: watch::Receiver<bool>,
}

/// One server-sent event stream: a connection of the push hub with one
/// subscription, closed when the transport drops the stream (the client
/// went away) or the stream ends.
struct EventStream {
    state: tokio::sync::Mutex<StreamState>,
    slow: Arc<AtomicBool>,
    heartbeat: Duration,
    notify: Arc<Dispatcher>,
    connection: String,
}

impl ResponseStream for EventStream {
    async fn next_chunk(&self) -> PluginResult<ROption<RVec<u8>>> {
        let mut state = self.state.lock().await;
        if !state.started {
            state.started = true;
            return Ok(ROption::RSome(
                format!("retry: {RETRY_MS}\n\n").into_bytes().into(),
            ));
        }
        if *state.stopping.borrow() {
            return Ok(ROption::RNone);
        }
        if self.slow.load(Ordering::SeqCst) {
            // The client resumes from the last id it read.
            tracing::debug!(stream = %self.connection, "event stream ended: the client reads too slowly");
            return Ok(ROption::RNone);
        }
        let StreamState {
            receiver, stopping, ..
        } = &mut *state;
        let chunk = tokio::select! {
            event = receiver.recv() => event,
            _ = tokio::time::sleep(self.heartbeat) => Some(b": keepalive\n\n".to_vec()),
            _ = stopping.changed() => None,
        };
        Ok(chunk.map(RVec::from).into())
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.notify.pushes.close(&self.connection);
    }
}

/// The long-poll answer: `{"events": [...], "gap": null | {...},
/// "last_seq": N}` as soon as there is an event (or a gap), or with no
/// events once `wait` is over.
async fn long_poll(
    api: &Api,
    queue: &QueueRef,
    options: &StreamOptions,
    resolved: options::Resolved,
    wait: Duration,
    limit: u64,
) -> ApiResult<Vec<u8>> {
    let deadline = Instant::now() + wait;
    let mut tail = api.notify.pushes.tail(queue);
    let mut stopping = api.stopping();
    let mut cursor = resolved.after_seq;
    let mut events: Vec<Vec<u8>> = Vec::new();
    loop {
        tail.borrow_and_update();
        loop {
            let query = MessageListQuery {
                after_seq: ROption::RSome(cursor),
                limit: PAGE,
                exclude_client: ROption::RNone,
                include_claimed: true,
                include_delayed: true,
            };
            let page = api
                .stores
                .messages
                .message_list(queue.clone(), query, clock::now_ms())
                .await
                .map_err(|e| ApiError::storage(e, "Events could not be read."))?;
            for message in page.iter() {
                if events.len() as u64 >= limit {
                    break;
                }
                cursor = message.seq;
                if options.filter.matches(&message.body) {
                    events.push(notification_json(&Notified {
                        queue: queue.name.as_str(),
                        id: message.id.as_str(),
                        seq: message.seq,
                        ttl: message.ttl,
                        body: &message.body,
                    }));
                }
            }
            if page.len() < PAGE as usize || events.len() as u64 >= limit {
                break;
            }
        }
        let over = Instant::now() >= deadline || *stopping.borrow();
        if !events.is_empty() || resolved.gap.is_some() || over {
            return Ok(long_poll_body(&events, resolved.gap, cursor));
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

fn long_poll_body(events: &[Vec<u8>], gap: Option<Gap>, last_seq: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + events.iter().map(Vec::len).sum::<usize>());
    out.extend_from_slice(b"{\"events\":[");
    for (index, event) in events.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        out.extend_from_slice(event);
    }
    out.extend_from_slice(b"],\"gap\":");
    match gap {
        Some(gap) => out.extend_from_slice(format!("{{{}}}", gap.json_fields()).as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(format!(",\"last_seq\":{last_seq}}}").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_events_path_of_a_queue_is_an_events_path() {
        assert_eq!(events_queue("/v2/queues/q/events"), Some("q"));
        assert_eq!(events_queue("/v2/queues/q/events/"), Some("q"));
        assert_eq!(events_queue("/v2/queues/q/messages"), None);
        assert_eq!(events_queue("/v2/queues//events"), None);
        assert_eq!(events_queue("/v2/queues/q/events/x"), None);
    }
}
