//! Zaqar's v2 API: every rule, limit and error body, shared by all
//! transports.
//!
//! A request flows edge → action → reply:
//!
//! | module | role |
//! |---|---|
//! | [`http`], [`websocket`] | front ends: Zaqar's request hooks, build a [`command::Command`], render the [`action::Reply`] |
//! | [`command`] | the typed command: every action with its validated fields, read once from a [`command::Source`] |
//! | [`router`] | HTTP method + path → [`router::Action`] (named after Zaqar's WebSocket actions) |
//! | [`params`], [`frame`], [`body`], [`post_body`], [`validation`] | input parsed once into typed values, with Zaqar's errors |
//! | [`queues`], [`messages`], [`claims`], [`subscriptions`], [`stats`], [`signed_url`], [`health`], [`pools`], [`flavors`] | the actions |
//! | [`metadata`], [`queue_patch`] | reserved queue metadata keys; queue PATCH operations |
//! | [`errors`] | every client-visible error: status, title, description |
//! | [`render`], [`http_render`], [`homedoc`], [`checksum`], [`clock`] | output |

pub mod action;
pub mod auth;
pub mod body;
pub mod checksum;
pub mod claims;
pub mod clock;
pub mod command;
pub mod errors;
pub mod flavors;
pub mod frame;
pub mod health;
pub mod homedoc;
pub mod http;
pub mod http_render;
pub mod json_packed;
pub mod messages;
pub mod metadata;
pub mod packed;
pub mod params;
pub mod pools;
pub mod post_body;
pub mod queue_patch;
pub mod queues;
pub mod rate_limit;
pub mod render;
pub mod router;
pub mod signed_url;
pub mod stats;
pub mod subscriptions;
pub mod validation;
pub mod websocket;

#[cfg(test)]
mod tests;

