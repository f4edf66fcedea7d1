//! HTTP method + path → [`Action`], the dispatch key every transport shares.
//!
//! Actions are named after Zaqar's WebSocket actions (`queue_create`,
//! `message_post`, ...), extended with the ones only HTTP has
//! (`queue_update`, `queue_share`, `subscription_update`, ...), so a
//! WebSocket frame and an HTTP request reach the very same handler.

/// One operation of the API, whatever transport asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `GET /v2/`: the JSON-Home document.
    GetHomeDoc,
    /// `GET|HEAD /v2/ping`.
    PingNode,
    /// `GET /v2/health` (admin).
    CheckNodeHealth,
    /// `GET /v2/queues`.
    QueueList,
    /// `PUT /v2/queues/{q}`.
    QueueCreate,
    /// `GET /v2/queues/{q}`.
    QueueGet,
    /// `PATCH /v2/queues/{q}` (JSON patch of the metadata).
    QueueUpdate,
    /// `DELETE /v2/queues/{q}`.
    QueueDelete,
    /// `GET /v2/queues/{q}/stats`.
    QueueGetStats,
    /// `POST /v2/queues/{q}/purge`.
    QueuePurge,
    /// `POST /v2/queues/{q}/share`: create a pre-signed URL.
    QueueShare,
    /// `GET /v2/queues/{q}/messages`.
    MessageList,
    /// `GET /v2/queues/{q}/messages?ids=...`.
    MessageGetMany,
    /// `POST /v2/queues/{q}/messages`.
    MessagePost,
    /// `DELETE /v2/queues/{q}/messages?ids=...|pop=N`.
    MessageDeleteMany,
    /// `GET /v2/queues/{q}/messages/{id}`.
    MessageGet,
    /// `DELETE /v2/queues/{q}/messages/{id}`.
    MessageDelete,
    /// `POST /v2/queues/{q}/claims`.
    ClaimCreate,
    /// `GET /v2/queues/{q}/claims/{id}`.
    ClaimGet,
    /// `PATCH /v2/queues/{q}/claims/{id}`.
    ClaimUpdate,
    /// `DELETE /v2/queues/{q}/claims/{id}`.
    ClaimDelete,
    /// `GET /v2/queues/{q}/subscriptions`.
    SubscriptionList,
    /// `POST /v2/queues/{q}/subscriptions`.
    SubscriptionCreate,
    /// `GET /v2/queues/{q}/subscriptions/{id}`.
    SubscriptionGet,
    /// `PATCH /v2/queues/{q}/subscriptions/{id}`.
    SubscriptionUpdate,
    /// `DELETE /v2/queues/{q}/subscriptions/{id}`.
    SubscriptionDelete,
    /// `PUT /v2/queues/{q}/subscriptions/{id}/confirm`.
    SubscriptionConfirm,
    /// `GET /v2/pools` (admin, pooling).
    PoolList,
    /// `GET /v2/pools/{name}`.
    PoolGet,
    /// `PUT /v2/pools/{name}`.
    PoolCreate,
    /// `PATCH /v2/pools/{name}`.
    PoolUpdate,
    /// `DELETE /v2/pools/{name}`.
    PoolDelete,
    /// `GET /v2/flavors` (pooling).
    FlavorList,
    /// `GET /v2/flavors/{name}`.
    FlavorGet,
    /// `PUT /v2/flavors/{name}`.
    FlavorCreate,
    /// `PATCH /v2/flavors/{name}`.
    FlavorUpdate,
    /// `DELETE /v2/flavors/{name}`.
    FlavorDelete,
}

