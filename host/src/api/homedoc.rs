//! The JSON-Home document at `GET /v2/` (`v2_0/homedoc.py`) and the
//! version document at `GET /` (`transport/wsgi/version.py`). Both are
//! built once per `Api`, never by mutating shared state (Zaqar's admin
//! home document leaks into the public one that way).

use serde::Serialize;
use serde_json::{json, Map, Value};

/// One `rel/<name>` entry: (name, href template, href vars, allowed
/// methods, whether it accepts posts).
type Rel = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static [&'static str],
    bool,
);

const QUEUE: (&str, &str) = ("queue_name", "param/queue_name");

const PUBLIC: &[Rel] = &[
    (
        "queues",
        "/v2/queues{?marker,limit,detailed}",
        &[
            ("marker", "param/marker"),
            ("limit", "param/queue_limit"),
            ("detailed", "param/detailed"),
        ],
        &["GET"],
        false,
    ),
    (
        "queue",
        "/v2/queues/{queue_name}",
        &[QUEUE],
        &["GET", "PUT", "DELETE", "PATCH"],
        false,
    ),
    (
        "queue_stats",
        "/v2/queues/{queue_name}/stats",
        &[QUEUE],
        &["GET"],
        false,
    ),
    (
        "queue_share",
        "/v2/queues/{queue_name}/share",
        &[QUEUE],
        &["POST"],
        true,
    ),
    (
        "queue_purge",
        "/v2/queues/{queue_name}/purge",
        &[QUEUE],
        &["POST"],
        true,
    ),
    (
        "messages",
        "/v2/queues/{queue_name}/messages{?marker,limit,echo,include_claimed}",
        &[
            QUEUE,
            ("marker", "param/marker"),
            ("limit", "param/messages_limit"),
            ("echo", "param/echo"),
            ("include_claimed", "param/include_claimed"),
        ],
        &["GET"],
        false,
    ),
    (
        "post_messages",
        "/v2/queues/{queue_name}/messages",
        &[QUEUE],
        &["POST"],
        true,
    ),
    (
        "messages_delete",
        "/v2/queues/{queue_name}/messages{?ids,pop}",
        &[QUEUE, ("ids", "param/ids"), ("pop", "param/pop")],
        &["DELETE"],
        false,
    ),
    (
        "message_delete",
        "/v2/queues/{queue_name}/messages/{message_id}{?claim}",
        &[
            QUEUE,
            ("message_id", "param/message_id"),
            ("claim", "param/claim_id"),
        ],
        &["DELETE"],
        false,
    ),
    (
        "message_get",
        "/v2/queues/{queue_name}/messages/{message_id}",
        &[QUEUE, ("message_id", "param/message_id")],
        &["GET"],
        false,
    ),
    (
        "claim",
        "/v2/queues/{queue_name}/claims/{claim_id}",
        &[QUEUE, ("claim_id", "param/claim_id")],
        &["GET"],
        false,
    ),
    (
        "post_claim",
        "/v2/queues/{queue_name}/claims{?limit}",
        &[QUEUE, ("limit", "param/claim_limit")],
        &["POST"],
        true,
    ),
    (
        "patch_claim",
        "/v2/queues/{queue_name}/claims/{claim_id}",
        &[QUEUE, ("claim_id", "param/claim_id")],
        &["PATCH"],
        true,
    ),
    (
        "delete_claim",
        "/v2/queues/{queue_name}/claims/{claim_id}",
        &[QUEUE, ("claim_id", "param/claim_id")],
        &["DELETE"],
        false,
    ),
    (
        "subscriptions_get",
        "/v2/queues/{queue_name}/subscriptions{?marker,limit}",
        &[
            QUEUE,
            ("marker", "param/marker"),
            ("limit", "param/subscription_limit"),
        ],
        &["GET"],
        false,
    ),
    (
        "subscriptions_post",
        "/v2/queues/{queue_name}/subscriptions",
        &[QUEUE, ("limit", "param/subscription_limit")],
        &["POST"],
        true,
    ),
    (
        "subscription",
        "/v2/queues/{queue_name}/subscriptions/{subscriptions_id}",
        &[QUEUE, ("subscriptions_id", "param/subscriptions_id")],
        &["GET", "DELETE"],
        false,
    ),
    (
        "subscription_patch",
        "/v2/queues/{queue_name}/subscriptions/{subscriptions_id}",
        &[QUEUE, ("subscriptions_id", "param/subscriptions_id")],
        &["PATCH"],
        true,
    ),
    ("ping", "/v2/ping", &[], &["GET"], false),
];

