//! The typed command: what a request asks for, parsed once at the edge.
//!
//! Each front end turns its request into a [`Source`] (HTTP: the route, the
//! query string and the body; WebSocket: the fields of the frame's body) and
//! [`Command::build`] reads the action's fields from it, in the order Zaqar
//! reads them, so that a request with several faults reports the same one
//! over either transport. Handlers receive the command's typed fields and
//! never look a parameter up by name.
//!
//! Adding an action: a variant here (with its fields), its wire name in
//! [`super::router`] (and an HTTP route, and/or the WebSocket list in
//! [`super::websocket`]), a branch in [`Command::build`], a handler, and its
//! branch in [`super::Api::dispatch`]; the compiler then points at every
//! renderer that must say how the reply looks.

use std::borrow::Cow;

use super::{
    errors::{ApiError, ApiResult},
    post_body::MessagesText,
    router::Action,
    validation::QueueName,
    Api,
};

/// The named parameters an action may read (HTTP query parameters,
/// WebSocket body fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// `marker`.
    Marker,
    /// `limit`.
    Limit,
    /// `detailed`.
    Detailed,
    /// `name`.
    Name,
    /// `with_count`.
    WithCount,
    /// `echo`.
    Echo,
    /// `include_claimed`.
    IncludeClaimed,
    /// `include_delayed`.
    IncludeDelayed,
    /// `ids` (WebSocket: `message_ids`).
    Ids,
    /// `claim_ids`.
    ClaimIds,
    /// `pop`.
    Pop,
    /// `claim_id` (message deletion).
    ClaimId,
}

impl Param {
    /// Every parameter.
    pub const ALL: [Param; 12] = [
        Param::Marker,
        Param::Limit,
        Param::Detailed,
        Param::Name,
        Param::WithCount,
        Param::Echo,
        Param::IncludeClaimed,
        Param::IncludeDelayed,
        Param::Ids,
        Param::ClaimIds,
        Param::Pop,
        Param::ClaimId,
    ];

    /// The parameter's name, as HTTP spells it (and as error messages name it).
    pub fn name(self) -> &'static str {
        match self {
            Self::Marker => "marker",
            Self::Limit => "limit",
            Self::Detailed => "detailed",
            Self::Name => "name",
            Self::WithCount => "with_count",
            Self::Echo => "echo",
            Self::IncludeClaimed => "include_claimed",
            Self::IncludeDelayed => "include_delayed",
            Self::Ids => "ids",
            Self::ClaimIds => "claim_ids",
            Self::Pop => "pop",
            Self::ClaimId => "claim_id",
        }
    }
}

/// The JSON documents actions read. Over HTTP each is the request body;
/// over WebSocket each is made of fields of the frame's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    /// Queue metadata (`queue_create`).
    QueueMetadata,
    /// A JSON patch of queue metadata (`queue_update`).
    QueuePatch,
    /// `{"resource_types"}` (`queue_purge`).
    Purge,
    /// `{"paths", "methods", "expires"}` (`queue_share`).
    Share,
    /// `{"ttl", "grace"}` (claims).
    Claim,
    /// `{"subscriber", "ttl", "options"}` (subscriptions).
    Subscription,
    /// `{"confirmed"}` (`subscription_confirm`).
    Confirmation,
    /// `{"uri", "weight", "flavor", "options"}` (`pool_create`, `pool_update`).
    Pool,
    /// `{"pool_list", "capabilities"}` (`flavor_create`, `flavor_update`).
    Flavor,
}

impl Document {
    /// Every document.
    pub const ALL: [Document; 9] = [
        Document::QueueMetadata,
        Document::QueuePatch,
        Document::Purge,
        Document::Share,
        Document::Claim,
        Document::Subscription,
        Document::Confirmation,
        Document::Pool,
        Document::Flavor,
    ];
}

/// A message post's payload as it arrived.
#[derive(Debug, Clone)]
pub enum PostBody<'a> {
    /// A whole `{"messages": [...]}` document (HTTP), `None` when the request
    /// had no body.
    Document(Option<&'a [u8]>),
    /// The JSON text of a frame's `messages` field (WebSocket), `None` when
    /// absent.
    Messages(Option<&'a MessagesText<'a>>),
}

