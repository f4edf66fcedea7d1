//! One HTTP connection: requests in, host answers out.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::{
    body::{Bytes, Incoming},
    header::{HeaderName, HeaderValue},
    server::conn::http1,
    service::service_fn,
    Request, Response,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use plugin_api::{
    transport::{ApiRequest, Header, HostApi, HostApiBox, Protocol},
    types::{RString, RVec},
};
use tokio::{net::TcpStream, sync::watch};

use crate::config::WsgiConfig;

/// The header that tells the host the body was larger than the transport
/// reads (its value is the limit).
const BODY_OVERFLOW_HEADER: &str = "x-zaqar-body-overflow";

/// Serves one connection until the client closes it, it idles out, or the
/// transport stops (then the request in flight finishes first).
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    host: Arc<HostApiBox>,
    config: WsgiConfig,
    mut stopped: watch::Receiver<bool>,
) {
    let connection_id = RString::from(uuid::Uuid::new_v4().to_string());
    let peer = RString::from(peer.to_string());
    let max_body = config.max_body_size;
    let service = service_fn(move |request: Request<Incoming>| {
        let host = host.clone();
        let peer = peer.clone();
        let connection_id = connection_id.clone();
        async move {
            let api_request = translate_request(request, max_body, peer, connection_id).await;
            let response = match host.handle(api_request).await {
                Ok(response) => translate_response(response),
                Err(error) => internal_error(&error.to_string()),
            };
            Ok::<_, Infallible>(response)
        }
    });
    let connection = http1::Builder::new()
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(config.idle_timeout))
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = stopped.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

async fn translate_request(
    request: Request<Incoming>,
    max_body: usize,
    peer: RString,
    connection: RString,
) -> ApiRequest {
    let (parts, body) = request.into_parts();
    let mut headers: RVec<Header> = parts
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
    let declared_too_large = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|len| len > max_body as u64);
    let body = if declared_too_large {
        None
    } else {
        match Limited::new(body, max_body).collect().await {
            Ok(collected) => Some(collected.to_bytes()),
            Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => None,
            // The client went away or sent a malformed body: nothing
            // sensible to pass on.
            Err(_) => Some(Bytes::new()),
        }
    };
    let body = body.unwrap_or_else(|| {
        headers.push(Header::new(BODY_OVERFLOW_HEADER, &max_body.to_string()));
        Bytes::new()
    });
    ApiRequest {
        protocol: Protocol::HTTP,
        method: parts.method.as_str().into(),
        path: parts.uri.path().into(),
        query: parts.uri.query().unwrap_or("").into(),
        headers,
        body: RVec::from(body.as_ref()),
        peer,
        connection,
    }
}

fn translate_response(response: plugin_api::transport::ApiResponse) -> Response<Full<Bytes>> {
    let body = Bytes::from(response.body.into_vec());
    let mut http = Response::new(Full::new(body));
    *http.status_mut() = hyper::StatusCode::from_u16(response.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = http.headers_mut();
    for header in response.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(header.name.as_bytes()),
            HeaderValue::from_str(&header.value),
        ) {
            headers.append(name, value);
        }
    }
    http
}

/// The host's API never fails; this answers only if the call itself broke
/// (e.g. the host panicked), so the client still gets a JSON error.
fn internal_error(reason: &str) -> Response<Full<Bytes>> {
    let body = format!(
        "{{\"title\":\"Internal server error\",\"description\":{}}}",
        json_string(reason)
    );
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
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
