//! The transport-neutral action layer: a [`Call`] (an [`Action`] with its
//! caller, target and parameters) goes in, a [`Reply`] (what happened, as
//! data) comes out. Every Zaqar rule runs between the two; the HTTP and
//! WebSocket front ends only build calls and render replies.

use plugin_api::storage::{
    PostedMessage, QueueEntry, QueueStats, StoredClaim, StoredMessage, SubscriptionRecord,
};
use serde_json::{Map, Value};

use super::{
    errors::{ApiError, ApiResult},
    health::HealthReport,
    params::Params,
    router::Action,
    signed_url::SignedUrlDocument,
    validation::{ClientId, ProjectId, QueueName},
};

/// Who is asking: the identity the header hooks established.
#[derive(Debug, Clone)]
pub struct Caller {
    /// `X-Project-ID`.
    pub project: ProjectId,
    /// `Client-ID`.
    pub client_id: ClientId,
    /// Whether `X-Roles` names `admin` (Zaqar's no-auth policy source).
    pub admin: bool,
}

impl Caller {
    /// Whether an `X-Roles` header value (comma separated) names `admin`:
    /// with no auth strategy, Zaqar takes policy roles from it (§8 #31).
    pub fn roles_grant_admin(roles: Option<&str>) -> bool {
        roles.is_some_and(|roles| {
            roles
                .split(',')
                .any(|role| role.trim().eq_ignore_ascii_case("admin"))
        })
    }
}

/// One invocation of an action.
pub struct Call<'a> {
    /// What to do.
    pub action: Action,
    /// Who asks.
    pub caller: &'a Caller,
    /// The queue, already validated with the project.
    pub queue: Option<QueueName>,
    /// The message, claim or subscription id the action addresses.
    pub id: Option<String>,
    /// Named parameters (HTTP query string, WebSocket body fields).
    pub params: &'a dyn Params,
    /// The JSON document the action reads, as received; `None` when the
    /// request had no body.
    pub body: Option<&'a [u8]>,
}

impl Call<'_> {
    /// The queue the action addresses.
    pub fn queue(&self) -> ApiResult<&QueueName> {
        self.queue
            .as_ref()
            .ok_or(ApiError::InvalidQueueIdentification)
    }

    /// The id the action addresses.
    pub fn id(&self) -> ApiResult<&str> {
        self.id
            .as_deref()
            .ok_or_else(|| ApiError::api("Missing resource id."))
    }
}

/// The parameters that reproduce a listing, in the order Zaqar read them;
/// HTTP renders them as the `next` link (§1.8) with `marker` last.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageQuery {
    /// `(name, rendered value)` pairs, `marker` excluded.
    pub pairs: Vec<(&'static str, String)>,
    /// Whether the request itself carried a `marker` (it then keeps its
    /// position, first; otherwise it is appended last).
    pub marker_first: bool,
}

/// What an action did, as data for a front end to render.
#[derive(Debug)]
pub enum Reply {
    /// The JSON-Home document.
    HomeDoc,
    /// Ping: whether the store answered.
    Pong { alive: bool },
    /// The health report.
    Health(HealthReport),
    /// A page of queues.
    QueueList {
        /// The queues (metadata with reserved defaults when `detailed`).
        queues: Vec<(QueueEntry, Option<Map<String, Value>>)>,
        /// `count` when `with_count=true`.
        count: Option<u64>,
        /// The listing's parameters for the next link.
        page: PageQuery,
    },
    /// A queue PUT: whether it was new.
    QueueCreated { created: bool },
    /// Queue metadata: as stored (`raw`) and with reserved defaults filled.
    QueueMetadata {
        raw: Map<String, Value>,
        shown: Map<String, Value>,
    },
    /// Queue statistics.
    Stats(QueueStats),
    /// A pre-signed URL.
    SignedUrl(SignedUrlDocument),
    /// A page of messages.
    MessageList {
        messages: Vec<StoredMessage>,
        page: PageQuery,
    },
    /// Messages fetched by id.
    MessageGetMany(Vec<StoredMessage>),
    /// One message.
    Message(StoredMessage),
    /// Posted messages, in order.
    Posted(Vec<PostedMessage>),
    /// Popped messages.
    Popped(Vec<StoredMessage>),
    /// A new claim (its messages empty when nothing was claimable).
    ClaimCreated(StoredClaim),
    /// A claim.
    Claim(StoredClaim),
    /// A page of subscriptions.
    SubscriptionList {
        subscriptions: Vec<SubscriptionRecord>,
        page: PageQuery,
    },
    /// One subscription.
    Subscription(SubscriptionRecord),
    /// A subscription POST: its id (an existing unconfirmed one's on a
    /// duplicate) and whether it was written now.
    SubscriptionCreated { id: String, created: bool },
    /// Done; nothing to say (DELETE, PATCH claim, purge, confirm, ...).
    Done,
}
