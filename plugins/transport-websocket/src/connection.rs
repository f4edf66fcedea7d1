//! One socket: frames in, replies and pushes out.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::{stream::SplitSink, SinkExt, StreamExt};
use plugin_api::{
    transport::{wrap_push_sink, ApiRequest, Header, HostApi, HostApiBox, Protocol},
    types::{RString, RVec},
};
use tokio::{
    net::TcpStream,
    sync::{mpsc, watch},
};
use tokio_tungstenite::{
    accept_hdr_async_with_config,
    tungstenite::{
        self,
        handshake::server::{ErrorResponse, Request, Response},
        protocol::{frame::coding::CloseCode, CloseFrame},
        Message,
    },
    WebSocketStream,
};

use crate::{
    config::WebSocketConfig,
    push::{request_close, CloseReason, QueuedBytes, SocketSink},
};

const JSON: &str = "application/json";
const MSGPACK: &str = "application/x-msgpack";

fn socket_config(config: &WebSocketConfig) -> tungstenite::protocol::WebSocketConfig {
    // Small buffers: an idle socket must cost little memory (thousands of
    // subscribers per node); large frames still work, they grow the buffer.
    tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(config.max_frame_size.saturating_mul(2))
        .max_message_size(Some(config.max_frame_size))
        .max_frame_size(Some(config.max_frame_size))
}

/// Serves one socket until the client or the server closes it.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    host: Arc<HostApiBox>,
    config: Arc<WebSocketConfig>,
    mut stop: watch::Receiver<bool>,
) {
    let upgrade_headers = Arc::new(Mutex::new(Vec::new()));
    let callback = capture_headers(upgrade_headers.clone(), config.clone());
    let handshake = tokio::time::timeout(
        Duration::from_secs(config.handshake_timeout),
        accept_hdr_async_with_config(stream, callback, Some(socket_config(&config))),
    )
    .await;
    // Not a WebSocket handshake (tungstenite already answered it), or not
    // completed in time: the connection is dropped, which closes it.
    let Ok(Ok(socket)) = handshake else {
        return;
    };
    let upgrade_headers: Vec<Header> =
        std::mem::take(&mut *upgrade_headers.lock().unwrap_or_else(|e| e.into_inner()));
    let (outgoing, mut incoming) = socket.split();
    let connection = RString::from(uuid::Uuid::new_v4().to_string());
    let (frames, queued) = mpsc::channel::<Message>(config.send_queue_frames);
    let (close, mut closing) = watch::channel::<Option<CloseReason>>(None);
    let bytes = Arc::new(QueuedBytes::default());
    host.connection_opened(
        connection.clone(),
        wrap_push_sink(SocketSink {
            frames: frames.clone(),
            close: close.clone(),
            queue_limit: config.send_queue_frames,
            bytes: bytes.clone(),
            bytes_limit: config.send_queue_bytes,
        }),
    )
    .await
    .ok();

    let writer = plugin_api::runtime::spawn(write_loop(
        outgoing,
        queued,
        bytes.clone(),
        closing.clone(),
        close.clone(),
        config.clone(),
    ));

    let idle = Duration::from_secs(config.idle_timeout.max(1));
    let reason = loop {
        let frame = tokio::select! {
            frame = tokio::time::timeout(idle, incoming.next()) => frame,
            _ = closing.changed() => break None,
            _ = stop.changed() => break Some(CloseReason {
                code: CloseCode::Away,
                reason: "server shutting down".into(),
            }),
        };
        let (payload, content_type) = match frame {
            Err(_) => {
                break Some(CloseReason {
                    code: CloseCode::Normal,
                    reason: format!("idle for {} s", idle.as_secs()),
                })
            }
            Ok(None) => break None,
            Ok(Some(Err(error))) => break close_for(&error),
            Ok(Some(Ok(Message::Text(text)))) => (RVec::from(text.as_bytes()), JSON),
            Ok(Some(Ok(Message::Binary(bytes)))) => (RVec::from(bytes.as_ref()), MSGPACK),
            Ok(Some(Ok(Message::Close(_)))) => break None,
            // Pings are answered by tungstenite; pongs only prove liveness.
            Ok(Some(Ok(_))) => continue,
        };
        let mut headers: RVec<Header> = upgrade_headers.iter().cloned().collect();
        headers.retain(|h| h.name.as_str() != "content-type");
        headers.push(Header::new("content-type", content_type));
        let request = ApiRequest {
            protocol: Protocol::WEBSOCKET,
            method: RString::new(),
            path: RString::new(),
            query: RString::new(),
            headers,
            body: payload,
            peer: peer.to_string().into(),
            connection: connection.clone(),
        };
        let Ok(response) = host.handle(request).await else {
            break Some(CloseReason {
                code: CloseCode::Error,
                reason: "the server could not handle the request".into(),
            });
        };
        let body = response.body.into_vec();
        let reply = if content_type == MSGPACK {
            Message::Binary(body.into())
        } else {
            match String::from_utf8(body) {
                Ok(text) => Message::Text(text.into()),
                Err(_) => continue,
            }
        };
        // Replies wait for room (back-pressure on this socket's reads); only
        // pushes, which the client did not ask for, count as overflow.
        let len = reply.len();
        tokio::select! {
            _ = bytes.add_when_room(len, config.send_queue_bytes) => {}
            _ = closing.changed() => break None,
        }
        if frames.send(reply).await.is_err() {
            bytes.remove(len);
            break None;
        }
    };
    if let Some(reason) = reason {
        request_close(&close, reason);
    }
    host.connection_closed(connection).await.ok();
    drop(frames);
    let _ = writer.await;
}

