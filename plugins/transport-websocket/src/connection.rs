//! One socket: frames in, replies and pushes out.
//!
//! tungstenite reads and decodes the client's frames; everything the server
//! sends goes out through the socket's [`Outbox`] as ready-made frames, so
//! a push is written from the host's fan-out without waking this task.
//! tungstenite's own writes after the handshake (the pongs and close
//! replies it would send by itself) are dropped: this task sends them.

use std::{
    io::{self, Read},
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{ready, Context, Poll},
    time::Duration,
};

use futures_util::StreamExt;
use plugin_api::{
    transport::{wrap_push_sink, ApiRequest, Header, HostApi, HostApiBox, Protocol},
    types::{RString, RVec},
};
use tokio::{
    io::{AsyncRead, AsyncWrite, Interest, ReadBuf},
    net::TcpStream,
    sync::watch,
    time::Instant,
};
use tokio_tungstenite::{
    accept_hdr_async_with_config,
    tungstenite::{
        self,
        handshake::server::{ErrorResponse, Request, Response},
        protocol::frame::coding::CloseCode,
        Message,
    },
};

use crate::{
    config::WebSocketConfig,
    push::{request_close, CloseReason, OpCode, Outbox, QueueLimits, Queued, SocketSink},
};

const JSON: &str = "application/json";
const MSGPACK: &str = "application/x-msgpack";

fn socket_config(config: &WebSocketConfig) -> tungstenite::protocol::WebSocketConfig {
    // A small read buffer: an idle socket must cost little memory
    // (thousands of subscribers per node); a large frame still works, it
    // grows the buffer. tungstenite writes nothing that is kept.
    tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_message_size(Some(config.max_frame_size))
        .max_frame_size(Some(config.max_frame_size))
}

/// The socket as tungstenite sees it: reads from the TCP stream; writes
/// reach it only during the handshake (afterwards the [`Outbox`] writes).
struct ReadSide {
    stream: Arc<TcpStream>,
    handshaking: bool,
}

impl AsyncRead for ReadSide {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.stream.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            let wanted = unfilled.len();
            let mut read = 0;
            // A read that leaves room in the buffer took all the kernel
            // had: the socket's readiness is cleared then, as tokio's own
            // `poll_read` does, so that the next read waits for the next
            // readiness event instead of making a `recv` that can only
            // fail with WouldBlock (one `recv` per frame instead of two).
            // Clearing through `try_io`'s WouldBlock is race-free: it
            // clears only the readiness observed before this read, not one
            // that more data brought since.
            let outcome = self.stream.try_io(Interest::READABLE, || {
                let mut socket: &socket2::Socket = &socket2::SockRef::from(&*self.stream);
                read = socket.read(unfilled)?;
                if read > 0 && read < wanted {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(())
            });
            match outcome {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock && read > 0 => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                Err(error) => return Poll::Ready(Err(error)),
            }
            buf.advance(read);
            return Poll::Ready(Ok(()));
        }
    }
}