/// Every action with its wire name.
const NAMES: &[(Action, &str)] = &[
    (Action::GetHomeDoc, "get_home_doc"),
    (Action::PingNode, "ping_node"),
    (Action::CheckNodeHealth, "check_node_health"),
    (Action::QueueList, "queue_list"),
    (Action::QueueCreate, "queue_create"),
    (Action::QueueGet, "queue_get"),
    (Action::QueueUpdate, "queue_update"),
    (Action::QueueDelete, "queue_delete"),
    (Action::QueueGetStats, "queue_get_stats"),
    (Action::QueuePurge, "queue_purge"),
    (Action::QueueShare, "queue_share"),
    (Action::MessageList, "message_list"),
    (Action::MessageGetMany, "message_get_many"),
    (Action::MessagePost, "message_post"),
    (Action::MessageDeleteMany, "message_delete_many"),
    (Action::MessageGet, "message_get"),
    (Action::MessageDelete, "message_delete"),
    (Action::ClaimCreate, "claim_create"),
    (Action::ClaimGet, "claim_get"),
    (Action::ClaimUpdate, "claim_update"),
    (Action::ClaimDelete, "claim_delete"),
    (Action::SubscriptionList, "subscription_list"),
    (Action::SubscriptionCreate, "subscription_create"),
    (Action::SubscriptionGet, "subscription_get"),
    (Action::SubscriptionUpdate, "subscription_update"),
    (Action::SubscriptionDelete, "subscription_delete"),
    (Action::SubscriptionConfirm, "subscription_confirm"),
    (Action::PoolList, "pool_list"),
    (Action::PoolGet, "pool_get"),
    (Action::PoolCreate, "pool_create"),
    (Action::PoolUpdate, "pool_update"),
    (Action::PoolDelete, "pool_delete"),
    (Action::FlavorList, "flavor_list"),
    (Action::FlavorGet, "flavor_get"),
    (Action::FlavorCreate, "flavor_create"),
    (Action::FlavorUpdate, "flavor_update"),
    (Action::FlavorDelete, "flavor_delete"),
];

impl Action {
    /// How many actions there are.
    pub const COUNT: usize = NAMES.len();

    /// Every action, in declaration order (`ALL[a.index()] == a`).
    pub const ALL: [Action; Action::COUNT] = {
        let mut all = [Action::GetHomeDoc; Action::COUNT];
        let mut i = 0;
        while i < Action::COUNT {
            all[i] = NAMES[i].0;
            i += 1;
        }
        all
    };

    /// The action's position in [`Action::ALL`], for tables indexed by
    /// action (the metrics' counters).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The wire name (`queue_create`, ...).
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(action, _)| *action == self)
            .map(|(_, name)| *name)
            .unwrap_or("unknown")
    }

    /// Whether the action is part of the pools and flavors admin API
    /// (present only with `admin_mode` and `pooling`).
    pub fn is_pooling_admin(self) -> bool {
        use Action as A;
        matches!(
            self,
            A::PoolList
                | A::PoolGet
                | A::PoolCreate
                | A::PoolUpdate
                | A::PoolDelete
                | A::FlavorList
                | A::FlavorGet
                | A::FlavorCreate
                | A::FlavorUpdate
                | A::FlavorDelete
        )
    }

    /// The action a WebSocket frame names.
    pub fn from_name(name: &str) -> Option<Self> {
        NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(action, _)| *action)
    }
}

/// A routed resource: a path template of Zaqar's v2 route table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// `/`: the version document (no hooks, no headers needed).
    Versions,
    /// `/v2/`.
    HomeDoc,
    /// `/v2/ping`.
    Ping,
    /// `/v2/health` (only in admin mode).
    Health,
    /// `/v2/queues`.
    Queues,
    /// `/v2/queues/{q}`.
    Queue,
    /// `/v2/queues/{q}/stats`.
    QueueStats,
    /// `/v2/queues/{q}/purge`.
    QueuePurge,
    /// `/v2/queues/{q}/share`.
    QueueShare,
    /// `/v2/queues/{q}/messages`.
    Messages,
    /// `/v2/queues/{q}/messages/{id}`.
    Message,
    /// `/v2/queues/{q}/claims`.
    Claims,
    /// `/v2/queues/{q}/claims/{id}`.
    Claim,
    /// `/v2/queues/{q}/subscriptions`.
    Subscriptions,
    /// `/v2/queues/{q}/subscriptions/{id}`.
    Subscription,
    /// `/v2/queues/{q}/subscriptions/{id}/confirm`.
    SubscriptionConfirm,
    /// `/v2/pools` (admin mode and pooling only).
    Pools,
    /// `/v2/pools/{name}`.
    Pool,
    /// `/v2/flavors` (admin mode and pooling only).
    Flavors,
    /// `/v2/flavors/{name}`.
    Flavor,
}

