//! The transport contract (`zaqar.transport`) and the host API a transport
//! calls.
//!
//! A transport only translates frames: it turns what arrives on its socket
//! into an [`ApiRequest`], hands it to the host through [`HostApi::handle`],
//! and writes the [`ApiResponse`] back. Every Zaqar rule lives in the host.

use abi_stable::{
    std_types::{ROption, RSlice, RString, RVec},
    StableAbi,
};

use crate::macros::plugin_trait;

/// Which protocol a request arrived by; it decides how the host reads it.
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Protocol(pub u8);

impl Protocol {
    /// An HTTP request: `method`, `path`, `query`, `headers` and `body` as
    /// received.
    pub const HTTP: Self = Self(0);
    /// One WebSocket frame of Zaqar's persistent transport: `body` holds the
    /// frame's payload as received; the header `content-type` is
    /// `application/json` for a text frame and `application/x-msgpack` for a
    /// binary one. The response body comes back in the same encoding.
    pub const WEBSOCKET: Self = Self(1);
}

/// One header; names are lowercase.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The header name, lowercase.
    pub name: RString,
    /// The header value.
    pub value: RString,
}

impl Header {
    /// A header; the name is lowercased.
    pub fn new(name: &str, value: &str) -> Self {
        Self {
            name: name.to_ascii_lowercase().into(),
            value: value.into(),
        }
    }
}

/// A request as a transport received it.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct ApiRequest {
    /// How to read the rest.
    pub protocol: Protocol,
    /// The HTTP method (empty for WebSocket frames).
    pub method: RString,
    /// The path, percent-encoded as received (empty for WebSocket frames).
    pub path: RString,
    /// The query string without `?` (empty if none).
    pub query: RString,
    /// The request headers (for WebSocket, those of the upgrade request plus
    /// `content-type`).
    pub headers: RVec<Header>,
    /// The body or frame payload.
    pub body: RVec<u8>,
    /// The peer address, for logs.
    pub peer: RString,
    /// An id the transport gives its connection (for WebSocket: one per
    /// socket), so the host can tie requests and pushes to it.
    pub connection: RString,
}

/// The host's answer.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct ApiResponse {
    /// The HTTP status (for WebSocket, the status the frame reports).
    pub status: u16,
    /// Response headers, lowercase names.
    pub headers: RVec<Header>,
    /// The body or frame payload.
    pub body: RVec<u8>,
}

/// A frame the host pushes to a persistent connection.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct PushFrame {
    /// Send as a binary frame (MsgPack) rather than a text frame (JSON).
    pub binary: bool,
    /// The encoded payload.
    pub payload: RVec<u8>,
}

/// Where the host pushes frames for one persistent connection: implemented
/// by transports that keep connections open (WebSocket), handed to the host
/// with [`HostApi::connection_opened`].
pub trait PushSink: Send + Sync + 'static {
    /// Queues a frame without waiting. Returns false if the connection is
    /// gone or could not take the frame: a transport whose send queue for
    /// the connection is full closes it as a slow consumer rather than let
    /// memory grow.
    fn push(&self, frame: PushFrame) -> bool;

    /// Since 1.1. The same as [`PushSink::push`] for a frame whose payload
    /// is `shared` followed by `tail`: `shared` is the part of a fan-out
    /// that every connection receives (encoded once per message), `tail`
    /// the part that differs per subscription. The slices live only for
    /// the call: a sink that must keep the frame copies it; one that can
    /// write it at once (`writev`) copies nothing. The default joins the
    /// parts and calls [`PushSink::push`].
    fn push_parts(&self, binary: bool, shared: &[u8], tail: &[u8]) -> bool {
        let mut payload = RVec::with_capacity(shared.len() + tail.len());
        payload.extend_from_slice(shared);
        payload.extend_from_slice(tail);
        self.push(PushFrame { binary, payload })
    }

    /// Since 1.1. The same as [`PushSink::push_parts`], except that the
    /// sink may hold the frame (copied) until [`PushSink::flush_batch`] is
    /// called on the same thread: a transport can then hand the writes of
    /// many connections to the kernel in one call, where one `send` per
    /// connection would cost a system call each. A caller that pushes this
    /// way calls `flush_batch` on every sink it pushed to before it leaves
    /// the thread's current piece of work (before any `.await`). The
    /// default writes at once, like `push_parts`.
    fn push_batched(&self, binary: bool, shared: &[u8], tail: &[u8]) -> bool {
        self.push_parts(binary, shared, tail)
    }

    /// Since 1.1. Writes what [`PushSink::push_batched`] holds for this
    /// thread. A transport that batches across its connections writes the
    /// whole batch on the first call; the calls after it find nothing to
    /// do. The default does nothing.
    fn flush_batch(&self) {}
}