const ADMIN: &[Rel] = &[
    (
        "pools",
        "/v2/pools{?detailed,limit,marker}",
        &[
            ("detailed", "param/detailed"),
            ("limit", "param/pool_limit"),
            ("marker", "param/marker"),
        ],
        &["GET"],
        false,
    ),
    (
        "pool",
        "/v2/pools/{pool_name}",
        &[("pool_name", "param/pool_name")],
        &["GET", "PUT", "PATCH", "DELETE"],
        false,
    ),
    (
        "flavors",
        "/v2/flavors{?detailed,limit,marker}",
        &[
            ("detailed", "param/detailed"),
            ("limit", "param/flavor_limit"),
            ("marker", "param/marker"),
        ],
        &["GET"],
        false,
    ),
    (
        "flavor",
        "/v2/flavors/{flavor_name}",
        &[("flavor_name", "param/flavor_name")],
        &["GET", "PUT", "PATCH", "DELETE"],
        false,
    ),
];

fn hints(allow: &[&str], accepts_post: bool) -> Value {
    let mut hints = Map::new();
    hints.insert("allow".into(), json!(allow));
    hints.insert("formats".into(), json!({"application/json": {}}));
    if accepts_post {
        hints.insert("accept-post".into(), json!(["application/json"]));
    }
    Value::Object(hints)
}

/// The document's bytes, as Zaqar serves them (indented four spaces); the
/// admin resources (pools, flavors, health) only in admin mode.
pub fn home_document(admin_mode: bool) -> Vec<u8> {
    let mut resources = Map::new();
    let rels = PUBLIC.iter().chain(if admin_mode { ADMIN } else { &[] });
    for (name, template, vars, allow, accepts_post) in rels {
        let mut entry = Map::new();
        entry.insert("href-template".into(), Value::from(*template));
        if !vars.is_empty() {
            let vars: Map<String, Value> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), Value::from(*v)))
                .collect();
            entry.insert("href-vars".into(), Value::Object(vars));
        }
        entry.insert("hints".into(), hints(allow, *accepts_post));
        resources.insert(format!("rel/{name}"), Value::Object(entry));
    }
    if admin_mode {
        resources.insert(
            "rel/health".into(),
            json!({"href": "/v2/health", "hints": hints(&["GET"], false)}),
        );
    }
    let document = json!({ "resources": resources });
    let mut out = Vec::with_capacity(12 * 1024);
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    // Serializing a Value into memory cannot fail.
    if document.serialize(&mut serializer).is_err() {
        return b"{}".to_vec();
    }
    out
}

/// The body of `GET /` (status 300).
pub const VERSIONS: &str = r#"{"versions":[{"id":"2","status":"CURRENT","updated":"2014-9-24T04:06:47Z","media-types":[{"base":"application/json","type":"application/vnd.openstack.messaging-v2+json"}],"links":[{"href":"/v2/","rel":"self"}]}]}"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_home_document_is_byte_for_byte_the_size_zaqar_serves() {
        // The transcript's content-length for admin mode.
        assert_eq!(home_document(true).len(), 11457);
    }

    #[test]
    fn public_home_document_omits_admin_resources() {
        let document: Value = serde_json::from_slice(&home_document(false)).unwrap();
        let resources = document["resources"].as_object().unwrap();
        assert_eq!(resources.len(), 19);
        assert!(!resources.contains_key("rel/health"));
        assert_eq!(
            resources["rel/queue"]["hints"]["allow"],
            json!(["GET", "PUT", "DELETE", "PATCH"])
        );
        assert_eq!(
            resources["rel/post_claim"]["hints"]["accept-post"],
            json!(["application/json"])
        );
    }

    #[test]
    fn versions_document_matches_zaqar() {
        let document: Value = serde_json::from_str(VERSIONS).unwrap();
        assert_eq!(document["versions"][0]["updated"], "2014-9-24T04:06:47Z");
        assert_eq!(document["versions"][0]["links"][0]["href"], "/v2/");
    }
}