/// Where a request's typed fields come from: one implementation per front
/// end. Values are checked for type here (with Zaqar's error for each
/// transport); ranges are the handlers' business.
pub trait Source {
    /// A text parameter.
    fn text(&self, param: Param) -> ApiResult<Option<Cow<'_, str>>>;
    /// An integer parameter.
    fn int(&self, param: Param) -> ApiResult<Option<i64>>;
    /// A boolean parameter.
    fn boolean(&self, param: Param) -> ApiResult<Option<bool>>;
    /// A list parameter; `None` when absent or empty.
    fn list(&self, param: Param) -> ApiResult<Option<Vec<String>>>;
    /// Every parameter the queue listing does not read, as metadata filters
    /// (HTTP only).
    fn filters(&self) -> Vec<(String, String)>;
    /// A JSON document, as received; `None` when the request had none.
    fn document(&self, document: Document) -> Option<Cow<'_, [u8]>>;
    /// A message post's payload.
    fn post_body(&self) -> PostBody<'_>;
}

/// `queue_list`'s parameters.
#[derive(Debug, Clone, Default)]
pub struct QueueListArgs {
    pub marker: Option<String>,
    pub limit: Option<i64>,
    pub detailed: Option<bool>,
    pub name: Option<String>,
    pub with_count: Option<bool>,
    /// Metadata filters: `(key, value)`.
    pub filters: Vec<(String, String)>,
}

/// `message_list`'s parameters.
#[derive(Debug, Clone, Default)]
pub struct MessageListArgs {
    pub marker: Option<String>,
    pub limit: Option<i64>,
    pub echo: Option<bool>,
    pub include_claimed: Option<bool>,
    pub include_delayed: Option<bool>,
}

/// `message_delete_many`'s parameters.
#[derive(Debug, Clone, Default)]
pub struct DeleteManyArgs {
    pub ids: Option<Vec<String>>,
    /// Read only when `message_delete_with_claim_id` is on.
    pub claim_ids: Option<Vec<String>>,
    pub pop: Option<i64>,
}

/// A listing's page parameters (`subscription_list`).
#[derive(Debug, Clone, Default)]
pub struct PageArgs {
    pub marker: Option<String>,
    pub limit: Option<i64>,
}

/// A pool or flavor listing's parameters.
#[derive(Debug, Clone, Default)]
pub struct CatalogListArgs {
    pub marker: Option<String>,
    pub limit: Option<i64>,
    pub detailed: Option<bool>,
}

/// A JSON document an action reads, as received (`None`: no body).
pub type Doc<'a> = Option<Cow<'a, [u8]>>;

/// One request, parsed: the action and its validated fields. Queue names
/// are valid; ids, limits and markers have their types; JSON documents are
/// carried as the bytes received and read once by the handler, which keeps
/// Zaqar's order of checks (some need the queue's metadata first).
#[derive(Debug)]
pub enum Command<'a> {
    GetHomeDoc,
    PingNode,
    CheckNodeHealth,
    QueueList(QueueListArgs),
    QueueCreate {
        queue: QueueName,
        metadata: Doc<'a>,
    },
    QueueGet {
        queue: QueueName,
    },
    QueueUpdate {
        queue: QueueName,
        patch: Doc<'a>,
    },
    QueueDelete {
        queue: QueueName,
    },
    QueueGetStats {
        queue: QueueName,
    },
    QueuePurge {
        queue: QueueName,
        body: Doc<'a>,
    },
    QueueShare {
        queue: QueueName,
        body: Doc<'a>,
    },
    MessageList {
        queue: QueueName,
        args: MessageListArgs,
    },
    MessageGetMany {
        queue: QueueName,
        ids: Vec<String>,
    },
    MessagePost {
        queue: QueueName,
        body: PostBody<'a>,
    },
    MessageDeleteMany {
        queue: QueueName,
        args: DeleteManyArgs,
    },
    MessageGet {
        queue: QueueName,
        id: String,
    },
    MessageDelete {
        queue: QueueName,
        id: String,
        claim_id: Option<String>,
    },
    ClaimCreate {
        queue: QueueName,
        limit: Option<i64>,
        body: Doc<'a>,
    },
    ClaimGet {
        queue: QueueName,
        id: String,
    },
    ClaimUpdate {
        queue: QueueName,
        id: String,
        body: Doc<'a>,
    },
    ClaimDelete {
        queue: QueueName,
        id: String,
    },
    SubscriptionList {
        queue: QueueName,
        args: PageArgs,
    },
    SubscriptionCreate {
        queue: QueueName,
        body: Doc<'a>,
    },
    SubscriptionGet {
        queue: QueueName,
        id: String,
    },
    SubscriptionUpdate {
        queue: QueueName,
        id: String,
        body: Doc<'a>,
    },
    SubscriptionConfirm {
        queue: QueueName,
        id: String,
        body: Doc<'a>,
    },
    SubscriptionDelete {
        queue: QueueName,
        id: String,
    },
    PoolList(CatalogListArgs),
    PoolGet {
        name: String,
        detailed: Option<bool>,
    },
    PoolCreate {
        name: String,
        body: Doc<'a>,
    },
    PoolUpdate {
        name: String,
        body: Doc<'a>,
    },
    PoolDelete {
        name: String,
    },
    FlavorList(CatalogListArgs),
    FlavorGet {
        name: String,
    },
    FlavorCreate {
        name: String,
        body: Doc<'a>,
    },
    FlavorUpdate {
        name: String,
        body: Doc<'a>,
    },
    FlavorDelete {
        name: String,
    },
}

