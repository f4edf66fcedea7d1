//! One worker's connection to the server: HTTP/1.1 keep-alive (hyper) or a
//! WebSocket (tokio-tungstenite, JSON text or MessagePack binary frames),
//! with the few Zaqar operations the roles need.

use std::{net::SocketAddr, time::Duration};

use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::{
    body::Bytes,
    client::conn::http1::{self, SendRequest},
    header::{HeaderValue, CONNECTION, CONTENT_TYPE, HOST},
    Method, Request, StatusCode, Uri, Version,
};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::{net::TcpStream, task::JoinHandle};
use tokio_tungstenite::{tungstenite::Message, WebSocketStream};

use crate::stats::Failure;

/// Where the load goes.
#[derive(Clone, Debug)]
pub struct Target {
    /// As the user gave it, for messages.
    pub url: String,
    pub kind: TargetKind,
    /// `host:port` as given (the HTTP `Host` header).
    pub authority: String,
    /// The resolved socket address every connection goes to.
    pub addr: SocketAddr,
    /// Path prefix before `/v2` (empty, or `/something` without a trailing slash).
    pub base_path: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    Http,
    WebSocket { msgpack: bool },
}

impl Target {
    /// Parses `http://host:port[/prefix]` or `ws://host:port[/path]` and
    /// resolves the host. Only plain-text schemes are supported.
    pub async fn resolve(url: &str, msgpack: bool) -> Result<Target, String> {
        let uri: Uri = url
            .parse()
            .map_err(|error| format!("invalid URL {url:?}: {error}"))?;
        let kind = match uri.scheme_str() {
            Some("http") => TargetKind::Http,
            Some("ws") => TargetKind::WebSocket { msgpack },
            Some("https") | Some("wss") => {
                return Err(format!("{url}: TLS is not supported; use http:// or ws://"))
            }
            _ => return Err(format!("{url}: expected an http:// or ws:// URL")),
        };
        let host = uri
            .host()
            .ok_or_else(|| format!("{url}: the URL names no host"))?;
        let default_port = 80;
        let port = uri.port_u16().unwrap_or(default_port);
        let host_for_lookup = host.trim_start_matches('[').trim_end_matches(']');
        let addr = tokio::net::lookup_host((host_for_lookup, port))
            .await
            .map_err(|error| format!("{url}: cannot resolve {host}: {error}"))?
            .next()
            .ok_or_else(|| format!("{url}: {host} resolves to no address"))?;
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_else(|| format!("{host}:{port}"));
        let base_path = uri.path().trim_end_matches('/').to_string();
        Ok(Target {
            url: url.to_string(),
            kind,
            authority,
            addr,
            base_path,
        })
    }
}

/// Who the requests come from.
#[derive(Clone, Debug)]
pub struct Identity {
    pub client_id: String,
    pub project: String,
}

/// A claim: its id and the ids of the messages it holds.
#[derive(Clone, Debug, Default)]
pub struct Claimed {
    pub claim_id: String,
    pub message_ids: Vec<String>,
}

/// One worker's connection.
// One per worker, never moved in a hot path: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum Client {
    Http(HttpClient),
    Ws(WsClient),
}

impl Client {
    pub fn new(target: &Target, identity: &Identity, timeout: Duration) -> Client {
        match target.kind {
            TargetKind::Http => Client::Http(HttpClient::new(target, identity, timeout)),
            TargetKind::WebSocket { msgpack } => {
                Client::Ws(WsClient::new(target, identity, timeout, msgpack))
            }
        }
    }

    /// Opens the connection now (the first request would otherwise do it).
    pub async fn connect(&mut self) -> Result<(), Failure> {
        match self {
            Client::Http(client) => client.connect().await,
            Client::Ws(client) => client.connect().await,
        }
    }

    /// Creates a queue (setup; 201 and 204 are both fine).
    pub async fn create_queue(&mut self, queue: &str) -> Result<(), Failure> {
        match self {
            Client::Http(client) => {
                let path = client.queue_path(queue, "");
                client.request(Method::PUT, &path, None).await.map(|_| ())
            }
            Client::Ws(client) => client
                .call("queue_create", json!({ "queue_name": queue }))
                .await
                .map(|_| ()),
        }
    }

