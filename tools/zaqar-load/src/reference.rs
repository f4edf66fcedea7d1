//! A bare hyper HTTP/1.1 server that answers Zaqar-shaped requests with
//! canned answers of the same size and does no work: the ceiling the real
//! server's HTTP figures are compared with ("what hyper alone does on
//! loopback").
//!
//! - `POST …/messages` → 201 with `Location` and `{"resources": [...]}` for
//!   the queue in the path (the size of a one-message post answer);
//! - `POST …/claims` → 204 (nothing to claim);
//! - `PUT` → 201, `DELETE` → 204, `GET` → 200 `{"messages": [], "links": []}`.
//!
//! The request body is read in full (a real server must), never parsed.
//!
//! Served with a [`SyncLog`] ([`serve_durable`]), it is the durable floor:
//! each post's body, each claim's and each delete's path are on disk
//! (written and `fdatasync`ed by the log's thread, in groups) before the
//! answer goes out; and a claim (`POST …/claims?limit=N`) is answered with
//! N canned messages of [`CLAIMED_BODY_BYTES`] each, so that consumers have
//! something to delete: the floor of a durable consume.

use std::{
    convert::Infallible,
    fmt::Write as _,
    future::Future,
    net::SocketAddr,
    sync::atomic::{AtomicU64, Ordering},
};

use http_body_util::{BodyExt, Full};
use hyper::{
    body::{Bytes, Incoming},
    header::{HeaderValue, CONTENT_TYPE, LOCATION},
    server::conn::http1,
    service::service_fn,
    Method, Request, Response, StatusCode,
};
use hyper_util::rt::TokioIo;
use tokio::{
    net::{TcpListener, TcpStream},
    task::JoinSet,
};

use crate::sync_log::SyncLog;

/// A fixed message id of the length of the server's ids (24 characters).
pub(crate) const MESSAGE_ID: &str = "000000000000000100000000";
/// A request-id header like the one the server sends, constant here.
const REQUEST_ID: &str = "req-00000000-0000-0000-0000-000000000000";
/// The body of each message the durable floor hands out in a claim, the
/// size `bench/http-floor.sh` posts.
pub const CLAIMED_BODY_BYTES: usize = 148;
/// The most messages one claim hands out (Zaqar's default maximum).
const CLAIM_LIMIT_MAX: usize = 20;

/// The body of every claimed message: [`CLAIMED_BODY_BYTES`] of `x`, built
/// once rather than per claim.
static CLAIMED_TEXT: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| "x".repeat(CLAIMED_BODY_BYTES));

/// Numbers the durable floor's claims and claimed messages, so that every
/// id it hands out is new.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Binds the listener (port 0 picks a free one).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves until `shutdown` resolves.
pub async fn serve(listener: TcpListener, shutdown: impl Future<Output = ()>) {
    serve_with(listener, shutdown, None).await;
}

/// Serves until `shutdown` resolves, answering each post, claim and delete
/// only once `log` has synced it.
pub async fn serve_durable(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    log: SyncLog,
) {
    serve_with(listener, shutdown, Some(log)).await;
}

async fn serve_with(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    log: Option<SyncLog>,
) {
    accept_until(listener, shutdown, move |stream| {
        let log = log.clone();
        async move {
            let service = service_fn(move |request| answer(request, log.clone()));
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        }
    })
    .await;
}

/// Accepts connections (no Nagle delay) and serves each with `serve` in a
/// task of its own until `shutdown` resolves; then drops them all.
pub(crate) async fn accept_until<S, F>(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    serve: S,
) where
    S: Fn(TcpStream) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                connections.spawn(serve(stream));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = &mut shutdown => break,
        }
    }
    connections.abort_all();
}

async fn answer(
    request: Request<Incoming>,
    log: Option<SyncLog>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    // Read the whole body, as any server must.
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path();
    let durable = log.is_some();
    if let Some(log) = log {
        match parts.method {
            Method::POST if path.ends_with("/messages") => log.append(&body).await,
            Method::POST | Method::DELETE => {
                let target = parts.uri.path_and_query().map_or(path, |p| p.as_str());
                log.append(target.as_bytes()).await;
            }
            _ => {}
        }
    }
    let (status, location, body) = match parts.method {
        Method::POST if durable && path.ends_with("/claims") => {
            let limit = claim_limit(parts.uri.query());
            let (location, body) = claim_answer(path, limit);
            (StatusCode::CREATED, Some(location), Bytes::from(body))
        }
        Method::POST if path.ends_with("/messages") => {
            let queue = path
                .trim_end_matches("/messages")
                .rsplit('/')
                .next()
                .unwrap_or("q");
            let body = format!("{{\"resources\":[\"/v2/queues/{queue}/messages/{MESSAGE_ID}\"]}}");
            (
                StatusCode::CREATED,
                Some(format!("{path}?ids={MESSAGE_ID}")),
                Bytes::from(body),
            )
        }
        Method::POST | Method::DELETE => (StatusCode::NO_CONTENT, None, Bytes::new()),
        Method::PUT => (StatusCode::CREATED, Some(path.to_string()), Bytes::new()),
        _ => (
            StatusCode::OK,
            None,
            Bytes::from_static(br#"{"messages":[],"links":[]}"#),
        ),
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if status != StatusCode::NO_CONTENT {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    if let Some(location) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(LOCATION, location);
    }
    headers.insert(
        "x-openstack-request-id",
        HeaderValue::from_static(REQUEST_ID),
    );
    Ok(response)
}

/// `limit` from a claim's query: 10 when absent, at most [`CLAIM_LIMIT_MAX`].
fn claim_limit(query: Option<&str>) -> usize {
    query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("limit="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(10)
        .clamp(1, CLAIM_LIMIT_MAX)
}

/// The `Location` and body of a claim of `limit` new messages, shaped as
/// Zaqar's claim answer (each message with its body, age, href carrying
/// the claim id, ttl, checksum and id).
fn claim_answer(claims_path: &str, limit: usize) -> (String, String) {
    let queue_path = claims_path.trim_end_matches("/claims");
    let claim = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let claim_id = format!("{claim:024x}");
    let text = CLAIMED_TEXT.as_str();
    let mut body = String::from("{\"messages\":[");
    for n in 0..limit {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        if n > 0 {
            body.push(',');
        }
        let _ = write!(
            body,
            "{{\"body\":\"{text}\",\"age\":0,\"href\":\"{queue_path}/messages/{id:024x}?claim_id={claim_id}\",\
             \"ttl\":300,\"checksum\":\"MD5:00000000000000000000000000000000\",\"id\":\"{id:024x}\"}}"
        );
    }
    body.push_str("]}");
    (format!("{queue_path}/claims/{claim_id}"), body)
}