impl<'a> Command<'a> {
    /// Reads `action`'s fields from `source`. `queue` and `id` are the
    /// target the front end found (path segments, frame fields).
    pub fn build(
        api: &Api,
        action: Action,
        queue: Option<QueueName>,
        id: Option<String>,
        source: &'a dyn Source,
    ) -> ApiResult<Self> {
        use Action as A;
        let queue = || queue.clone().ok_or(ApiError::InvalidQueueIdentification);
        let id = || {
            id.clone()
                .ok_or_else(|| ApiError::api("Missing resource id."))
        };
        let owned = |text: Option<Cow<'_, str>>| text.map(Cow::into_owned);
        Ok(match action {
            A::GetHomeDoc => Self::GetHomeDoc,
            A::PingNode => Self::PingNode,
            A::CheckNodeHealth => Self::CheckNodeHealth,
            A::QueueList => Self::QueueList(QueueListArgs {
                marker: owned(source.text(Param::Marker)?),
                limit: source.int(Param::Limit)?,
                detailed: source.boolean(Param::Detailed)?,
                name: owned(source.text(Param::Name)?),
                with_count: source.boolean(Param::WithCount)?,
                filters: source.filters(),
            }),
            A::QueueCreate => Self::QueueCreate {
                queue: queue()?,
                metadata: source.document(Document::QueueMetadata),
            },
            A::QueueGet => Self::QueueGet { queue: queue()? },
            A::QueueUpdate => Self::QueueUpdate {
                queue: queue()?,
                patch: source.document(Document::QueuePatch),
            },
            A::QueueDelete => Self::QueueDelete { queue: queue()? },
            A::QueueGetStats => Self::QueueGetStats { queue: queue()? },
            A::QueuePurge => Self::QueuePurge {
                queue: queue()?,
                body: source.document(Document::Purge),
            },
            A::QueueShare => Self::QueueShare {
                queue: queue()?,
                body: source.document(Document::Share),
            },
            A::MessageList => Self::MessageList {
                args: MessageListArgs {
                    marker: owned(source.text(Param::Marker)?),
                    limit: source.int(Param::Limit)?,
                    echo: source.boolean(Param::Echo)?,
                    include_claimed: source.boolean(Param::IncludeClaimed)?,
                    include_delayed: source.boolean(Param::IncludeDelayed)?,
                },
                queue: queue()?,
            },
            A::MessageGetMany => Self::MessageGetMany {
                ids: source.list(Param::Ids)?.unwrap_or_default(),
                queue: queue()?,
            },
            A::MessagePost => Self::MessagePost {
                queue: queue()?,
                body: source.post_body(),
            },
            A::MessageDeleteMany => {
                let ids = source.list(Param::Ids)?;
                let claim_ids = if api.limits.message_delete_with_claim_id {
                    source.list(Param::ClaimIds)?
                } else {
                    None
                };
                let pop = source.int(Param::Pop)?;
                Self::MessageDeleteMany {
                    args: DeleteManyArgs {
                        ids,
                        claim_ids,
                        pop,
                    },
                    queue: queue()?,
                }
            }
            A::MessageGet => Self::MessageGet {
                id: id()?,
                queue: queue()?,
            },
            A::MessageDelete => Self::MessageDelete {
                id: id()?,
                claim_id: owned(source.text(Param::ClaimId)?),
                queue: queue()?,
            },
            A::ClaimCreate => Self::ClaimCreate {
                limit: source.int(Param::Limit)?,
                body: source.document(Document::Claim),
                queue: queue()?,
            },
            A::ClaimGet => Self::ClaimGet {
                id: id()?,
                queue: queue()?,
            },
            A::ClaimUpdate => Self::ClaimUpdate {
                id: id()?,
                body: source.document(Document::Claim),
                queue: queue()?,
            },
            A::ClaimDelete => Self::ClaimDelete {
                id: id()?,
                queue: queue()?,
            },
            A::SubscriptionList => Self::SubscriptionList {
                args: PageArgs {
                    marker: owned(source.text(Param::Marker)?),
                    limit: source.int(Param::Limit)?,
                },
                queue: queue()?,
            },
            A::SubscriptionCreate => Self::SubscriptionCreate {
                body: source.document(Document::Subscription),
                queue: queue()?,
            },
            A::SubscriptionGet => Self::SubscriptionGet {
                id: id()?,
                queue: queue()?,
            },
            A::SubscriptionUpdate => Self::SubscriptionUpdate {
                id: id()?,
                body: source.document(Document::Subscription),
                queue: queue()?,
            },
            A::SubscriptionConfirm => Self::SubscriptionConfirm {
                id: id()?,
                body: source.document(Document::Confirmation),
                queue: queue()?,
            },
            A::SubscriptionDelete => Self::SubscriptionDelete {
                id: id()?,
                queue: queue()?,
            },
            A::PoolList | A::FlavorList => {
                let args = CatalogListArgs {
                    marker: owned(source.text(Param::Marker)?),
                    limit: source.int(Param::Limit)?,
                    detailed: source.boolean(Param::Detailed)?,
                };
                if action == A::PoolList {
                    Self::PoolList(args)
                } else {
                    Self::FlavorList(args)
                }
            }
            A::PoolGet => Self::PoolGet {
                detailed: source.boolean(Param::Detailed)?,
                name: id()?,
            },
            A::PoolCreate => Self::PoolCreate {
                name: id()?,
                body: source.document(Document::Pool),
            },
            A::PoolUpdate => Self::PoolUpdate {
                name: id()?,
                body: source.document(Document::Pool),
            },
            A::PoolDelete => Self::PoolDelete { name: id()? },
            A::FlavorGet => Self::FlavorGet { name: id()? },
            A::FlavorCreate => Self::FlavorCreate {
                name: id()?,
                body: source.document(Document::Flavor),
            },
            A::FlavorUpdate => Self::FlavorUpdate {
                name: id()?,
                body: source.document(Document::Flavor),
            },
            A::FlavorDelete => Self::FlavorDelete { name: id()? },
        })
    }