    /// Deletes a queue and its messages (teardown).
    pub async fn delete_queue(&mut self, queue: &str) -> Result<(), Failure> {
        match self {
            Client::Http(client) => {
                let path = client.queue_path(queue, "");
                client
                    .request(Method::DELETE, &path, None)
                    .await
                    .map(|_| ())
            }
            Client::Ws(client) => client
                .call("queue_delete", json!({ "queue_name": queue }))
                .await
                .map(|_| ()),
        }
    }

    /// Posts messages. `http_body` is the whole HTTP request body
    /// (`{"messages": [...]}`), `ws_messages` the same list for a frame.
    pub async fn post(
        &mut self,
        queue: &str,
        http_body: &Bytes,
        ws_messages: &Value,
    ) -> Result<(), Failure> {
        match self {
            Client::Http(client) => {
                let path = client.queue_path(queue, "/messages");
                client
                    .request(Method::POST, &path, Some(http_body.clone()))
                    .await
                    .map(|_| ())
            }
            Client::Ws(client) => client.post(queue, ws_messages).await,
        }
    }

    /// Claims up to `limit` messages; `None` when there was nothing to claim.
    pub async fn claim(
        &mut self,
        queue: &str,
        limit: usize,
        ttl: u64,
        grace: u64,
    ) -> Result<Option<Claimed>, Failure> {
        match self {
            Client::Http(client) => {
                let path = client.queue_path(queue, &format!("/claims?limit={limit}"));
                let body = Bytes::from(format!("{{\"ttl\": {ttl}, \"grace\": {grace}}}"));
                let (status, body) = client.request(Method::POST, &path, Some(body)).await?;
                if status == StatusCode::NO_CONTENT {
                    return Ok(None);
                }
                parse_http_claim(&body).map(Some)
            }
            Client::Ws(client) => {
                let (status, body) = client
                    .call(
                        "claim_create",
                        json!({ "queue_name": queue, "limit": limit, "ttl": ttl, "grace": grace }),
                    )
                    .await?;
                if status == 204 {
                    return Ok(None);
                }
                parse_ws_claim(&body).map(Some)
            }
        }
    }

    /// Deletes one claimed message.
    pub async fn delete(
        &mut self,
        queue: &str,
        message_id: &str,
        claim_id: &str,
    ) -> Result<(), Failure> {
        match self {
            Client::Http(client) => {
                let path = client.queue_path(
                    queue,
                    &format!("/messages/{message_id}?claim_id={claim_id}"),
                );
                client
                    .request(Method::DELETE, &path, None)
                    .await
                    .map(|_| ())
            }
            Client::Ws(client) => client
                .call(
                    "message_delete",
                    json!({ "queue_name": queue, "message_id": message_id, "claim_id": claim_id }),
                )
                .await
                .map(|_| ()),
        }
    }

    /// Deletes several messages in one request.
    pub async fn delete_many(
        &mut self,
        queue: &str,
        message_ids: &[String],
    ) -> Result<(), Failure> {
        match self {
            Client::Http(client) => {
                let path =
                    client.queue_path(queue, &format!("/messages?ids={}", message_ids.join(",")));
                client
                    .request(Method::DELETE, &path, None)
                    .await
                    .map(|_| ())
            }
            Client::Ws(client) => client
                .call(
                    "message_delete_many",
                    json!({ "queue_name": queue, "message_ids": message_ids }),
                )
                .await
                .map(|_| ()),
        }
    }

