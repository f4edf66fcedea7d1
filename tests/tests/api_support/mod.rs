//! Helpers shared by the `api_*` end-to-end tests (included with
//! `mod api_support;`).

#![allow(dead_code)] // each test file uses a different subset

use serde_json::{json, Value};
use zaqar_tests::{Client, Response};

/// Asserts a Zaqar error: status, title and description.
#[track_caller]
pub fn assert_error(response: &Response, status: u16, title: &str, description: &str) {
    assert_eq!(response.status, status, "{}", response.text());
    assert_eq!(
        response.json(),
        json!({"title": title, "description": description})
    );
    assert_eq!(response.header("content-type"), Some("application/json"));
}

/// Asserts a Zaqar error that has only a title.
#[track_caller]
pub fn assert_title_only(response: &Response, status: u16, title: &str) {
    assert_eq!(response.status, status, "{}", response.text());
    assert_eq!(response.json(), json!({ "title": title }));
}

/// Posts messages (`{"body": ..., "ttl": ...}` documents) and returns their ids.
#[track_caller]
pub fn post(client: &Client, queue: &str, messages: Value) -> Vec<String> {
    let response = client
        .post(&format!("/v2/queues/{queue}/messages"))
        .json(&json!({ "messages": messages }))
        .send();
    assert_eq!(response.status, 201, "{}", response.text());
    response.json()["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|href| {
            href.as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// Claims messages; returns the claim id and the claimed messages.
#[track_caller]
pub fn claim(client: &Client, queue: &str, query: &str, body: Value) -> (String, Vec<Value>) {
    let response = client
        .post(&format!("/v2/queues/{queue}/claims{query}"))
        .json(&body)
        .send();
    assert_eq!(response.status, 201, "{}", response.text());
    let location = response.header("location").expect("location").to_string();
    let claim_id = location.rsplit('/').next().unwrap().to_string();
    (
        claim_id,
        response.json()["messages"].as_array().unwrap().clone(),
    )
}

/// The ids of a listing's messages.
pub fn ids(listing: &Value) -> Vec<String> {
    listing["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}