impl Resource {
    /// The methods the resource answers (OPTIONS aside), sorted as falcon
    /// lists them in `Allow`.
    fn methods(self) -> &'static [(&'static str, Action)] {
        use Action as A;
        match self {
            Self::Versions => &[],
            Self::HomeDoc => &[("GET", A::GetHomeDoc)],
            Self::Ping => &[("GET", A::PingNode), ("HEAD", A::PingNode)],
            Self::Health => &[("GET", A::CheckNodeHealth)],
            Self::Queues => &[("GET", A::QueueList)],
            Self::Queue => &[
                ("DELETE", A::QueueDelete),
                ("GET", A::QueueGet),
                ("PATCH", A::QueueUpdate),
                ("PUT", A::QueueCreate),
            ],
            Self::QueueStats => &[("GET", A::QueueGetStats)],
            Self::QueuePurge => &[("POST", A::QueuePurge)],
            Self::QueueShare => &[("POST", A::QueueShare)],
            Self::Messages => &[
                ("DELETE", A::MessageDeleteMany),
                ("GET", A::MessageList),
                ("POST", A::MessagePost),
            ],
            Self::Message => &[("DELETE", A::MessageDelete), ("GET", A::MessageGet)],
            Self::Claims => &[("POST", A::ClaimCreate)],
            Self::Claim => &[
                ("DELETE", A::ClaimDelete),
                ("GET", A::ClaimGet),
                ("PATCH", A::ClaimUpdate),
            ],
            Self::Subscriptions => &[
                ("GET", A::SubscriptionList),
                ("POST", A::SubscriptionCreate),
            ],
            Self::Subscription => &[
                ("DELETE", A::SubscriptionDelete),
                ("GET", A::SubscriptionGet),
                ("PATCH", A::SubscriptionUpdate),
            ],
            Self::SubscriptionConfirm => &[("PUT", A::SubscriptionConfirm)],
            Self::Pools => &[("GET", A::PoolList)],
            Self::Pool => &[
                ("DELETE", A::PoolDelete),
                ("GET", A::PoolGet),
                ("PATCH", A::PoolUpdate),
                ("PUT", A::PoolCreate),
            ],
            Self::Flavors => &[("GET", A::FlavorList)],
            Self::Flavor => &[
                ("DELETE", A::FlavorDelete),
                ("GET", A::FlavorGet),
                ("PATCH", A::FlavorUpdate),
                ("PUT", A::FlavorCreate),
            ],
        }
    }

    /// The action for `method`, if the resource has one.
    pub fn action(self, method: &str) -> Option<Action> {
        self.methods()
            .iter()
            .find(|(m, _)| *m == method)
            .map(|(_, action)| *action)
    }

    /// The `Allow` header value: the resource's methods, then OPTIONS.
    pub fn allow(self) -> String {
        let mut allow: Vec<&str> = self.methods().iter().map(|(m, _)| *m).collect();
        allow.dedup();
        allow.push("OPTIONS");
        allow.join(", ")
    }
}

/// A matched route: the resource and the path's fields, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Which template matched.
    pub resource: Resource,
    /// The decoded request path (for Location headers and signatures).
    pub path: String,
    /// `{queue_name}`, when the template has one (may be empty or invalid:
    /// the queue hook validates it).
    pub queue: Option<String>,
    /// `{message_id}`, `{claim_id}` or `{subscription_id}`.
    pub id: Option<String>,
}

/// Matches a raw (percent-encoded) path against the v2 route table. Like
/// falcon, the whole path is decoded first and trailing slashes are not
/// stripped; `/v2/health` exists only in admin mode.
pub fn route(raw_path: &str, admin_mode: bool) -> Option<Route> {
    route_with(raw_path, admin_mode, false)
}