    /// Lists the first page of a queue (echo on); answers how many messages it held.
    pub async fn list(&mut self, queue: &str, limit: usize) -> Result<u64, Failure> {
        match self {
            Client::Http(client) => {
                let path = client.queue_path(queue, &format!("/messages?limit={limit}&echo=true"));
                let (_, body) = client.request(Method::GET, &path, None).await?;
                count_messages(&body)
            }
            Client::Ws(client) => {
                let (_, body) = client
                    .call(
                        "message_list",
                        json!({ "queue_name": queue, "limit": limit, "echo": true }),
                    )
                    .await?;
                match body.get("messages").and_then(Value::as_array) {
                    Some(messages) => Ok(messages.len() as u64),
                    None => Err(Failure::BadResponse(
                        "message_list answer without a messages array".into(),
                    )),
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct HttpClaimBody {
    messages: Vec<HttpClaimedMessage>,
}

#[derive(Deserialize)]
struct HttpClaimedMessage {
    id: String,
    href: String,
}

fn parse_http_claim(body: &[u8]) -> Result<Claimed, Failure> {
    let parsed: HttpClaimBody = serde_json::from_slice(body)
        .map_err(|error| Failure::BadResponse(format!("claim body: {error}")))?;
    let claim_id = parsed
        .messages
        .first()
        .and_then(|message| message.href.split_once("claim_id="))
        .map(|(_, rest)| rest.split('&').next().unwrap_or(rest).to_string())
        .ok_or_else(|| Failure::BadResponse("claimed message href without claim_id".into()))?;
    Ok(Claimed {
        claim_id,
        message_ids: parsed.messages.into_iter().map(|m| m.id).collect(),
    })
}

fn parse_ws_claim(body: &Value) -> Result<Claimed, Failure> {
    let claim_id = body
        .get("claim_id")
        .and_then(Value::as_str)
        .ok_or_else(|| Failure::BadResponse("claim_create answer without claim_id".into()))?;
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| Failure::BadResponse("claim_create answer without messages".into()))?;
    let message_ids = messages
        .iter()
        .map(|message| {
            message
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| Failure::BadResponse("claimed message without id".into()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Claimed {
        claim_id: claim_id.to_string(),
        message_ids,
    })
}

#[derive(Deserialize)]
struct ListBody {
    messages: Vec<serde::de::IgnoredAny>,
}

fn count_messages(body: &[u8]) -> Result<u64, Failure> {
    serde_json::from_slice::<ListBody>(body)
        .map(|list| list.messages.len() as u64)
        .map_err(|error| Failure::BadResponse(format!("list body: {error}")))
}

/// How many times a connection is attempted before the server is declared down.
const CONNECT_ATTEMPTS: u32 = 3;

/// Opens a TCP connection. Refused (or otherwise failed) connections are
/// retried a few times and then reported as [`Failure::Connect`], which ends
/// the run; a connection attempt that gets no answer in time (a server whose
/// listen backlog is full) is only a [`Failure::Timeout`].
async fn connect_tcp(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, Failure> {
    let mut last = String::new();
    for attempt in 0..CONNECT_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
        }
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(error)) => last = error.to_string(),
            Err(_) => return Err(Failure::Timeout),
        }
    }
    Err(Failure::Connect(last))
}

/// HTTP/1.1 over one kept-alive connection; reconnects when the server
/// closes it (an HTTP/1.0 server such as wsgiref closes after each answer).
pub struct HttpClient {
    addr: SocketAddr,
    host: HeaderValue,
    base_path: String,
    client_id: HeaderValue,
    project: HeaderValue,
    timeout: Duration,
    sender: Option<SendRequest<Full<Bytes>>>,
    connection: Option<JoinHandle<()>>,
}

impl HttpClient {
    fn new(target: &Target, identity: &Identity, timeout: Duration) -> HttpClient {
        HttpClient {
            addr: target.addr,
            host: HeaderValue::from_str(&target.authority)
                .unwrap_or_else(|_| HeaderValue::from_static("localhost")),
            base_path: target.base_path.clone(),
            client_id: HeaderValue::from_str(&identity.client_id)
                .unwrap_or_else(|_| HeaderValue::from_static("invalid")),
            project: HeaderValue::from_str(&identity.project)
                .unwrap_or_else(|_| HeaderValue::from_static("invalid")),
            timeout,
            sender: None,
            connection: None,
        }
    }

    fn queue_path(&self, queue: &str, rest: &str) -> String {
        format!("{}/v2/queues/{queue}{rest}", self.base_path)
    }

    fn disconnect(&mut self) {
        self.sender = None;
        if let Some(connection) = self.connection.take() {
            connection.abort();
        }
    }

    async fn connect(&mut self) -> Result<(), Failure> {
        self.disconnect();
        let stream = connect_tcp(self.addr, self.timeout).await?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| Failure::Connect(error.to_string()))?;
        self.connection = Some(tokio::spawn(async move {
            let _ = connection.await;
        }));
        self.sender = Some(sender);
        Ok(())
    }

    /// Sends one request; a 2xx answers its status and body, anything else is a [`Failure`].
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes), Failure> {
        if self.sender.as_ref().is_none_or(SendRequest::is_closed) {
            self.connect().await?;
        }
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.host.clone())
            .header("Client-ID", self.client_id.clone())
            .header("X-Project-ID", self.project.clone());
        let body = match body {
            Some(body) => {
                builder =
                    builder.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                body
            }
            None => Bytes::new(),
        };
        let request = builder
            .body(Full::new(body))
            .map_err(|error| Failure::BadResponse(format!("cannot build request: {error}")))?;
        let Some(sender) = self.sender.as_mut() else {
            return Err(Failure::Io("no connection".into()));
        };
        let exchange = async {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok::<_, hyper::Error>((parts, body))
        };
        let (parts, body) = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) => {
                self.disconnect();
                return Err(Failure::Io(error.to_string()));
            }
            Err(_) => {
                self.disconnect();
                return Err(Failure::Timeout);
            }
        };
        let closes = parts
            .headers
            .get(CONNECTION)
            .and_then(|value| value.to_str().ok())
            .map(|value| value.eq_ignore_ascii_case("close"))
            .unwrap_or(parts.version == Version::HTTP_10);
        if closes {
            self.disconnect();
        }
        if !parts.status.is_success() {
            return Err(Failure::Status(parts.status.as_u16()));
        }
        Ok((parts.status, body))
    }
}