impl AsyncWrite for ReadSide {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if !self.handshaking {
            return Poll::Ready(Ok(buf.len()));
        }
        loop {
            ready!(self.stream.poll_write_ready(cx))?;
            match self.stream.try_write(buf) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                written => return Poll::Ready(written),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Serves one socket until the client or the server closes it.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    host: Arc<HostApiBox>,
    config: Arc<WebSocketConfig>,
    mut stop: watch::Receiver<bool>,
) {
    // Every frame is written whole in one call, so Nagle's algorithm can
    // only hold a frame back (behind an unacknowledged earlier one, for as
    // long as the client delays its ack), never join anything useful. A
    // socket that refuses the option still works, only slower to answer.
    let _ = stream.set_nodelay(true);
    let captured_headers = Arc::new(Mutex::new(Vec::new()));
    let callback = capture_headers(captured_headers.clone(), config.clone());
    let stream = Arc::new(stream);
    let read_side = ReadSide {
        stream: stream.clone(),
        handshaking: true,
    };
    // Boxed: the handshake's state is freed once it is done instead of
    // staying part of this task's size for the socket's life.
    let handshake = tokio::time::timeout(
        Duration::from_secs(config.handshake_timeout),
        Box::pin(accept_hdr_async_with_config(
            read_side,
            callback,
            Some(socket_config(&config)),
        )),
    )
    .await;
    // Not a WebSocket handshake (tungstenite already answered it), or not
    // completed in time: the connection is dropped, which closes it.
    let Ok(Ok(mut socket)) = handshake else {
        return;
    };
    socket.get_mut().handshaking = false;
    // Kept for the socket's life: exactly as large as needed, without the
    // upgrade's content type (each frame carries its own).
    let mut upgrade_headers =
        std::mem::take(&mut *captured_headers.lock().unwrap_or_else(|e| e.into_inner()));
    upgrade_headers.retain(|h| h.name.as_str() != "content-type");
    let upgrade_headers = upgrade_headers.into_boxed_slice();
    drop(captured_headers);
    let connection = RString::from(uuid::Uuid::new_v4().to_string());
    // Formatted once: an address's text costs more than the rest of a
    // frame's envelope.
    let peer = RString::from(peer.to_string());
    let (close, mut closing) = watch::channel::<Option<CloseReason>>(None);
    let outbox = Arc::new(Outbox::new(
        stream.clone(),
        QueueLimits {
            frames: config.send_queue_frames,
            bytes: config.send_queue_bytes,
        },
        close.clone(),
    ));
    host.connection_opened(
        connection.clone(),
        wrap_push_sink(SocketSink {
            outbox: outbox.clone(),
            batched: config.batched_pushes,
        }),
    )
    .await
    .ok();

    let write_limit = Duration::from_secs(config.write_timeout);
    let idle = Duration::from_secs(config.idle_timeout.max(1));
    let mut last_heard = Instant::now();
    // The idle timer is moved on when it fires, to the last frame heard
    // plus the idle time, not at every frame: re-arming a timer per frame
    // cost each request more than reading its frame's header.
    let idle_timer = tokio::time::sleep_until(last_heard + idle);
    tokio::pin!(idle_timer);
    let mut ping = tokio::time::interval(Duration::from_secs(config.ping_interval.max(1)));
    ping.reset();
    let reason = loop {
        let frame = tokio::select! {
            biased;
            _ = closing.changed() => break closing.borrow().clone(),
            _ = stop.changed() => break Some(CloseReason {
                code: CloseCode::Away,
                reason: "server shutting down".into(),
            }),
            blocked = keep_flushing(&outbox, write_limit) => break Some(blocked),
            _ = &mut idle_timer => {
                let deadline = last_heard + idle;
                if deadline > Instant::now() {
                    idle_timer.as_mut().reset(deadline);
                    continue;
                }
                break Some(CloseReason {
                    code: CloseCode::Normal,
                    reason: format!("idle for {} s", idle.as_secs()),
                });
            }
            _ = ping.tick() => {
                // A ping behind a full queue is not needed: the queue
                // drains or the socket is closed.
                outbox.try_send(OpCode::Ping, &[]);
                continue;
            }
            frame = socket.next() => frame,
        };
        last_heard = Instant::now();
        let (payload, content_type) = match frame {
            None => break None,
            Some(Err(error)) => break close_for(&error),
            Some(Ok(Message::Text(text))) => (RVec::from(text.as_bytes()), JSON),
            Some(Ok(Message::Binary(bytes))) => (RVec::from(bytes.as_ref()), MSGPACK),
            Some(Ok(Message::Close(frame))) => {
                // Answered with the same code, as the close handshake asks.
                break Some(CloseReason {
                    code: frame.map_or(CloseCode::Status, |f| f.code),
                    reason: String::new(),
                });
            }
            Some(Ok(Message::Ping(data))) => {
                match send_reply(&outbox, &mut closing, write_limit, OpCode::Pong, &data).await {
                    Ok(()) => continue,
                    Err(reason) => break reason,
                }
            }
            // Pongs only prove liveness.
            Some(Ok(_)) => continue,
        };
        let mut headers = RVec::with_capacity(upgrade_headers.len() + 1);
        headers.extend(upgrade_headers.iter().cloned());
        headers.push(Header::new("content-type", content_type));
        let request = ApiRequest {
            protocol: Protocol::WEBSOCKET,
            method: RString::new(),
            path: RString::new(),
            query: RString::new(),
            headers,
            body: payload,
            peer: peer.clone(),
            connection: connection.clone(),
        };
        // Pushes queued behind a blocked socket keep draining while the
        // host works on the request.
        let handling = host.handle(request);
        tokio::pin!(handling);
        let handled = tokio::select! {
            handled = &mut handling => handled,
            blocked = keep_flushing(&outbox, write_limit) => {
                request_close(&close, blocked);
                handling.await
            }
        };
        let Ok(response) = handled else {
            break Some(CloseReason {
                code: CloseCode::Error,
                reason: "the server could not handle the request".into(),
            });
        };
        let opcode = if content_type == MSGPACK {
            OpCode::Binary
        } else if std::str::from_utf8(&response.body).is_ok() {
            OpCode::Text
        } else {
            continue;
        };
        // Replies wait for room (back-pressure on this socket's reads); only
        // pushes, which the client did not ask for, count as overflow.
        if let Err(reason) =
            send_reply(&outbox, &mut closing, write_limit, opcode, &response.body).await
        {
            break reason;
        }
    };
    let reason = match reason {
        Some(reason) => {
            request_close(&close, reason);
            closing.borrow().clone()
        }
        None => None,
    };
    // Nothing is taken after this; the host stops pushing, then the close
    // frame goes out, within the time a write may take.
    let flush = outbox.begin_close(reason.as_ref());
    host.connection_closed(connection).await.ok();
    let sent = !flush || outbox.flush(write_limit).await.is_ok();
    if sent {
        // Boxed: its read buffer would otherwise be part of this task's
        // size for the socket's whole life, not only while it lingers.
        Box::pin(linger(&stream)).await;
    }
}

/// How long a closed socket keeps reading for the client's close frame.
const LINGER_TIME: Duration = Duration::from_secs(2);
/// How much a closed socket reads (and discards) at most while it lingers.
const LINGER_BYTES: usize = 1 << 20;

/// Half-closes the socket once everything (the close frame last) is
/// written, then reads and discards what the client still sends until it
/// closes its side, for a bounded time and number of bytes. Closing a TCP
/// socket that has unread input makes the kernel reset the connection, and
/// a reset makes the client's kernel discard what the client has not read
/// yet, our close frame included: the client would see the connection
/// dropped instead of being told why.
async fn linger(stream: &TcpStream) {
    if socket2::SockRef::from(stream)
        .shutdown(std::net::Shutdown::Write)
        .is_err()
    {
        return;
    }
    let discard = async {
        let mut buffer = [0u8; 4096];
        let mut left = LINGER_BYTES;
        while left > 0 {
            if stream.readable().await.is_err() {
                return;
            }
            match stream.try_read(&mut buffer) {
                Ok(0) => return,
                Ok(read) => left = left.saturating_sub(read),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, discard).await;
}

/// Writes what the outbox queued whenever the socket takes more; returns
/// only why it cannot go on (the socket is gone or a write stayed blocked).
async fn keep_flushing(outbox: &Outbox, write_limit: Duration) -> CloseReason {
    loop {
        if let Err(reason) = outbox.flush(write_limit).await {
            return reason;
        }
    }
}

/// Sends a frame the client asked for, waiting for room in the queue;
/// `Err` with the reason to close (`None`: the socket is closing already).
async fn send_reply(
    outbox: &Outbox,
    closing: &mut watch::Receiver<Option<CloseReason>>,
    write_limit: Duration,
    opcode: OpCode,
    payload: &[u8],
) -> Result<(), Option<CloseReason>> {
    loop {
        match outbox.try_send(opcode, payload) {
            Some(Queued::Yes) => return Ok(()),
            Some(Queued::No) => return Err(None),
            None => {}
        }
        tokio::select! {
            flushed = outbox.flush(write_limit) => flushed.map_err(Some)?,
            _ = closing.changed() => return Err(closing.borrow().clone()),
        }
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
