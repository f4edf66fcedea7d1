//! Property tests for the parsers that see client bytes: the message post
//! reader keeps every body exactly, the router matches every valid name
//! however it is percent-encoded, and no input makes either panic.

use proptest::prelude::*;
use serde_json::{json, Value};
use zaqar_host::api::{params, post_body, router};

/// Any JSON value of bounded size and depth.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e12f64..1e12).prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn queue_name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_-]{1,64}"
}

proptest! {
    #[test]
    fn a_post_keeps_every_body_and_ttl_exactly(
        messages in prop::collection::vec((json_value(), prop::option::of(60i64..1_209_600)), 1..8)
    ) {
        let document = json!({"messages": messages.iter().map(|(body, ttl)| match ttl {
            Some(ttl) => json!({"body": body, "ttl": ttl}),
            None => json!({"body": body}),
        }).collect::<Vec<_>>()});
        let bytes = serde_json::to_vec(&document).unwrap();
        let read = post_body::read_post(Some(&bytes)).expect("a valid post");
        prop_assert_eq!(read.len(), messages.len());
        for (incoming, (body, ttl)) in read.iter().zip(&messages) {
            // The body is kept as the client wrote it, byte for byte.
            prop_assert_eq!(incoming.body, serde_json::to_string(body).unwrap());
            prop_assert_eq!(incoming.ttl, *ttl);
        }
    }

    #[test]
    fn the_post_reader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = post_body::read_post(Some(&bytes));
    }

    #[test]
    fn a_queue_path_routes_to_its_queue_however_percent_encoded(
        name in queue_name(),
        encode in prop::collection::vec(any::<bool>(), 64),
    ) {
        let encoded: String = name
            .chars()
            .zip(encode.iter().cycle())
            .map(|(c, &e)| if e { format!("%{:02X}", c as u32) } else { c.to_string() })
            .collect();
        for (suffix, resource) in [
            ("", router::Resource::Queue),
            ("/messages", router::Resource::Messages),
            ("/claims", router::Resource::Claims),
            ("/stats", router::Resource::QueueStats),
        ] {
            let route = router::route(&format!("/v2/queues/{encoded}{suffix}"), false)
                .expect("routed");
            prop_assert_eq!(route.resource, resource);
            prop_assert_eq!(route.queue.as_deref(), Some(name.as_str()));
        }
    }

    #[test]
    fn routing_and_query_parsing_never_panic(path in "\\PC{0,80}", query in "\\PC{0,80}") {
        let _ = router::route(&path, true);
        let _ = router::route(&format!("/v2/queues/{path}"), false);
        let _ = params::QueryParams::parse(&query);
        let _ = params::parse_python_int(&query);
        let _ = params::parse_falcon_bool(&query);
    }

    #[test]
    fn python_int_reads_back_every_integer(n in any::<i64>(), pad in " {0,3}") {
        prop_assert_eq!(params::parse_python_int(&format!("{pad}{n}{pad}")), Some(n));
    }
}
