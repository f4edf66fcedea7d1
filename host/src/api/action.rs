//! The transport-neutral action layer: a [`Caller`] and a
//! [`super::command::Command`] go in, a [`Reply`] (what happened, as data)
//! comes out. Every Zaqar rule runs between the two; the HTTP and WebSocket
//! front ends only build commands and render replies.

use plugin_api::storage::{
    PostedMessage, QueueEntry, QueueStats, StoredClaim, StoredMessage, SubscriptionRecord,
};
use serde_json::{Map, Value};

use super::{
    health::HealthReport,
    signed_url::SignedUrlDocument,
    validation::{ClientId, ProjectId},
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
    /// with no auth strategy configured, Zaqar takes the policy roles from
    /// this header, so `X-Roles: admin` grants the admin-only actions.
    pub fn roles_grant_admin(roles: Option<&str>) -> bool {
        roles.is_some_and(|roles| {
            roles
                .split(',')
                .any(|role| role.trim().eq_ignore_ascii_case("admin"))
        })
    }
}

/// The parameters that reproduce a listing, in the order Zaqar read them;
/// HTTP renders them as the listing's `next` link, with `marker` last.
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
    /// `stream` is set for a socket's own subscription.
    SubscriptionCreated {
        id: String,
        created: bool,
        stream: Option<SocketStream>,
    },
    /// Done; nothing to say (DELETE, PATCH claim, purge, confirm, ...).
    Done,
}

/// What a socket subscription's answer adds (see [`crate::streams`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketStream {
    /// The socket's session, for `session_resume`.
    pub session_id: String,
    /// The queue's last seq when the subscription started.
    pub last_seq: u64,
}
