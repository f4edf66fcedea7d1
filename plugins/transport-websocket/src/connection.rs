//! One socket: frames in, replies and pushes out.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
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
};

use crate::{
    config::WebSocketConfig,
    push::{CloseReason, SocketSink},
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
    let callback = capture_headers(upgrade_headers.clone());
    let Ok(socket) =
        accept_hdr_async_with_config(stream, callback, Some(socket_config(&config))).await
    else {
        // Not a WebSocket handshake: tungstenite already answered it.
        return;
    };
    let upgrade_headers: Vec<Header> =
        std::mem::take(&mut *upgrade_headers.lock().unwrap_or_else(|e| e.into_inner()));
    let (mut outgoing, mut incoming) = socket.split();
    let connection = RString::from(uuid::Uuid::new_v4().to_string());
    let (frames, mut queued) = mpsc::channel::<Message>(config.send_queue_frames);
    let (close, mut closing) = watch::channel::<Option<CloseReason>>(None);
    host.connection_opened(
        connection.clone(),
        wrap_push_sink(SocketSink {
            frames: frames.clone(),
            close: close.clone(),
            queue_limit: config.send_queue_frames,
        }),
    )
    .await
    .ok();

    // The writer owns the socket's write half: replies and pushes in queue
    // order, pings on a timer, and the close frame when someone asks for one.
    let ping_every = Duration::from_secs(config.ping_interval.max(1));
    let mut writer_closing = closing.clone();
    let writer = plugin_api::runtime::spawn(async move {
        let mut ping = tokio::time::interval(ping_every);
        ping.reset();
        loop {
            tokio::select! {
                biased;
                _ = writer_closing.changed() => {
                    let reason = writer_closing.borrow().clone();
                    if let Some(reason) = reason {
                        let _ = outgoing.send(Message::Close(Some(CloseFrame {
                            code: reason.code,
                            reason: within_close_limit(reason.reason).into(),
                        }))).await;
                    }
                    break;
                }
                message = queued.recv() => match message {
                    Some(message) => if outgoing.send(message).await.is_err() { break },
                    None => {
                        let _ = outgoing.close().await;
                        break;
                    }
                },
                _ = ping.tick() => if outgoing.send(Message::Ping(Vec::new().into())).await.is_err() { break },
            }
        }
    });

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
        if frames.send(reply).await.is_err() {
            break None;
        }
    };
    if let Some(reason) = reason {
        close.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        });
    }
    host.connection_closed(connection).await.ok();
    drop(frames);
    let _ = writer.await;
}

/// A handshake callback that keeps the upgrade request's headers, which the
/// host sees with every frame of the socket.
// The error type is tungstenite's `ErrorResponse`, fixed by its `Callback`
// trait; it is only built when a handshake is refused.
#[allow(clippy::result_large_err)]
fn capture_headers(
    into: Arc<Mutex<Vec<Header>>>,
) -> impl FnOnce(&Request, Response) -> Result<Response, ErrorResponse> + Unpin {
    move |request: &Request, response: Response| {
        let headers = request
            .headers()
            .iter()
            .filter_map(|(name, value)| Some(Header::new(name.as_str(), value.to_str().ok()?)))
            .collect::<Vec<_>>();
        *into.lock().unwrap_or_else(|e| e.into_inner()) = headers;
        Ok(response)
    }
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