/// The socket's write half: replies and pushes in queue order, pings on a
/// timer, and the close frame when someone asks for one. Every write has a
/// time limit, and a close request interrupts a blocked write: a client
/// that stops reading cannot keep the socket (and what is queued for it)
/// open. When this returns the write half is dropped; the read loop, told
/// through `close`, drops the other, which closes the TCP connection.
async fn write_loop(
    mut outgoing: SplitSink<WebSocketStream<TcpStream>, Message>,
    mut queued: mpsc::Receiver<Message>,
    bytes: Arc<QueuedBytes>,
    mut closing: watch::Receiver<Option<CloseReason>>,
    close: watch::Sender<Option<CloseReason>>,
    config: Arc<WebSocketConfig>,
) {
    let write_limit = Duration::from_secs(config.write_timeout);
    let blocked = || CloseReason {
        code: CloseCode::Policy,
        reason: format!(
            "slow consumer: a write blocked for {} s",
            write_limit.as_secs()
        ),
    };
    let mut ping = tokio::time::interval(Duration::from_secs(config.ping_interval.max(1)));
    ping.reset();
    loop {
        let (message, len) = tokio::select! {
            biased;
            _ = closing.changed() => break,
            message = queued.recv() => match message {
                Some(message) => {
                    let len = message.len();
                    (message, len)
                }
                None => {
                    let _ = tokio::time::timeout(write_limit, outgoing.close()).await;
                    return;
                }
            },
            _ = ping.tick() => (Message::Ping(Vec::new().into()), 0),
        };
        let sent = tokio::select! {
            sent = tokio::time::timeout(write_limit, outgoing.send(message)) => sent,
            _ = closing.changed() => break,
        };
        if len > 0 {
            bytes.remove(len);
        }
        match sent {
            Ok(Ok(())) => {}
            // The peer is gone.
            Ok(Err(_)) => {
                request_close(
                    &close,
                    CloseReason {
                        code: CloseCode::Away,
                        reason: String::new(),
                    },
                );
                return;
            }
            Err(_) => {
                request_close(&close, blocked());
                return;
            }
        }
    }
    // Asked to close: say why if the socket still takes a frame, but never
    // wait longer than a write may take.
    let reason = closing.borrow().clone();
    if let Some(reason) = reason {
        let _ = tokio::time::timeout(
            write_limit,
            outgoing.send(Message::Close(Some(CloseFrame {
                code: reason.code,
                reason: within_close_limit(reason.reason).into(),
            }))),
        )
        .await;
    }
}