/// The ABI-stable vtable of [`PushSink`]; use [`wrap_push_sink`].
#[abi_stable::sabi_trait]
pub trait PushSinkAbi: Send + Sync {
    /// See [`PushSink::push`].
    #[sabi(last_prefix_field)]
    fn abi_push(&self, frame: PushFrame) -> bool;

    /// Since 1.1; see [`PushSink::push_parts`]. A library built against an
    /// older plugin-api has no such entry in its vtable: abi_stable then
    /// runs this default, which joins the parts for `abi_push`.
    fn abi_push_parts(&self, binary: bool, shared: RSlice<'_, u8>, tail: RSlice<'_, u8>) -> bool {
        let mut payload = RVec::with_capacity(shared.len() + tail.len());
        payload.extend_from_slice(shared.as_slice());
        payload.extend_from_slice(tail.as_slice());
        self.abi_push(PushFrame { binary, payload })
    }

    /// Since 1.1; see [`PushSink::push_batched`]. A library without it
    /// writes at once through `abi_push_parts`.
    fn abi_push_batched(&self, binary: bool, shared: RSlice<'_, u8>, tail: RSlice<'_, u8>) -> bool {
        self.abi_push_parts(binary, shared, tail)
    }

    /// Since 1.1; see [`PushSink::flush_batch`]. A library without it holds
    /// nothing, so there is nothing to do.
    fn abi_flush_batch(&self) {}
}

/// A boxed, ABI-stable [`PushSink`].
pub type PushSinkBox = PushSinkAbi_TO<'static, abi_stable::std_types::RBox<()>>;

struct PushSinkAdapter<T>(T);

impl<T: PushSink> PushSinkAbi for PushSinkAdapter<T> {
    fn abi_push(&self, frame: PushFrame) -> bool {
        // A panic must not unwind into the caller's side of the boundary; a
        // sink that panicked cannot have taken the frame.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.0.push(frame)))
            .unwrap_or(false)
    }

    fn abi_push_parts(&self, binary: bool, shared: RSlice<'_, u8>, tail: RSlice<'_, u8>) -> bool {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.0
                .push_parts(binary, shared.as_slice(), tail.as_slice())
        }))
        .unwrap_or(false)
    }

    fn abi_push_batched(&self, binary: bool, shared: RSlice<'_, u8>, tail: RSlice<'_, u8>) -> bool {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.0
                .push_batched(binary, shared.as_slice(), tail.as_slice())
        }))
        .unwrap_or(false)
    }

    fn abi_flush_batch(&self) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.0.flush_batch()));
    }
}

impl PushSink for PushSinkBox {
    fn push(&self, frame: PushFrame) -> bool {
        self.abi_push(frame)
    }

    fn push_parts(&self, binary: bool, shared: &[u8], tail: &[u8]) -> bool {
        self.abi_push_parts(binary, shared.into(), tail.into())
    }

    fn push_batched(&self, binary: bool, shared: &[u8], tail: &[u8]) -> bool {
        self.abi_push_batched(binary, shared.into(), tail.into())
    }

    fn flush_batch(&self) {
        self.abi_flush_batch()
    }
}

/// Boxes a [`PushSink`] for the boundary.
pub fn wrap_push_sink<T: PushSink>(sink: T) -> PushSinkBox {
    PushSinkAbi_TO::from_value(PushSinkAdapter(sink), abi_stable::sabi_trait::TD_Opaque)
}

