//! An out-of-tree transport for zaqar-server: Zaqar's WebSocket actions as
//! newline-delimited JSON over plain TCP. Each line a client sends is one
//! request frame (`{"action": "message_post", "headers": {...}, "body":
//! {...}}`), answered by one line; messages of queues the connection
//! subscribed to arrive as extra lines. The host does all of Zaqar's work:
//! this file only moves lines.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Mutex,
};

use plugin_api::{
    runtime,
    transport::{
        wrap_push_sink, ApiRequest, Header, HostApi, HostApiBox, Protocol, PushFrame, PushSink,
        Transport,
    },
    types::RString,
    PluginContext, PluginError, PluginResult,
};
use serde::Deserialize;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::{mpsc, oneshot},
};

/// `[drivers.transport.ndjson]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NdjsonConfig {
    #[serde(default = "localhost")]
    bind: String,
    #[serde(default)]
    port: u16,
}

fn localhost() -> String {
    "127.0.0.1".into()
}

/// The transport: a listener until `stop`.
pub struct NdjsonTransport {
    config: NdjsonConfig,
    stop: Mutex<Option<oneshot::Sender<()>>>,
}

impl NdjsonTransport {
    /// The constructor behind the `ndjson` entry point.
    pub async fn open(context: PluginContext) -> PluginResult<Self> {
        Ok(Self {
            config: context.config()?,
            stop: Mutex::new(None),
        })
    }
}

impl Transport for NdjsonTransport {
    async fn start(&self, host: HostApiBox) -> PluginResult<RString> {
        let address = (self.config.bind.as_str(), self.config.port);
        let listener = TcpListener::bind(address)
            .await
            .map_err(|e| PluginError::bad_config(format!("cannot listen on {address:?}: {e}")))?;
        let bound = listener
            .local_addr()
            .map_err(|e| PluginError::internal(e.to_string()))?;
        let (stop, mut stopped) = oneshot::channel();
        *self.stop.lock().unwrap() = Some(stop);
        let host = std::sync::Arc::new(host);
        runtime::spawn(async move {
            loop {
                tokio::select! {
                    accepted = listener.accept() => if let Ok((socket, _)) = accepted {
                        runtime::spawn(serve(socket, host.clone()));
                    },
                    _ = &mut stopped => return,
                }
            }
        });
        Ok(bound.to_string().into())
    }

    async fn stop(&self) -> PluginResult<()> {
        if let Some(stop) = self.stop.lock().unwrap().take() {
            let _ = stop.send(());
        }
        Ok(())
    }
}

/// Pushed frames go to the connection's writer; JSON only, as text lines.
struct LinePush(mpsc::UnboundedSender<Vec<u8>>);

impl PushSink for LinePush {
    fn push(&self, frame: PushFrame) -> bool {
        !frame.binary && self.0.send(frame.payload.into_vec()).is_ok()
    }
}

async fn serve(socket: TcpStream, host: std::sync::Arc<HostApiBox>) {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let connection: RString = format!("ndjson-{}", NEXT.fetch_add(1, Ordering::Relaxed)).into();
    let peer: RString = socket
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default()
        .into();
    let (reader, mut writer) = socket.into_split();
    let (lines_out, mut outgoing) = mpsc::unbounded_channel::<Vec<u8>>();
    let sink = wrap_push_sink(LinePush(lines_out.clone()));
    if host
        .connection_opened(connection.clone(), sink)
        .await
        .is_err()
    {
        return;
    }
    let writing = runtime::spawn(async move {
        while let Some(mut line) = outgoing.recv().await {
            line.push(b'\n');
            if writer.write_all(&line).await.is_err() {
                return;
            }
        }
    });
    let mut lines = BufReader::new(reader).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim().is_empty() {
            continue;
        }
        let request = ApiRequest {
            protocol: Protocol::WEBSOCKET,
            method: RString::new(),
            path: RString::new(),
            query: RString::new(),
            headers: vec![Header::new("content-type", "application/json")].into(),
            body: line.into_bytes().into(),
            peer: peer.clone(),
            connection: connection.clone(),
        };
        let Ok(response) = host.handle(request).await else {
            break;
        };
        if lines_out.send(response.body.into_vec()).is_err() {
            break;
        }
    }
    let _ = host.connection_closed(connection).await;
    drop(lines_out);
    let _ = writing.await;
}

plugin_api::entry_points! {
    pub fn entry_points;
    transport "ndjson" => NdjsonTransport::open,
}

plugin_api::export_plugin!(entry_points);