impl Drop for HttpClient {
    fn drop(&mut self) {
        self.disconnect();
    }
}

/// Zaqar's WebSocket protocol: one request frame, one answer frame.
pub struct WsClient {
    url: String,
    addr: SocketAddr,
    headers: Value,
    timeout: Duration,
    msgpack: bool,
    stream: Option<WebSocketStream<TcpStream>>,
    /// The last post frame, encoded, and its queue: a producer posts the
    /// same messages to the same queue each time, so the frame is built
    /// once, not per post (the client's cost is part of every figure).
    post_frame: Option<(String, Message)>,
}

/// What the load tool reads of an answer frame: whether it echoes a request
/// (pushed frames do not), its status and its body. The echoed request,
/// which repeats the whole posted frame, is skipped, not built.
#[derive(Deserialize)]
struct AnswerFrame {
    request: Option<serde::de::IgnoredAny>,
    headers: Option<AnswerHeaders>,
    #[serde(default)]
    body: Value,
}

#[derive(Deserialize)]
struct AnswerHeaders {
    status: Option<u64>,
}

impl WsClient {
    fn new(target: &Target, identity: &Identity, timeout: Duration, msgpack: bool) -> WsClient {
        WsClient {
            url: target.url.clone(),
            addr: target.addr,
            headers: json!({ "Client-ID": identity.client_id, "X-Project-ID": identity.project }),
            timeout,
            msgpack,
            stream: None,
            post_frame: None,
        }
    }

    /// `message_post` of `messages` to `queue`.
    async fn post(&mut self, queue: &str, messages: &Value) -> Result<(), Failure> {
        let frame = match &self.post_frame {
            Some((to, frame)) if to == queue => frame.clone(),
            _ => {
                let frame = self.encode(
                    "message_post",
                    json!({ "queue_name": queue, "messages": messages }),
                )?;
                self.post_frame = Some((queue.to_string(), frame.clone()));
                frame
            }
        };
        self.exchange(frame).await.map(|_| ())
    }

    fn encode(&self, action: &str, body: Value) -> Result<Message, Failure> {
        let frame = json!({ "action": action, "headers": self.headers, "body": body });
        Ok(if self.msgpack {
            let bytes = rmp_serde::to_vec_named(&frame)
                .map_err(|error| Failure::BadResponse(format!("cannot encode: {error}")))?;
            Message::Binary(bytes.into())
        } else {
            Message::Text(frame.to_string().into())
        })
    }

    async fn connect(&mut self) -> Result<(), Failure> {
        self.stream = None;
        let stream = connect_tcp(self.addr, self.timeout).await?;
        let handshake = tokio_tungstenite::client_async(self.url.as_str(), stream);
        match tokio::time::timeout(self.timeout, handshake).await {
            Ok(Ok((stream, _response))) => {
                self.stream = Some(stream);
                Ok(())
            }
            Ok(Err(error)) => Err(Failure::Connect(format!("WebSocket handshake: {error}"))),
            Err(_) => Err(Failure::Connect("WebSocket handshake timed out".into())),
        }
    }