plugin_trait! {
    /// The host as a transport sees it. Implemented by the host; transports
    /// call it.
    native HostApi;
    abi HostApiAbi, object HostApiAbi_TO, boxed HostApiBox, adapter HostApiAdapter, wrap wrap_host_api;
    methods {
        /// Handles one request. Never fails: errors are responses.
        fn handle(&self, request: ApiRequest) -> ApiResponse;
        /// A persistent connection (with the id its requests carry in
        /// [`ApiRequest::connection`]) opened; the host may push frames to
        /// it through `sink` until [`HostApi::connection_closed`].
        fn connection_opened(&self, connection: RString, sink: PushSinkBox) -> ();
    }
    last {
        /// The connection closed: the host drops its sink and ends what the
        /// connection subscribed to.
        fn connection_closed(&self, connection: RString) -> ();
    }
    appended {
        /// Since 1.1. Handles one request whose body arrived as `body`
        /// says, and may answer with a streamed body (server-sent events):
        /// the transport writes [`ServedResponse::response`]'s status and
        /// headers, then its body if `stream` is `RNone`, else every chunk
        /// the stream yields until it ends (dropping the stream when the
        /// client goes away). Transports built against 1.0 call
        /// [`HostApi::handle`] instead, which never streams.
        fn serve(&self, request: ApiRequest, body: BodyState) -> ServedResponse;
    }
}

/// How a request's body arrived. Since 1.1.
///
/// A transparent `u8` so later versions can add states; a host that meets
/// one it does not know treats the body as incomplete.
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BodyState(pub u8);

impl BodyState {
    /// The whole body is in [`ApiRequest::body`].
    pub const COMPLETE: Self = Self(0);
    /// The body was larger than the transport accepts; [`ApiRequest::body`]
    /// is empty. The host answers 413 and changes nothing.
    pub const TOO_LARGE: Self = Self(1);
    /// The body did not arrive whole (the client stopped sending, or closed
    /// early); [`ApiRequest::body`] is empty. The host answers 400 and
    /// changes nothing.
    pub const INCOMPLETE: Self = Self(2);
}

/// The host's answer to [`HostApi::serve`]. Since 1.1.
#[repr(C)]
#[derive(StableAbi)]
pub struct ServedResponse {
    /// Status and headers; the body too unless `stream` is set.
    pub response: ApiResponse,
    /// A body streamed chunk by chunk, for as long as the client listens.
    pub stream: ROption<ResponseStreamBox>,
}

impl ServedResponse {
    /// A complete, unstreamed response.
    pub fn whole(response: ApiResponse) -> Self {
        Self {
            response,
            stream: ROption::RNone,
        }
    }
}

plugin_trait! {
    /// A response body produced over time (server-sent events). Implemented
    /// by the host; a transport pulls chunks and writes each as it comes.
    /// Since 1.1.
    native ResponseStream;
    abi ResponseStreamAbi, object ResponseStreamAbi_TO, boxed ResponseStreamBox, adapter ResponseStreamAdapter, wrap wrap_response_stream;
    methods {}
    last {
        /// The next chunk to write, waiting until there is one; `RNone` when
        /// the body has ended (write nothing more and finish the response).
        fn next_chunk(&self) -> ROption<RVec<u8>>;
    }
}

plugin_trait! {
    /// A transport: implement this for a `zaqar.transport` plugin.
    native Transport;
    abi TransportAbi, object TransportAbi_TO, boxed TransportBox, adapter TransportAdapter, wrap wrap_transport;
    methods {
        /// Binds the listener from the plugin's configuration and starts
        /// serving on a spawned task (see [`crate::runtime::spawn`]); resolves
        /// once the listener is bound, with the address it is bound to
        /// (`host:port`), so a port of 0 can be discovered.
        fn start(&self, host: HostApiBox) -> RString;
    }
    last {
        /// Stops accepting, lets requests in flight finish, and resolves when
        /// the transport has stopped.
        fn stop(&self) -> ();
    }
}
