//! A blocking WebSocket client speaking Zaqar's frames, in JSON (text
//! frames) or MsgPack (binary frames).

use std::{net::TcpStream, time::Duration};

use serde_json::{json, Value};
use tungstenite::{protocol::CloseFrame, stream::MaybeTlsStream, Message, WebSocket};

/// What arrived on the socket.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A text frame, parsed as JSON.
    Text(Value),
    /// A binary frame, decoded from MsgPack.
    Binary(Value),
    /// The server closed the socket (code, reason).
    Closed(u16, String),
    /// Nothing arrived in time.
    Timeout,
}

impl Frame {
    /// The JSON value of a data frame; panics on anything else.
    pub fn value(self) -> Value {
        match self {
            Frame::Text(v) | Frame::Binary(v) => v,
            other => panic!("expected a data frame, got {other:?}"),
        }
    }
}

/// One socket to the server, as one client of one project.
pub struct WsClient {
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    headers: Value,
}

impl WsClient {
    /// Connects to `address` (`host:port` of the websocket transport) with a
    /// fresh Client-ID and project `test-project`.
    pub fn connect(address: &str) -> Self {
        let (socket, _) =
            tungstenite::connect(format!("ws://{address}/")).expect("websocket handshake");
        Self {
            socket,
            headers: json!({
                "Client-ID": uuid::Uuid::new_v4().to_string(),
                "X-Project-ID": "test-project",
            }),
        }
    }

    /// The headers sent with every request.
    pub fn headers(&self) -> &Value {
        &self.headers
    }

    /// Replaces one request header (e.g. the project).
    pub fn set_header(&mut self, name: &str, value: &str) {
        self.headers[name] = json!(value);
    }

    fn frame(&self, action: &str, body: Value) -> Value {
        json!({"action": action, "headers": self.headers, "body": body})
    }

    /// Sends a raw frame.
    pub fn send_raw(&mut self, message: Message) {
        self.socket.send(message).expect("send frame");
    }

    /// Sends an action as a JSON text frame and returns the reply envelope.
    pub fn request(&mut self, action: &str, body: Value) -> Value {
        let frame = self.frame(action, body);
        self.send_raw(Message::text(frame.to_string()));
        self.reply()
    }

    /// Sends an action as a MsgPack binary frame and returns the reply
    /// envelope (which must be binary too).
    pub fn request_msgpack(&mut self, action: &str, body: Value) -> Value {
        let frame = self.frame(action, body);
        let bytes = rmp_serde::to_vec_named(&frame).expect("msgpack");
        self.send_raw(Message::binary(bytes));
        match self.recv(Duration::from_secs(10)) {
            Frame::Binary(value) => value,
            other => panic!("expected a binary reply, got {other:?}"),
        }
    }

    /// How long the next read waits.
    fn read_timeout(&mut self, timeout: Duration) {
        if let MaybeTlsStream::Plain(stream) = self.socket.get_mut() {
            stream.set_read_timeout(Some(timeout)).expect("timeout");
        }
    }

    /// The next binary frame's bytes, undecoded (for replies that echo
    /// MessagePack values JSON has no room for).
    pub fn recv_binary(&mut self, timeout: Duration) -> Vec<u8> {
        self.read_timeout(timeout);
        loop {
            match self.socket.read().expect("a frame") {
                Message::Binary(bytes) => return bytes.to_vec(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a binary frame, got {other:?}"),
            }
        }
    }

    /// The next reply envelope (a text frame that has a `request` key),
    /// skipping pushed notifications, which have none.
    pub fn reply(&mut self) -> Value {
        loop {
            match self.recv(Duration::from_secs(10)) {
                Frame::Text(value) | Frame::Binary(value) if value.get("request").is_some() => {
                    return value
                }
                Frame::Text(_) | Frame::Binary(_) => continue,
                other => panic!("expected a reply, got {other:?}"),
            }
        }
    }

    /// The next frame, waiting at most `timeout`.
    pub fn recv(&mut self, timeout: Duration) -> Frame {
        self.read_timeout(timeout);
        loop {
            match self.socket.read() {
                Ok(Message::Text(text)) => {
                    return Frame::Text(serde_json::from_str(text.as_str()).expect("JSON frame"))
                }
                Ok(Message::Binary(bytes)) => {
                    return Frame::Binary(rmp_serde::from_slice(&bytes).expect("MsgPack frame"))
                }
                Ok(Message::Close(frame)) => return closed(frame),
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Frame::Timeout
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Frame::Closed(1006, String::new())
                }
                Err(e) => return Frame::Closed(1006, e.to_string()),
            }
        }
    }

    /// Closes the socket and waits for the server's close.
    pub fn close(mut self) {
        let _ = self.socket.close(None);
        for _ in 0..100 {
            if matches!(
                self.recv(Duration::from_secs(5)),
                Frame::Closed(..) | Frame::Timeout
            ) {
                break;
            }
        }
    }
}

fn closed(frame: Option<CloseFrame>) -> Frame {
    match frame {
        Some(frame) => Frame::Closed(frame.code.into(), frame.reason.to_string()),
        None => Frame::Closed(1005, String::new()),
    }
}
