//! The WebSocket side of the reference server (`zaqar-load reference-server
//! --websocket`): Zaqar-shaped answers to Zaqar's WebSocket frames, JSON or
//! MessagePack, with as little work as a server that must know each frame's
//! action can do. With a [`SyncLog`] it is the durable floor of a WebSocket
//! publish: each `message_post` frame is written and `fdatasync`ed (in
//! groups, by the log's thread) before its answer.
//!
//! - `message_post` → 201 with one message id;
//! - `claim_create` → 204 (nothing to claim: this floor is for publishing);
//! - any other action → 204.
//!
//! Each answer echoes the request frame as Zaqar's do, in the request's
//! encoding.

use std::{borrow::Cow, future::Future};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    reference::{self, MESSAGE_ID},
    sync_log::SyncLog,
};

/// What the floor reads of a frame: its action, nothing else.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(borrow)]
    action: Cow<'a, str>,
}

/// Serves WebSocket connections until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    log: Option<SyncLog>,
) {
    reference::accept_until(listener, shutdown, move |stream| {
        serve_connection(stream, log.clone())
    })
    .await;
}

async fn serve_connection(stream: TcpStream, log: Option<SyncLog>) {
    let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    while let Some(Ok(frame)) = socket.next().await {
        let answer = match frame {
            Message::Text(text) => {
                let action = serde_json::from_str::<Frame>(text.as_str()).ok();
                let status = status_of(action.as_ref(), text.as_bytes(), log.as_ref()).await;
                Message::Text(json_answer(text.as_str(), status).into())
            }
            Message::Binary(bytes) => {
                let action = rmp_serde::from_slice::<Frame>(&bytes).ok();
                let status = status_of(action.as_ref(), &bytes, log.as_ref()).await;
                Message::Binary(msgpack_answer(&bytes, status).into())
            }
            Message::Close(_) => break,
            _ => continue,
        };
        if socket.send(answer).await.is_err() {
            break;
        }
    }
}

/// The answer's status; a post is logged (and synced) first.
async fn status_of(frame: Option<&Frame<'_>>, raw: &[u8], log: Option<&SyncLog>) -> u16 {
    match frame.map(|f| f.action.as_ref()) {
        Some("message_post") => {
            if let Some(log) = log {
                log.append(raw).await;
            }
            201
        }
        Some(_) => 204,
        None => 400,
    }
}

fn json_answer(request: &str, status: u16) -> String {
    let body = if status == 201 {
        format!(r#"{{"message_ids":["{MESSAGE_ID}"]}}"#)
    } else {
        "{}".to_string()
    };
    format!(r#"{{"request":{request},"headers":{{"status":{status}}},"body":{body}}}"#)
}

/// The same answer as [`json_answer`], in MessagePack: a map of the request
/// (its bytes as they came), the headers and the body.
fn msgpack_answer(request: &[u8], status: u16) -> Vec<u8> {
    fn fixstr(out: &mut Vec<u8>, text: &str) {
        // Every string written here is shorter than 32 bytes: a fixstr.
        out.push(0xa0 | text.len() as u8);
        out.extend_from_slice(text.as_bytes());
    }
    let mut out = Vec::with_capacity(request.len() + 64);
    out.push(0x83);
    fixstr(&mut out, "request");
    out.extend_from_slice(request);
    fixstr(&mut out, "headers");
    out.push(0x81);
    fixstr(&mut out, "status");
    out.push(0xcd);
    out.extend_from_slice(&status.to_be_bytes());
    fixstr(&mut out, "body");
    if status == 201 {
        out.push(0x81);
        fixstr(&mut out, "message_ids");
        out.push(0x91);
        fixstr(&mut out, MESSAGE_ID);
    } else {
        out.push(0x80);
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    #[test]
    fn both_encodings_carry_the_same_answer() {
        let request = json!({"action": "message_post", "headers": {}, "body": {"queue_name": "q"}});
        let from_json: Value =
            serde_json::from_str(&json_answer(&request.to_string(), 201)).unwrap();
        let packed = rmp_serde::to_vec_named(&request).unwrap();
        let from_msgpack: Value = rmp_serde::from_slice(&msgpack_answer(&packed, 201)).unwrap();
        assert_eq!(from_json, from_msgpack);
        assert_eq!(from_json["request"], request);
        assert_eq!(from_json["headers"]["status"], 201);
        assert_eq!(from_json["body"]["message_ids"][0], MESSAGE_ID);
        let empty: Value = rmp_serde::from_slice(&msgpack_answer(&packed, 204)).unwrap();
        assert_eq!(empty["body"], json!({}));
    }
}