    /// The action (the wire name and dispatch key).
    pub fn action(&self) -> Action {
        use Action as A;
        match self {
            Self::GetHomeDoc => A::GetHomeDoc,
            Self::PingNode => A::PingNode,
            Self::CheckNodeHealth => A::CheckNodeHealth,
            Self::QueueList(_) => A::QueueList,
            Self::QueueCreate { .. } => A::QueueCreate,
            Self::QueueGet { .. } => A::QueueGet,
            Self::QueueUpdate { .. } => A::QueueUpdate,
            Self::QueueDelete { .. } => A::QueueDelete,
            Self::QueueGetStats { .. } => A::QueueGetStats,
            Self::QueuePurge { .. } => A::QueuePurge,
            Self::QueueShare { .. } => A::QueueShare,
            Self::MessageList { .. } => A::MessageList,
            Self::MessageGetMany { .. } => A::MessageGetMany,
            Self::MessagePost { .. } => A::MessagePost,
            Self::MessageDeleteMany { .. } => A::MessageDeleteMany,
            Self::MessageGet { .. } => A::MessageGet,
            Self::MessageDelete { .. } => A::MessageDelete,
            Self::ClaimCreate { .. } => A::ClaimCreate,
            Self::ClaimGet { .. } => A::ClaimGet,
            Self::ClaimUpdate { .. } => A::ClaimUpdate,
            Self::ClaimDelete { .. } => A::ClaimDelete,
            Self::SubscriptionList { .. } => A::SubscriptionList,
            Self::SubscriptionCreate { .. } => A::SubscriptionCreate,
            Self::SubscriptionGet { .. } => A::SubscriptionGet,
            Self::SubscriptionUpdate { .. } => A::SubscriptionUpdate,
            Self::SubscriptionConfirm { .. } => A::SubscriptionConfirm,
            Self::SubscriptionDelete { .. } => A::SubscriptionDelete,
            Self::PoolList(_) => A::PoolList,
            Self::PoolGet { .. } => A::PoolGet,
            Self::PoolCreate { .. } => A::PoolCreate,
            Self::PoolUpdate { .. } => A::PoolUpdate,
            Self::PoolDelete { .. } => A::PoolDelete,
            Self::FlavorList(_) => A::FlavorList,
            Self::FlavorGet { .. } => A::FlavorGet,
            Self::FlavorCreate { .. } => A::FlavorCreate,
            Self::FlavorUpdate { .. } => A::FlavorUpdate,
            Self::FlavorDelete { .. } => A::FlavorDelete,
        }
    }

