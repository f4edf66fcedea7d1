//! A lone post whose record reached the post log but whose transaction
//! failed is answered with an error; after a `kill -9` the next open must
//! not apply it from the log, or it would exist although its client was
//! told it failed, and every post after it would take a sequence number one
//! higher than the id it was answered with.
//!
//! The child process is this test binary run again with [`CHILD_ENV`] set,
//! selecting [`child_posting_past_a_failed_post`].

use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
    sync::atomic::Ordering,
    time::Duration,
};

use plugin_api::storage::{MessageStore, NewMessage, QueueRef};

use crate::{group_commit::FAIL_NEXT_LONE_POST, test_support, EmbeddedMessageStore};

/// Set to the data directory in the child process.
const CHILD_ENV: &str = "ZAQAR_EMBEDDED_FAILED_POST_CHILD";

/// Posts made before the failing one, and after it.
const BEFORE: usize = 3;
const AFTER: usize = 3;

fn queue() -> QueueRef {
    QueueRef::new("p", "q")
}

fn message(body: &str) -> NewMessage {
    NewMessage {
        ttl: 3600,
        delay: 0,
        body: format!("\"{body}\"").into_bytes().into(),
    }
}

/// Not a test of its own: the body of the child process (a no-op when run
/// as a normal test). One poster, so that every post is a lone post made
/// durable by the post log; it says `ACK <id> <body>` for each answered
/// post and `FAILED <body>` for the failed one, then waits to be killed.
#[test]
fn child_posting_past_a_failed_post() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (_unused, mut config, runtime) = test_support::data_dir();
    config.path = dir.into();
    let store = EmbeddedMessageStore::open(&config).expect("the child opens the store");
    let say = |line: String| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    for i in 0..BEFORE + 1 + AFTER {
        let body = format!("post-{i}");
        let fails = i == BEFORE;
        FAIL_NEXT_LONE_POST.store(fails, Ordering::Release);
        let posted = runtime.block_on(store.message_post(
            queue(),
            "c".into(),
            vec![message(&body)].into(),
            10,
        ));
        match (fails, posted) {
            (false, Ok(posted)) => say(format!("ACK {} {body}", posted[0].id)),
            (true, Err(_)) => say(format!("FAILED {body}")),
            (_, outcome) => panic!("post {i}: unexpected outcome {outcome:?}"),
        }
    }
    say("DONE".into());
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn a_lone_post_that_failed_is_not_applied_from_the_log_after_sigkill() {
    let (_dir, config, runtime) = test_support::data_dir();
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "failed_lone_post_tests::child_posting_past_a_failed_post",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &config.path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the child starts");
    let mut answered = HashMap::new();
    let mut failed = None;
    for line in BufReader::new(child.stdout.take().expect("piped stdout")).lines() {
        let line = line.expect("the child's output");
        // libtest may have printed "test child_posting... " before it.
        let words: Vec<&str> = line.split(' ').collect();
        match words.iter().position(|w| *w == "ACK" || *w == "FAILED") {
            Some(at) if words[at] == "ACK" => {
                answered.insert(words[at + 2].to_string(), words[at + 1].to_string());
            }
            Some(at) => failed = Some(words[at + 1].to_string()),
            None if line.ends_with("DONE") => break,
            None => {}
        }
    }
    // Before anything commits durably after the failed post.
    child.kill().expect("SIGKILL the child");
    let _ = child.wait();
    assert_eq!(
        answered.len(),
        BEFORE + AFTER,
        "the child posted: {answered:?}"
    );
    let failed = failed.expect("the injected failure was answered as one");

    let store = EmbeddedMessageStore::open(&config).expect("reopens after SIGKILL");
    let query = test_support::every_message();
    let found: HashMap<String, String> = runtime
        .block_on(store.message_list(queue(), query, 10))
        .expect("list")
        .iter()
        .map(|m| {
            let body = String::from_utf8(m.body.to_vec()).unwrap();
            (body.trim_matches('"').to_string(), m.id.to_string())
        })
        .collect();
    assert!(
        !found.contains_key(&failed),
        "the post answered as failed was applied from the log: {found:?}"
    );
    assert_eq!(
        found, answered,
        "every answered post is there once, with the id it was answered with"
    );
}
