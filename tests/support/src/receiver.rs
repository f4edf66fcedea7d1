//! A real HTTP/1.1 (and https) receiver for tests of notifier sinks: a
//! tokio TCP listener with a minimal request reader (keep-alive,
//! `Content-Length` bodies), recording every request and answering as the
//! test's `reply` function says. Async; [`crate::BlockingReceiver`] wraps it
//! for synchronous tests.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader},
    net::TcpListener,
    sync::mpsc,
};
use tokio_rustls::{
    rustls::{
        self,
        pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    },
    TlsAcceptor,
};

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    /// The request method.
    pub method: String,
    /// The request target as sent (path and query).
    pub target: String,
    /// The path of the target (without the query).
    pub path: String,
    /// Names lowercased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Which receiver got it (its address).
    pub at: SocketAddr,
}

impl Received {
    /// A header's value (the name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (panics if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// How to answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
    /// Wait this long before answering.
    pub delay: Duration,
    /// Announce a longer body than sent, then stall (a receiver that never
    /// finishes its answer).
    pub stall_body: bool,
}

impl Reply {
    /// An answer with this status and nothing else.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
            stall_body: false,
        }
    }

    /// Announces a longer body than it sends, then stalls.
    pub fn stall_body(mut self) -> Self {
        self.stall_body = true;
        self
    }

    /// With this body.
    pub fn body(mut self, body: &str) -> Self {
        self.body = body.to_string();
        self
    }

    /// With this header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Waits this long before answering.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

type ReplyFn = Arc<dyn Fn(&Received) -> Reply + Send + Sync>;

/// A running receiver.
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    requests: Mutex<mpsc::UnboundedReceiver<Received>>,
    connections: Arc<AtomicUsize>,
    tls: bool,
}

/// The directory of the test certificates (`ca.pem` signed `server.pem`
/// for `localhost`, `127.0.0.1` and `::1`; see its README).
pub fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn acceptor() -> TlsAcceptor {
    let certs = CertificateDer::pem_file_iter(fixtures().join("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(fixtures().join("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

impl Receiver {
    /// Starts a receiver on `ip:0` answering with `reply`.
    pub async fn start(
        ip: &str,
        reply: impl Fn(&Received) -> Reply + Send + Sync + 'static,
    ) -> Self {
        Self::start_with(ip, false, reply).await
    }

    /// Starts an https receiver on `ip:0` with the fixture certificate
    /// (`tests/fixtures/server.pem`, signed by `ca.pem`).
    pub async fn start_tls(
        ip: &str,
        reply: impl Fn(&Received) -> Reply + Send + Sync + 'static,
    ) -> Self {
        Self::start_with(ip, true, reply).await
    }

    async fn start_with(
        ip: &str,
        tls: bool,
        reply: impl Fn(&Received) -> Reply + Send + Sync + 'static,
    ) -> Self {
        Self::start_on(ip, 0, tls, reply).await
    }

    /// Starts a receiver on `ip:port` (0: any free port), https if `tls`.
    pub async fn start_on(
        ip: &str,
        port: u16,
        tls: bool,
        reply: impl Fn(&Received) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let acceptor = tls.then(acceptor);
        let listener = TcpListener::bind((ip, port)).await.expect("bind receiver");
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let reply: ReplyFn = Arc::new(reply);
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::clone(&connections);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                let (tx, reply) = (tx.clone(), Arc::clone(&reply));
                match &acceptor {
                    None => {
                        tokio::spawn(serve(stream, addr, tx, reply));
                    }
                    Some(acceptor) => {
                        let accepting = acceptor.accept(stream);
                        tokio::spawn(async move {
                            if let Ok(stream) = accepting.await {
                                serve(stream, addr, tx, reply).await;
                            }
                        });
                    }
                }
            }
        });
        Self {
            addr,
            requests: Mutex::new(rx),
            connections,
            tls,
        }
    }

    /// `http(s)://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    /// How many connections were accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// The requests received so far.
    pub fn received(&self) -> Vec<Received> {
        let mut rx = self.requests.lock().unwrap();
        let mut out = Vec::new();
        while let Ok(r) = rx.try_recv() {
            out.push(r);
        }
        out
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    at: SocketAddr,
    tx: mpsc::UnboundedSender<Received>,
    reply: ReplyFn,
) {
    let mut stream = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        let path = target
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .to_string();
        let request = Received {
            method,
            target,
            path,
            headers,
            body,
            at,
        };
        let answer = reply(&request);
        let _ = tx.send(request);
        tokio::time::sleep(answer.delay).await;
        let mut head = format!(
            "HTTP/1.1 {} Test\r\ncontent-length: {}\r\n",
            answer.status,
            answer.body.len() + if answer.stall_body { 1000 } else { 0 }
        );
        for (name, value) in &answer.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        head.push_str(&answer.body);
        if stream.get_mut().write_all(head.as_bytes()).await.is_err() {
            return;
        }
        if answer.stall_body {
            tokio::time::sleep(Duration::from_secs(30)).await;
            return;
        }
    }
}