    /// The queue the command addresses, if any.
    pub fn queue(&self) -> Option<&QueueName> {
        match self {
            Self::GetHomeDoc
            | Self::PingNode
            | Self::CheckNodeHealth
            | Self::QueueList(_)
            | Self::PoolList(_)
            | Self::PoolGet { .. }
            | Self::PoolCreate { .. }
            | Self::PoolUpdate { .. }
            | Self::PoolDelete { .. }
            | Self::FlavorList(_)
            | Self::FlavorGet { .. }
            | Self::FlavorCreate { .. }
            | Self::FlavorUpdate { .. }
            | Self::FlavorDelete { .. } => None,
            Self::QueueCreate { queue, .. }
            | Self::QueueGet { queue }
            | Self::QueueUpdate { queue, .. }
            | Self::QueueDelete { queue }
            | Self::QueueGetStats { queue }
            | Self::QueuePurge { queue, .. }
            | Self::QueueShare { queue, .. }
            | Self::MessageList { queue, .. }
            | Self::MessageGetMany { queue, .. }
            | Self::MessagePost { queue, .. }
            | Self::MessageDeleteMany { queue, .. }
            | Self::MessageGet { queue, .. }
            | Self::MessageDelete { queue, .. }
            | Self::ClaimCreate { queue, .. }
            | Self::ClaimGet { queue, .. }
            | Self::ClaimUpdate { queue, .. }
            | Self::ClaimDelete { queue, .. }
            | Self::SubscriptionList { queue, .. }
            | Self::SubscriptionCreate { queue, .. }
            | Self::SubscriptionGet { queue, .. }
            | Self::SubscriptionUpdate { queue, .. }
            | Self::SubscriptionConfirm { queue, .. }
            | Self::SubscriptionDelete { queue, .. } => Some(queue),
        }
    }

    /// The message, claim or subscription id the command addresses, if any.
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::MessageGet { id, .. }
            | Self::MessageDelete { id, .. }
            | Self::ClaimGet { id, .. }
            | Self::ClaimUpdate { id, .. }
            | Self::ClaimDelete { id, .. }
            | Self::SubscriptionGet { id, .. }
            | Self::SubscriptionUpdate { id, .. }
            | Self::SubscriptionConfirm { id, .. }
            | Self::SubscriptionDelete { id, .. } => Some(id),
            Self::PoolGet { name, .. }
            | Self::PoolCreate { name, .. }
            | Self::PoolUpdate { name, .. }
            | Self::PoolDelete { name }
            | Self::FlavorGet { name }
            | Self::FlavorCreate { name, .. }
            | Self::FlavorUpdate { name, .. }
            | Self::FlavorDelete { name } => Some(name),
            _ => None,
        }
    }
}