/// A handshake callback that keeps the upgrade request's headers, which the
/// host sees with every frame of the socket.
// The error type is tungstenite's `ErrorResponse`, fixed by its `Callback`
// trait; it is only built when a handshake is refused.
#[allow(clippy::result_large_err)]
fn capture_headers(
    into: Arc<Mutex<Vec<Header>>>,
    config: Arc<WebSocketConfig>,
) -> impl FnOnce(&Request, Response) -> Result<Response, ErrorResponse> + Unpin {
    move |request: &Request, response: Response| {
        let text = |name| request.headers().get(name).and_then(|v| v.to_str().ok());
        if let Some(origin) = text("origin") {
            if !origin_allowed(origin, text("host"), &config.allowed_origins) {
                let mut refused = ErrorResponse::new(Some(format!(
                    "{{\"title\":\"Forbidden\",\"description\":\"Origin {} may not open a socket.\"}}",
                    origin.replace(['"', '\\'], "")
                )));
                *refused.status_mut() = tungstenite::http::StatusCode::FORBIDDEN;
                return Err(refused);
            }
        }
        let headers = request
            .headers()
            .iter()
            .filter_map(|(name, value)| Some(Header::new(name.as_str(), value.to_str().ok()?)))
            .collect::<Vec<_>>();
        *into.lock().unwrap_or_else(|e| e.into_inner()) = headers;
        Ok(response)
    }
}

/// Whether a page of `origin` may open a socket: it is listed (or `*`
/// is), or its host name is the one the client connected to (`host`, the
/// `Host` header; the server's own pages, whichever of its ports served
/// them).
fn origin_allowed(origin: &str, host: Option<&str>, allowed: &[String]) -> bool {
    if allowed
        .iter()
        .any(|a| a == "*" || a.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let origin_host = origin
        .split_once("://")
        .map_or(origin, |(_, rest)| rest)
        .trim_end_matches('/');
    host.is_some_and(|host| host_name(origin_host).eq_ignore_ascii_case(host_name(host)))
}

/// `name` of `name:port` (`[v6]` of `[v6]:port`).
fn host_name(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .split(']')
            .next()
            .map_or(authority, |h| &authority[..h.len() + 1]);
    }
    authority.split(':').next().unwrap_or(authority)
}

/// The close code for a frame-level error; `None` when the peer is gone.
fn close_for(error: &tungstenite::Error) -> Option<CloseReason> {
    use tungstenite::Error;
    match error {
        Error::Capacity(detail) => Some(CloseReason {
            code: CloseCode::Size,
            reason: format!("frame too large: {detail}"),
        }),
        Error::Protocol(detail) => Some(CloseReason {
            code: CloseCode::Protocol,
            reason: format!("protocol violation: {detail}"),
        }),
        Error::Utf8(_) => Some(CloseReason {
            code: CloseCode::Invalid,
            reason: "text frame is not valid UTF-8".into(),
        }),
        _ => None,
    }
}

/// A close frame's reason may be at most 123 bytes (RFC 6455 §5.5).
fn within_close_limit(mut reason: String) -> String {
    const LIMIT: usize = 123;
    if reason.len() > LIMIT {
        let mut cut = LIMIT;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
    }
    reason
}

#[cfg(test)]
mod origin_tests {
    use super::origin_allowed;

    #[test]
    fn listed_origins_and_the_servers_own_host_are_let_in() {
        let listed = vec!["https://dash.example".to_string()];
        assert!(origin_allowed(
            "https://dash.example",
            Some("ws.example:9000"),
            &listed
        ));
        assert!(origin_allowed(
            "http://127.0.0.1:8888",
            Some("127.0.0.1:9000"),
            &[]
        ));
        assert!(origin_allowed("http://[::1]:8888", Some("[::1]:9000"), &[]));
        assert!(!origin_allowed(
            "https://evil.example",
            Some("127.0.0.1:9000"),
            &listed
        ));
        assert!(!origin_allowed("https://evil.example", None, &[]));
        assert!(origin_allowed("https://evil.example", None, &["*".into()]));
    }
}
