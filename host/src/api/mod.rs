//! Zaqar's v2 API: every rule, limit and error body, shared by all
//! transports.
//!
//! A request flows edge → action → reply:
//!
//! | module | role |
//! |---|---|
//! | [`http`], [`websocket`] | front ends: Zaqar's request hooks, build a [`action::Call`], render the [`action::Reply`] |
//! | [`router`] | HTTP method + path → [`router::Action`] (named after Zaqar's WebSocket actions) |
//! | [`params`], [`body`], [`post_body`], [`validation`] | input parsed once into typed values, with Zaqar's errors |
//! | [`queues`], [`messages`], [`claims`], [`subscriptions`], [`stats`], [`signed_url`], [`health`] | the actions |
//! | [`metadata`], [`queue_patch`] | reserved queue metadata keys; queue PATCH operations |
//! | [`errors`] | every client-visible error: status, title, description |
//! | [`render`], [`http_render`], [`homedoc`], [`checksum`], [`clock`] | output |

pub mod action;
pub mod body;
pub mod checksum;
pub mod claims;
pub mod clock;
pub mod errors;
pub mod health;
pub mod homedoc;
pub mod http;
pub mod http_render;
pub mod messages;
pub mod metadata;
pub mod params;
pub mod post_body;
pub mod queue_patch;
pub mod queues;
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
    notify::Dispatcher,
};

use self::{
    action::{Call, Reply},
    errors::{ApiError, ApiResult},
    router::Action,
    validation::ClientIdRule,
};

/// The stores the API works on.
pub struct Stores {
    /// Queues, messages, claims, subscriptions (shared with the
    /// notification dispatcher).
    pub messages: Arc<MessageStoreBox>,
    /// Pools and flavors.
    pub management: ManagementStoreBox,
}

/// The API: configuration-derived rules and the stores.
pub struct Api {
    limits: Limits,
    client_id_rule: ClientIdRule,
    admin_mode: bool,
    checksum: bool,
    signing_key: Option<String>,
    stores: Stores,
    homedoc: Vec<u8>,
    /// Notifications: subscribers of this node's sockets and the delivery
    /// workers of every subscription.
    notify: Arc<Dispatcher>,
    /// `[notification] allow_private_subscribers`.
    allow_private_subscribers: bool,
}

impl Api {
    /// Builds the API from the configuration.
    pub fn new(config: &Config, stores: Stores, notify: Arc<Dispatcher>) -> Api {
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
        }
    }

    /// The current time as the stores expect it.
    pub fn now_ms(&self) -> u64 {
        clock::now_ms()
    }

    /// Runs one action: the single entry point both front ends use.
    pub async fn dispatch(&self, call: &Call<'_>) -> ApiResult<Reply> {
        match call.action {
            Action::GetHomeDoc => Ok(Reply::HomeDoc),
            Action::PingNode => health::ping(self, call).await,
            Action::CheckNodeHealth => health::check(self, call).await,
            Action::QueueList => queues::list(self, call).await,
            Action::QueueCreate => queues::create(self, call).await,
            Action::QueueGet => queues::get(self, call).await,
            Action::QueueUpdate => queues::update(self, call).await,
            Action::QueueDelete => queues::delete(self, call).await,
            Action::QueueGetStats => stats::get(self, call).await,
            Action::QueuePurge => stats::purge(self, call).await,
            Action::QueueShare => signed_url::create(self, call).await,
            Action::MessageList => messages::list(self, call).await,
            Action::MessageGetMany => messages::get_many(self, call).await,
            Action::MessagePost => messages::post(self, call).await,
            Action::MessageDeleteMany => messages::delete_many(self, call).await,
            Action::MessageGet => messages::get(self, call).await,
            Action::MessageDelete => messages::delete(self, call).await,
            Action::ClaimCreate => claims::create(self, call).await,
            Action::ClaimGet => claims::get(self, call).await,
            Action::ClaimUpdate => claims::update(self, call).await,
            Action::ClaimDelete => claims::delete(self, call).await,
            Action::SubscriptionList => subscriptions::list(self, call).await,
            Action::SubscriptionCreate => subscriptions::create(self, call).await,
            Action::SubscriptionGet => subscriptions::get(self, call).await,
            Action::SubscriptionUpdate => subscriptions::update(self, call).await,
            Action::SubscriptionConfirm => subscriptions::confirm(self, call).await,
            Action::SubscriptionDelete => subscriptions::delete(self, call).await,
        }
    }

    /// Serves one request of any protocol; never fails. A body that did
    /// not arrive whole, or was over the transport's limit, is refused
    /// before anything runs, so it changes nothing.
    async fn respond(&self, request: ApiRequest, body: BodyState) -> ApiResponse {
        let request_id = format!("req-{}", uuid::Uuid::new_v4());
        let refused = match body {
            BodyState::COMPLETE => None,
            BodyState::TOO_LARGE => Some(ApiError::BodyTooLarge),
            _ => Some(ApiError::body("The request body did not arrive whole.")),
        };
        let (status, mut headers, body) = if let Some(error) = refused {
            let response = http::HttpResponse::error(&error);
            (response.status, response.headers, response.body)
        } else if request.protocol == Protocol::WEBSOCKET {
            let response = websocket::handle(self, &request).await;
            (response.status, response.headers, response.body)
        } else {
            let served = CatchUnwind(Box::pin(http::handle(self, &request))).await;
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
        headers.push(("x-openstack-request-id", request_id));
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

impl HostApi for Api {
    async fn handle(&self, request: ApiRequest) -> PluginResult<ApiResponse> {
        Ok(self.respond(request, BodyState::COMPLETE).await)
    }

    async fn serve(&self, request: ApiRequest, body: BodyState) -> PluginResult<ServedResponse> {
        Ok(ServedResponse::whole(self.respond(request, body).await))
    }

    async fn connection_opened(&self, connection: RString, sink: PushSinkBox) -> PluginResult<()> {
        self.notify.pushes.open(connection.as_str(), sink);
        Ok(())
    }

    /// Ends the connection's socket subscriptions, in the registry and in
    /// the store (Zaqar deletes them when the socket closes, §5.4).
    async fn connection_closed(&self, connection: RString) -> PluginResult<()> {
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
