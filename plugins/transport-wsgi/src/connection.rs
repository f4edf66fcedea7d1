//! One HTTP connection: requests in, host answers out.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full, StreamBody};
use hyper::{
    body::{Bytes, Frame, Incoming},
    header::{HeaderName, HeaderValue},
    server::conn::http1,
    service::service_fn,
    Request, Response, StatusCode,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use plugin_api::{
    transport::{
        ApiRequest, BodyState, Header, HostApi, HostApiBox, Protocol, ResponseStream,
        ResponseStreamBox, ServedResponse,
    },
    types::{RString, RVec},
    LogLevel,
};
use tokio::{net::TcpStream, sync::watch};

use crate::{
    body::{receive_body, BodyBudget, Received},
    config::{WsgiConfig, HYPER_DEFAULT_MAX_HEADERS},
    head_clock::{HeadClock, HeadWatchedIo},
    listener::Log,
    repoll::Repoll,
};

/// A response body: whole, or streamed (server-sent events).
type Body = UnsyncBoxBody<Bytes, Infallible>;

/// What every connection of the transport shares.
pub struct Shared {
    pub host: HostApiBox,
    pub config: WsgiConfig,
    pub budget: BodyBudget,
    pub log: Log,
}

/// Serves one connection until the client closes it, it idles out, its
/// headers or body are too slow, or the transport stops (then the request
/// in flight finishes first).
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let connection_id = RString::from(uuid::Uuid::new_v4().to_string());
    let peer_text = RString::from(peer.to_string());
    let clock = HeadClock::new();
    let service_clock = clock.clone();
    let service_shared = shared.clone();
    let service = service_fn(move |request: Request<Incoming>| {
        let shared = service_shared.clone();
        let peer = peer_text.clone();
        let connection_id = connection_id.clone();
        let clock = service_clock.clone();
        async move {
            let _in_request = clock.request_started();
            Ok::<_, Infallible>(answer(request, &shared, peer, connection_id).await)
        }
    });
    let config = &shared.config;
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(true)
        // A client may shut its sending side once its request is out; by
        // default hyper then drops a request whose answer is not ready yet
        // and closes without one.
        .half_close(true)
        .timer(TokioTimer::new())
        // hyper's header timer runs from the moment it waits for a request,
        // so it is the keep-alive idle limit; `header_timeout`, from the
        // first byte, is enforced by the head clock.
        .header_read_timeout(Duration::from_secs(config.idle_timeout))
        .max_buf_size(config.max_header_size);
    // hyper enforces its default of 100 on its own; told a limit, even
    // that one, it fills two arrays of that many slots per request
    // instead of using its fixed ones (~1,700 instructions per request).
    if config.max_headers != HYPER_DEFAULT_MAX_HEADERS {
        builder.max_headers(config.max_headers);
    }
    // Boxed once per connection, to be moved into the re-poller (see
    // `crate::repoll`).
    let mut connection = Repoll::new(Box::pin(builder.serve_connection(
        TokioIo::new(HeadWatchedIo::new(stream, clock.clone())),
        service,
    )));
    let header_timeout = Duration::from_secs(config.header_timeout);
    tokio::select! {
        _ = &mut connection => {}
        _ = clock.overdue(header_timeout) => {
            (shared.log)(LogLevel::DEBUG, &format!(
                "closed the connection of {peer}: headers not received within {} s",
                header_timeout.as_secs()
            ));
        }
        _ = stopped.changed() => {
            connection.get_mut().as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

async fn answer(
    request: Request<Incoming>,
    shared: &Shared,
    peer: RString,
    connection: RString,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let headers: RVec<Header> = parts
        .headers
        .iter()
        .filter_map(|(name, value)| {
            // Header values that are not visible ASCII/UTF-8 cannot be valid
            // for any header Zaqar reads; drop them rather than guess.
            Some(Header {
                name: name.as_str().into(),
                value: value.to_str().ok()?.into(),
            })
        })
        .collect();
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let config = &shared.config;
    let received = receive_body(
        body,
        declared,
        config.max_body_size,
        &shared.budget,
        Duration::from_secs(config.body_timeout),
    )
    .await;
    // Held until the host answered: the body's memory counts until then.
    let (body, state, _reservation) = match received {
        Received::Complete(body, reservation) => (body, BodyState::COMPLETE, Some(reservation)),
        // The host answers these without running the request.
        Received::Incomplete => (Vec::new(), BodyState::INCOMPLETE, None),
        Received::TooLarge => (Vec::new(), BodyState::TOO_LARGE, None),
        Received::TimedOut => {
            (shared.log)(
                LogLevel::DEBUG,
                &format!(
                    "closed the connection of {peer}: body not received within {} s",
                    config.body_timeout
                ),
            );
            return error_response(
                StatusCode::REQUEST_TIMEOUT,
                "Request timeout",
                &format!(
                    "The request body did not arrive within {} seconds.",
                    config.body_timeout
                ),
            );
        }
        Received::NoRoom => {
            (shared.log)(
                LogLevel::WARN,
                &format!(
                    "refused a request of {peer}: request bodies in flight hold max_body_memory ({} bytes)",
                    config.max_body_memory
                ),
            );
            return error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable",
                "The server is receiving too many request bodies; retry later.",
            );
        }
    };
    let request = ApiRequest {
        protocol: Protocol::HTTP,
        method: parts.method.as_str().into(),
        path: parts.uri.path().into(),
        query: parts.uri.query().unwrap_or("").into(),
        headers,
        body: RVec::from(body),
        peer,
        connection,
    };
    match shared.host.serve(request, state).await {
        Ok(served) => translate_response(served),
        // The host's API never fails; this answers only if the call itself
        // broke (e.g. the host panicked), so the client still gets a JSON
        // error.
        Err(error) => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal server error",
            &error.to_string(),
        ),
    }
}

fn translate_response(served: ServedResponse) -> Response<Body> {
    let ServedResponse { response, stream } = served;
    let body = match stream.into_option() {
        None => Full::new(Bytes::from(response.body.into_vec())).boxed_unsync(),
        Some(stream) => streamed(stream),
    };
    let mut http = Response::new(body);
    *http.status_mut() =
        StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = http.headers_mut();
    for header in response.headers {
        // The value's bytes are handed over, not copied (checked as a
        // header value all the same).
        if let (Ok(name), Ok(value)) = (
            header_name(header.name.as_str()),
            HeaderValue::from_maybe_shared(Bytes::from(header.value.into_string())),
        ) {
            headers.append(name, value);
        }
    }
    http
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-openstack-request-id");

/// A response header's name: the ones the host sends with every answer
/// are constants (parsing a name checks and hashes it byte by byte).
fn header_name(name: &str) -> Result<HeaderName, hyper::http::header::InvalidHeaderName> {
    use hyper::header;
    Ok(match name {
        "content-type" => header::CONTENT_TYPE,
        "location" => header::LOCATION,
        "content-length" => header::CONTENT_LENGTH,
        "x-openstack-request-id" => REQUEST_ID,
        _ => return HeaderName::from_bytes(name.as_bytes()),
    })
}

/// A body written chunk by chunk as the host's stream yields them; hyper
/// drops the stream when the client goes away.
fn streamed(stream: ResponseStreamBox) -> Body {
    let chunks = futures_util::stream::unfold(stream, |stream| async move {
        let chunk = stream.next_chunk().await.ok()?.into_option()?;
        Some((
            Ok::<_, Infallible>(Frame::data(Bytes::from(chunk.into_vec()))),
            stream,
        ))
    });
    BodyExt::boxed_unsync(StreamBody::new(chunks))
}

/// An error the transport answers itself, in Zaqar's JSON error shape. The
/// connection closes after it: the rest of the request was not read.
fn error_response(status: StatusCode, title: &str, description: &str) -> Response<Body> {
    let mut response =
        Response::new(Full::new(Bytes::from(error_body(title, description))).boxed_unsync());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        headers.insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// Zaqar's error body.
fn error_body(title: &str, description: &str) -> String {
    format!(
        "{{\"title\":{},\"description\":{}}}",
        json_string(title),
        json_string(description)
    )
}

fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