/// A path's segments between slashes, found byte by byte: a path has a
/// handful of short segments, for which `str::split`'s searcher costs
/// more than the search.
fn segments(path: &str) -> Vec<&str> {
    let mut segments = Vec::with_capacity(6);
    let mut start = 0;
    for (at, byte) in path.bytes().enumerate() {
        if byte == b'/' {
            segments.push(&path[start..at]);
            start = at + 1;
        }
    }
    segments.push(&path[start..]);
    segments
}

/// [`route`], with the pools and flavors routes when `admin_mode` and
/// `pooling` are both on (Zaqar's private endpoints).
pub fn route_with(raw_path: &str, admin_mode: bool, pooling: bool) -> Option<Route> {
    let admin_pooling = admin_mode && pooling;
    let path = super::params::percent_decoded(raw_path);
    let segments = segments(path.strip_prefix('/')?);
    let field = |index: usize| Some(segments[index].to_string());
    let (resource, queue, id) = match segments.as_slice() {
        [""] => (Resource::Versions, None, None),
        ["v2", ""] => (Resource::HomeDoc, None, None),
        ["v2", "ping"] => (Resource::Ping, None, None),
        ["v2", "health"] if admin_mode => (Resource::Health, None, None),
        ["v2", "queues"] => (Resource::Queues, None, None),
        ["v2", "pools"] if admin_pooling => (Resource::Pools, None, None),
        ["v2", "pools", _] if admin_pooling => (Resource::Pool, None, field(2)),
        ["v2", "flavors"] if admin_pooling => (Resource::Flavors, None, None),
        ["v2", "flavors", _] if admin_pooling => (Resource::Flavor, None, field(2)),
        ["v2", "queues", _] => (Resource::Queue, field(2), None),
        ["v2", "queues", _, tail] => {
            let resource = match *tail {
                "stats" => Resource::QueueStats,
                "purge" => Resource::QueuePurge,
                "share" => Resource::QueueShare,
                "messages" => Resource::Messages,
                "claims" => Resource::Claims,
                "subscriptions" => Resource::Subscriptions,
                _ => return None,
            };
            (resource, field(2), None)
        }
        ["v2", "queues", _, collection, _] => {
            let resource = match *collection {
                "messages" => Resource::Message,
                "claims" => Resource::Claim,
                "subscriptions" => Resource::Subscription,
                _ => return None,
            };
            (resource, field(2), field(4))
        }
        ["v2", "queues", _, "subscriptions", _, "confirm"] => {
            (Resource::SubscriptionConfirm, field(2), field(4))
        }
        _ => return None,
    };
    Some(Route {
        resource,
        path,
        queue,
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(path: &str) -> Option<Resource> {
        route(path, true).map(|r| r.resource)
    }

    #[test]
    fn every_v2_template_is_routed() {
        assert_eq!(resource("/"), Some(Resource::Versions));
        assert_eq!(resource("/v2/"), Some(Resource::HomeDoc));
        assert_eq!(resource("/v2/ping"), Some(Resource::Ping));
        assert_eq!(resource("/v2/health"), Some(Resource::Health));
        assert_eq!(resource("/v2/queues"), Some(Resource::Queues));
        assert_eq!(resource("/v2/queues/q"), Some(Resource::Queue));
        assert_eq!(resource("/v2/queues/q/stats"), Some(Resource::QueueStats));
        assert_eq!(resource("/v2/queues/q/purge"), Some(Resource::QueuePurge));
        assert_eq!(resource("/v2/queues/q/share"), Some(Resource::QueueShare));
        assert_eq!(resource("/v2/queues/q/messages"), Some(Resource::Messages));
        assert_eq!(resource("/v2/queues/q/messages/m"), Some(Resource::Message));
        assert_eq!(resource("/v2/queues/q/claims"), Some(Resource::Claims));
        assert_eq!(resource("/v2/queues/q/claims/c"), Some(Resource::Claim));
        assert_eq!(
            resource("/v2/queues/q/subscriptions"),
            Some(Resource::Subscriptions)
        );
        assert_eq!(
            resource("/v2/queues/q/subscriptions/s"),
            Some(Resource::Subscription)
        );
        assert_eq!(
            resource("/v2/queues/q/subscriptions/s/confirm"),
            Some(Resource::SubscriptionConfirm)
        );
    }

    #[test]
    fn v2_without_slash_and_trailing_slashes_are_not_routes() {
        assert_eq!(resource("/v2"), None);
        assert_eq!(resource("/v2/queues/q1/"), None);
        assert_eq!(resource("/v2/nope"), None);
        assert_eq!(resource("/v2/queues/q/stats/x"), None);
    }

    #[test]
    fn queues_with_a_trailing_slash_is_an_empty_queue_name() {
        let route = route("/v2/queues/", true).unwrap();
        assert_eq!(route.resource, Resource::Queue);
        assert_eq!(route.queue.as_deref(), Some(""));
    }

    #[test]
    fn invalid_utf8_in_an_escaped_path_is_replaced_and_plain_paths_kept() {
        let route = route("/v2/queues/a%FFb/messages/m+1", true).unwrap();
        assert_eq!(route.queue.as_deref(), Some("a\u{FFFD}b"));
        assert_eq!(
            route.id.as_deref(),
            Some("m+1"),
            "+ is not a space in a path"
        );
        assert_eq!(route.path, "/v2/queues/a\u{FFFD}b/messages/m+1");
    }

    #[test]
    fn path_fields_are_percent_decoded() {
        let route = route("/v2/queues/bad%20name!/messages/a%2Db", true).unwrap();
        assert_eq!(route.queue.as_deref(), Some("bad name!"));
        assert_eq!(route.id.as_deref(), Some("a-b"));
    }

    #[test]
    fn pools_and_flavors_exist_only_with_admin_mode_and_pooling() {
        for (admin, pooling) in [(false, false), (true, false), (false, true)] {
            assert_eq!(route_with("/v2/pools", admin, pooling), None);
            assert_eq!(route_with("/v2/flavors/f", admin, pooling), None);
        }
        let pool = route_with("/v2/pools/p1", true, true).unwrap();
        assert_eq!(
            (pool.resource, pool.id.as_deref()),
            (Resource::Pool, Some("p1"))
        );
        assert_eq!(
            route_with("/v2/flavors", true, true).map(|r| r.resource),
            Some(Resource::Flavors)
        );
        assert_eq!(Resource::Pool.allow(), "DELETE, GET, PATCH, PUT, OPTIONS");
        assert_eq!(Action::from_name("pool_create"), Some(Action::PoolCreate));
    }

    #[test]
    fn every_action_is_listed_once_in_declaration_order() {
        for (i, action) in Action::ALL.iter().enumerate() {
            assert_eq!(action.index(), i, "{action:?}");
        }
    }

    #[test]
    fn health_exists_only_in_admin_mode() {
        assert_eq!(route("/v2/health", false), None);
    }

    #[test]
    fn allow_lists_methods_in_falcons_order_then_options() {
        assert_eq!(Resource::Queue.allow(), "DELETE, GET, PATCH, PUT, OPTIONS");
        assert_eq!(Resource::Ping.allow(), "GET, HEAD, OPTIONS");
    }

    #[test]
    fn methods_map_to_websocket_action_names() {
        assert_eq!(
            Resource::Queue.action("PUT").map(Action::name),
            Some("queue_create")
        );
        assert_eq!(
            Resource::Messages.action("POST").map(Action::name),
            Some("message_post")
        );
        assert_eq!(
            Resource::Claims.action("POST").map(Action::name),
            Some("claim_create")
        );
        assert_eq!(Resource::Queue.action("POST"), None);
        assert_eq!(
            Action::from_name("subscription_confirm"),
            Some(Action::SubscriptionConfirm)
        );
        assert_eq!(Action::from_name("frobnicate"), None);
    }
}