use std::{
    future::Future,
    panic::{catch_unwind, AssertUnwindSafe},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use plugin_api::{
    management::ManagementStoreBox,
    storage::{MessageStore, MessageStoreBox},
    transport::{
        ApiRequest, ApiResponse, BodyState, Header, HostApi, Protocol, PushSinkBox, ServedResponse,
    },
    types::{RString, RVec},
    PluginResult,
};

use crate::{
    config::{Config, Limits},
    metrics::{self, Route, Transport},
    notify::Dispatcher,
    pools::Pools,
};

use self::{
    action::{Caller, Reply},
    command::Command,
    errors::{ApiError, ApiResult},
    validation::ClientIdRule,
};

/// The stores the API works on.
pub struct Stores {
    /// Queues, messages, claims, subscriptions (shared with the
    /// notification dispatcher).
    pub messages: Arc<MessageStoreBox>,
    /// Pools and flavors.
    pub management: Arc<ManagementStoreBox>,
}

/// The API: configuration-derived rules and the stores.
pub struct Api {
    limits: Limits,
    client_id_rule: ClientIdRule,
    admin_mode: bool,
    checksum: bool,
    signing_key: Option<String>,
    pub(crate) stores: Stores,
    homedoc: Vec<u8>,
    /// Notifications: subscribers of this node's sockets and the delivery
    /// workers of every subscription.
    pub(crate) notify: Arc<Dispatcher>,
    /// `[notification] allow_private_subscribers`.
    allow_private_subscribers: bool,
    /// The auth strategy; `None` for `noauth`.
    auth: Option<auth::Auth>,
    /// The pools, when `pooling` is on (the message store then resolves
    /// each queue to its pool by itself).
    pools: Option<Arc<Pools>>,
    /// `[streams]`.
    pub(crate) streams: crate::streams::StreamsConfig,
    /// True once the server is stopping: event streams end, long-polls
    /// answer.
    stopping: tokio::sync::watch::Sender<bool>,
    /// `[server.cors]`.
    cors: crate::streams::cors::Cors,
    /// `[server] rate_limit_per_project`; `None` when off.
    rate_limit: Option<rate_limit::RateLimit>,
    /// `[server] metrics`: whether `GET /metrics` is served.
    metrics: bool,
    /// The web console served at `/ui/`.
    pub console: crate::console::Console,
}

impl Api {
    /// Builds the API from the configuration.
    pub fn new(config: &Config, stores: Stores, notify: Arc<Dispatcher>) -> Api {
        notify.pushes.configure(&config.streams);
        Api {
            limits: config.transport.clone(),
            client_id_rule: ClientIdRule::from_limits(&config.transport),
            admin_mode: config.server.admin_mode,
            checksum: config.server.enable_checksum,
            signing_key: config.signed_url.secret_key.clone(),
            stores,
            homedoc: homedoc::home_document(config.server.admin_mode),
            notify,
            allow_private_subscribers: config.notification.allow_private_subscribers,
            auth: None,
            pools: None,
            streams: config.streams.clone(),
            stopping: tokio::sync::watch::channel(false).0,
            cors: crate::streams::cors::Cors::new(&config.server.cors.allowed_origins),
            rate_limit: rate_limit::RateLimit::new(
                config.server.rate_limit_per_project,
                config.server.rate_limit_burst,
            ),
            metrics: config.server.metrics,
            console: crate::console::Console::new(&config.ui),
        }
    }

    /// Serves the pools and flavors admin API over these pools (`pooling`).
    pub fn with_pools(mut self, pools: Arc<Pools>) -> Self {
        self.pools = Some(pools);
        self
    }

    /// Whether pooling is on.
    pub fn pooling(&self) -> bool {
        self.pools.is_some()
    }

    /// The server is stopping: event streams end and long-polls answer
    /// now, so transports can finish their requests.
    pub fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// Watches for [`Api::begin_shutdown`].
    pub(crate) fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Checks every request with this auth strategy (`auth_strategy` other
    /// than `noauth`).
    pub fn with_auth(mut self, strategy: plugin_api::auth::AuthenticatorBox) -> Self {
        self.auth = Some(auth::Auth::new(strategy));
        self
    }

    /// Refuses a request of `project` beyond its rate limit (if any).
    pub fn admit(&self, project: &validation::ProjectId) -> ApiResult<()> {
        match &self.rate_limit {
            Some(limit) => limit.admit(project.as_str()),
            None => Ok(()),
        }
    }

    /// The current time as the stores expect it.
    pub fn now_ms(&self) -> u64 {
        clock::now_ms()
    }

    /// Runs one command: the single entry point both front ends use.
    pub async fn dispatch(&self, caller: &Caller, command: &Command<'_>) -> ApiResult<Reply> {
        use Command as C;
        match command {
            C::GetHomeDoc => Ok(Reply::HomeDoc),
            C::PingNode => health::ping(self).await,
            C::CheckNodeHealth => health::check(self, caller).await,
            C::QueueList(args) => queues::list(self, caller, args).await,
            C::QueueCreate { queue, metadata } => {
                queues::create(self, caller, queue, metadata.as_deref()).await
            }
            C::QueueGet { queue } => queues::get(self, caller, queue).await,
            C::QueueUpdate { queue, patch } => {
                queues::update(self, caller, queue, patch.as_deref()).await
            }
            C::QueueDelete { queue } => queues::delete(self, caller, queue).await,
            C::QueueGetStats { queue } => stats::get(self, caller, queue).await,
            C::QueuePurge { queue, body } => {
                stats::purge(self, caller, queue, body.as_deref()).await
            }
            C::QueueShare { queue, body } => {
                signed_url::create(self, caller, queue, body.as_deref()).await
            }
            C::MessageList { queue, args } => messages::list(self, caller, queue, args).await,
            C::MessageGetMany { queue, ids } => messages::get_many(self, caller, queue, ids).await,
            C::MessagePost { queue, body } => messages::post(self, caller, queue, body).await,
            C::MessageDeleteMany { queue, args } => {
                messages::delete_many(self, caller, queue, args).await
            }
            C::MessageGet { queue, id } => messages::get(self, caller, queue, id).await,
            C::MessageDelete {
                queue,
                id,
                claim_id,
            } => messages::delete(self, caller, queue, id, claim_id.as_deref()).await,
            C::ClaimCreate { queue, limit, body } => {
                claims::create(self, caller, queue, *limit, body.as_deref()).await
            }
            C::ClaimGet { queue, id } => claims::get(self, caller, queue, id).await,
            C::ClaimUpdate { queue, id, body } => {
                claims::update(self, caller, queue, id, body.as_deref()).await
            }
            C::ClaimDelete { queue, id } => claims::delete(self, caller, queue, id).await,
            C::SubscriptionList { queue, args } => {
                subscriptions::list(self, caller, queue, args).await
            }
            C::SubscriptionCreate { queue, body } => {
                subscriptions::create(self, caller, queue, body.as_deref()).await
            }
            C::SubscriptionGet { queue, id } => subscriptions::get(self, caller, queue, id).await,
            C::SubscriptionUpdate { queue, id, body } => {
                subscriptions::update(self, caller, queue, id, body.as_deref()).await
            }
            C::SubscriptionConfirm { queue, id, body } => {
                subscriptions::confirm(self, caller, queue, id, body.as_deref()).await
            }
            C::SubscriptionDelete { queue, id } => {
                subscriptions::delete(self, caller, queue, id).await
            }
            C::PoolList(args) => pools::list(self, caller, args).await,
            C::PoolGet { name, detailed } => pools::get(self, caller, name, *detailed).await,
            C::PoolCreate { name, body } => {
                pools::create(self, caller, name, body.as_deref()).await
            }
            C::PoolUpdate { name, body } => {
                pools::update(self, caller, name, body.as_deref()).await
            }
            C::PoolDelete { name } => pools::delete(self, caller, name).await,
            C::FlavorList(args) => flavors::list(self, caller, args).await,
            C::FlavorGet { name } => flavors::get(self, caller, name).await,
            C::FlavorCreate { name, body } => {
                flavors::create(self, caller, name, body.as_deref()).await
            }
            C::FlavorUpdate { name, body } => {
                flavors::update(self, caller, name, body.as_deref()).await
            }
            C::FlavorDelete { name } => flavors::delete(self, caller, name).await,
        }
    }

    /// Serves one request of any protocol; never fails. A body that did
    /// not arrive whole, or was over the transport's limit, is refused
    /// before anything runs, so it changes nothing.
    async fn respond(&self, request: ApiRequest, body: BodyState) -> ApiResponse {
        let started = std::time::Instant::now();
        let refused = match body {
            BodyState::COMPLETE => None,
            BodyState::TOO_LARGE => Some(ApiError::BodyTooLarge),
            _ => Some(ApiError::body("The request body did not arrive whole.")),
        };
        let mut route = Route::Unrouted;
        let transport = if request.protocol == Protocol::WEBSOCKET {
            Transport::WebSocket
        } else {
            Transport::Http
        };
        let (status, mut headers, body) = if let Some(error) = refused {
            let response = http::HttpResponse::error(&error);
            (response.status, response.headers, response.body)
        } else if transport == Transport::WebSocket {
            // A panic answers its frame with a 500 envelope, as HTTP answers
            // 500, and the socket carries on.
            let served = CatchUnwind(Box::pin(websocket::handle(self, &request, &mut route))).await;
            let response = served.unwrap_or_else(|| websocket::internal_error(&request));
            (response.status, response.headers, response.body)
        } else {
            let served = CatchUnwind(Box::pin(http::handle(self, &request, &mut route))).await;
            let response = served.unwrap_or_else(|| {
                let mut response = http::HttpResponse::error(&ApiError::Internal(
                    "The request could not be served.",
                ));
                if request.method.as_str() == "HEAD" {
                    response.body.clear();
                }
                response
            });
            (response.status, response.headers, response.body)
        };
        metrics::global().request(route, transport, status, started.elapsed());
        // An HTTP answer names its request, as Zaqar's do; a WebSocket
        // answer travels in a frame, which has no headers to carry it.
        if transport == Transport::Http {
            headers.push(("x-openstack-request-id", request_id()));
        }
        ApiResponse {
            status,
            headers: headers
                .iter()
                .map(|(name, value)| Header::new(name, value))
                .collect(),
            body: RVec::from(body),
        }
    }
}

/// `req-<uuid>`, written without `format!`.
fn request_id() -> String {
    let mut id = String::with_capacity(40);
    id.push_str("req-");
    id.push_str(
        uuid::Uuid::new_v4()
            .hyphenated()
            .encode_lower(&mut uuid::Uuid::encode_buffer()),
    );
    id
}

impl Api {
    /// Serves a request of any protocol: HTTP ones get CORS (preflights,
    /// headers for allowed origins) and the event streams.
    async fn serve_http(&self, request: ApiRequest, body: BodyState) -> ServedResponse {
        if request.protocol != Protocol::HTTP {
            return ServedResponse::whole(self.respond(request, body).await);
        }
        if let Some(preflight) = self.cors.preflight(&request) {
            return ServedResponse::whole(preflight);
        }
        let origin = self.cors.allowed_origin(&request);
        let events = crate::streams::events::events_queue(&request.path).map(str::to_string);
        let mut served = match events {
            Some(queue) if body == BodyState::COMPLETE => {
                crate::streams::events::serve(self, request, &queue).await
            }
            _ => ServedResponse::whole(self.respond(request, body).await),
        };
        self.cors
            .decorate(origin.as_deref(), &mut served.response.headers);
        served
    }
}

impl HostApi for Api {
    async fn handle(&self, request: ApiRequest) -> PluginResult<ApiResponse> {
        Ok(self.serve_http(request, BodyState::COMPLETE).await.response)
    }

    async fn serve(&self, request: ApiRequest, body: BodyState) -> PluginResult<ServedResponse> {
        Ok(self.serve_http(request, body).await)
    }

    async fn connection_opened(&self, connection: RString, sink: PushSinkBox) -> PluginResult<()> {
        metrics::global().websocket_opened();
        self.notify.pushes.open(connection.as_str(), sink);
        Ok(())
    }

    /// Ends the connection's socket subscriptions, in the registry and in
    /// the store (Zaqar deletes a socket's subscriptions when it closes).
    async fn connection_closed(&self, connection: RString) -> PluginResult<()> {
        metrics::global().websocket_closed();
        if let Some(auth) = &self.auth {
            auth.socket_closed(connection.as_str());
        }
        for (queue, id) in self.notify.pushes.close(connection.as_str()) {
            if let Err(error) = self
                .stores
                .messages
                .subscription_delete(queue, id.into())
                .await
            {
                tracing::warn!(%error, "could not delete the subscription of a closed connection");
            }
        }
        Ok(())
    }
}

/// Polls a future, turning a panic into `None` so that one bad request
/// cannot take a connection task (or the server) down with it.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Ready(value)) => Poll::Ready(Some(value)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(panic = %message, "request handler panicked");
                Poll::Ready(None)
            }
        }
    }
}
