//! The TCP connector under the HTTP client. It resolves the target itself and
//! checks every resolved address **at connect time**, so neither a literal
//! address, nor a name resolving to a private address, nor a DNS answer that
//! changes between a check and the connection (rebinding), nor a redirect can
//! reach a range the operator did not allow.

use std::{
    fmt,
    future::Future,
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    task::{Context, Poll},
};

use http::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A target refused because it is (or resolves to) a loopback, private,
/// link-local or otherwise special address while the operator does not
/// allow those. Never worth retrying.
#[derive(Debug)]
pub struct PrivateTarget {
    /// The host as written in the URI.
    pub host: String,
    /// The offending address.
    pub address: IpAddr,
}

impl fmt::Display for PrivateTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.trim_matches(['[', ']']) == self.address.to_string() {
            write!(
                f,
                "refused to connect to {}: a private, loopback or link-local address \
                 ([notification] allow_private_subscribers is off)",
                self.address
            )
        } else {
            write!(
                f,
                "refused to connect to {}: it resolves to {}, a private, loopback or \
                 link-local address ([notification] allow_private_subscribers is off)",
                self.host, self.address
            )
        }
    }
}

impl std::error::Error for PrivateTarget {}

/// Tells whether an address must be refused.
pub type AddressCheck = fn(IpAddr) -> bool;

/// Resolves and connects, refusing the addresses `refuse` picks (none when
/// it is `None`; the sink passes
/// [`plugin_api::net::is_private_address`]).
#[derive(Clone, Debug)]
pub struct GuardedConnector {
    refuse: Option<AddressCheck>,
}

impl GuardedConnector {
    /// A connector refusing the addresses `refuse` picks.
    pub fn with_check(refuse: Option<AddressCheck>) -> Self {
        Self { refuse }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Uri> for GuardedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let refuse = self.refuse;
        Box::pin(async move { connect(&uri, refuse).await })
    }
}

async fn connect(uri: &Uri, refuse: Option<AddressCheck>) -> Result<TokioIo<TcpStream>, BoxError> {
    let host = uri
        .host()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "URI without a host"))?;
    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    });
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("cannot resolve {bare}: {e}")))?
            .collect(),
    };
    if addresses.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{bare} resolves to no address"),
        )
        .into());
    }
    if let Some(refuse) = refuse {
        // Any private address in the answer refuses the whole target: a name
        // that mixes public and private answers is a rebinding attempt or a
        // misconfiguration, never a webhook worth reaching.
        if let Some(private) = addresses.iter().find(|a| refuse(a.ip())) {
            return Err(Box::new(PrivateTarget {
                host: host.to_string(),
                address: private.ip(),
            }));
        }
    }
    let mut last_error = None;
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(TokioIo::new(stream));
            }
            Err(e) => last_error = Some(io::Error::new(e.kind(), format!("{address}: {e}"))),
        }
    }
    Err(last_error
        .unwrap_or_else(|| io::Error::other("no address to connect to"))
        .into())
}
