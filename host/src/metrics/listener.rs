//! `[server] metrics_listen`: the exposition on its own plain HTTP port,
//! without authentication, for a Prometheus on a private network. It
//! answers `GET /metrics` and 404 to anything else, one request per
//! connection.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use plugin_api::storage::MessageStoreBox;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// The longest request head read; a scraper's is a few hundred bytes.
const MAX_HEAD: usize = 8 * 1024;

/// Binds `address` and serves scrapes in the background.
pub async fn start(address: SocketAddr, store: Arc<MessageStoreBox>) -> std::io::Result<()> {
    let listener = TcpListener::bind(address).await?;
    tracing::info!(%address, "metrics listening (no authentication)");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                // A client that never finishes its request is dropped.
                let _ = tokio::time::timeout(Duration::from_secs(10), answer(stream, &store)).await;
            });
        }
    });
    Ok(())
}

async fn answer(mut stream: TcpStream, store: &MessageStoreBox) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = stream.read(&mut buffer).await?;
        if read == 0 || head.len() + read > MAX_HEAD {
            return Ok(());
        }
        head.extend_from_slice(&buffer[..read]);
    }
    let request_line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = request_line.split(|&b| b == b' ');
    let (method, target) = (parts.next(), parts.next());
    let path = target.map(|t| t.split(|&b| b == b'?').next().unwrap_or_default());
    let (status, content_type, body) = if method == Some(b"GET") && path == Some(b"/metrics") {
        let metrics = super::global();
        metrics.read_store(store).await;
        ("200 OK", super::CONTENT_TYPE, metrics.render())
    } else {
        (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found\n".to_string(),
        )
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