    /// Sends one action; a 2xx answers its status and body.
    pub async fn call(&mut self, action: &str, body: Value) -> Result<(u16, Value), Failure> {
        let message = self.encode(action, body)?;
        self.exchange(message).await
    }

    /// Sends one encoded frame; a 2xx answers its status and body.
    async fn exchange(&mut self, message: Message) -> Result<(u16, Value), Failure> {
        if self.stream.is_none() {
            self.connect().await?;
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(Failure::Io("no connection".into()));
        };
        let exchange = async {
            stream
                .send(message)
                .await
                .map_err(|e| Failure::Io(e.to_string()))?;
            loop {
                let frame = match stream.next().await {
                    Some(Ok(frame)) => frame,
                    Some(Err(error)) => return Err(Failure::Io(error.to_string())),
                    None => return Err(Failure::Io("connection closed by the server".into())),
                };
                let answer: AnswerFrame = match frame {
                    Message::Text(text) => serde_json::from_str(text.as_str()).map_err(|e| {
                        Failure::BadResponse(format!("undecodable JSON frame: {e}"))
                    })?,
                    Message::Binary(bytes) => rmp_serde::from_slice(&bytes).map_err(|e| {
                        Failure::BadResponse(format!("undecodable MessagePack frame: {e}"))
                    })?,
                    Message::Close(close) => {
                        return Err(Failure::Io(format!(
                            "connection closed by the server{}",
                            close
                                .map(|c| format!(" ({} {})", c.code, c.reason))
                                .unwrap_or_default()
                        )))
                    }
                    _ => continue,
                };
                // A pushed frame carries no request echo: skip it.
                if answer.request.is_none() {
                    continue;
                }
                return Ok(answer);
            }
        };
        let answer = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(failure)) => {
                if !matches!(failure, Failure::BadResponse(_)) {
                    self.stream = None;
                }
                return Err(failure);
            }
            Err(_) => {
                self.stream = None;
                return Err(Failure::Timeout);
            }
        };
        let status = answer
            .headers
            .and_then(|headers| headers.status)
            .and_then(|status| u16::try_from(status).ok())
            .ok_or_else(|| Failure::BadResponse("answer frame without headers.status".into()))?;
        if !(200..300).contains(&status) {
            return Err(Failure::Status(status));
        }
        Ok((status, answer.body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_http_claim() {
        let body = br#"{"messages": [{"id": "m1", "href": "/v2/queues/q/messages/m1?claim_id=c9", "ttl": 300, "age": 0, "body": {"a": 1}}, {"id": "m2", "href": "/v2/queues/q/messages/m2?claim_id=c9", "ttl": 300, "age": 0, "body": 2}]}"#;
        let claimed = parse_http_claim(body).unwrap();
        assert_eq!(claimed.claim_id, "c9");
        assert_eq!(claimed.message_ids, vec!["m1", "m2"]);
    }

    #[test]
    fn parses_a_ws_claim() {
        let body = json!({"claim_id": "c1", "messages": [{"id": "a", "claim_id": "c1", "ttl": 1, "age": 0, "body": 1}]});
        let claimed = parse_ws_claim(&body).unwrap();
        assert_eq!(claimed.claim_id, "c1");
        assert_eq!(claimed.message_ids, vec!["a"]);
    }

    #[tokio::test]
    async fn resolves_targets() {
        let target = Target::resolve("http://127.0.0.1:8888/", false)
            .await
            .unwrap();
        assert_eq!(target.kind, TargetKind::Http);
        assert_eq!(target.authority, "127.0.0.1:8888");
        assert_eq!(target.base_path, "");
        let target = Target::resolve("ws://localhost:9000", true).await.unwrap();
        assert_eq!(target.kind, TargetKind::WebSocket { msgpack: true });
        assert_eq!(target.addr.port(), 9000);
        assert!(Target::resolve("https://127.0.0.1", false).await.is_err());
        assert!(Target::resolve("not a url", false).await.is_err());
    }
}
