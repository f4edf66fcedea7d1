//! Concurrency: what must hold when many clients write at once.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use plugin_api::{storage::MessageStore, types::RVec};

use crate::support::*;

/// 16 tasks × 50 single-message posts: every sequence number and id is
/// unique, each poster sees its own sequence numbers increase, and the
/// listing holds all 800 in sequence order.
pub async fn parallel_posters_get_unique_increasing_sequence_numbers(s: Store) {
    let t = now();
    let mut tasks = Vec::new();
    for poster in 0..16 {
        let s = Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..50 {
                let body = format!("{{\"poster\":{poster},\"i\":{i}}}");
                let posted = post(&s, &q("hot"), &format!("client-{poster}"), &[&body], t).await;
                seqs.push((posted[0].seq, posted[0].id.to_string()));
            }
            seqs
        }));
    }
    let mut all_seqs = HashSet::new();
    let mut all_ids = HashSet::new();
    for task in tasks {
        let seqs = task.await.expect("poster task");
        for pair in seqs.windows(2) {
            assert!(
                pair[1].0 > pair[0].0,
                "a poster's own sequence numbers increase"
            );
        }
        for (seq, id) in seqs {
            assert!(all_seqs.insert(seq), "sequence number {seq} given twice");
            assert!(all_ids.insert(id), "id given twice");
        }
    }
    assert_eq!(all_seqs.len(), 800);
    let listed = list(&s, &q("hot"), everything(1000), t).await;
    assert_eq!(listed.len(), 800);
    for pair in listed.windows(2) {
        assert!(pair[1].seq > pair[0].seq);
    }
    let listed_ids: HashSet<String> = ids(&listed).into_iter().collect();
    assert_eq!(listed_ids, all_ids);
}

/// Messages posted in one request keep their order and stay consecutive
/// while other posters write to the same queue.
pub async fn parallel_batch_posts_stay_consecutive(s: Store) {
    let t = now();
    let mut tasks = Vec::new();
    for poster in 0..8 {
        let s = Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            let batch: RVec<_> = (0..10)
                .map(|i| msg(300, 0, &format!("\"{poster}-{i}\"")))
                .collect();
            post_messages(&s, &q("hot"), "c", batch, t).await
        }));
    }
    for task in tasks {
        let posted = task.await.expect("poster task");
        for pair in posted.windows(2) {
            assert_eq!(pair[1].seq, pair[0].seq + 1);
        }
    }
}

/// 8 claimers over 200 messages: every message is claimed exactly once
/// while the claims live.
pub async fn parallel_claimers_never_share_a_message(s: Store) {
    let t = now();
    for chunk in 0..10 {
        let bodies: Vec<String> = (0..20).map(|i| format!("{}", chunk * 20 + i)).collect();
        let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
        post(&s, &q("work"), "c", &refs, t).await;
    }
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let c = claim(&s, &q("work"), claim_request(600, 0, 7), t).await;
                if c.messages.is_empty() {
                    return mine;
                }
                mine.extend(
                    c.messages
                        .iter()
                        .map(|m| (m.id.to_string(), c.id.to_string())),
                );
            }
        }));
    }
    let mut owner: HashMap<String, String> = HashMap::new();
    for task in tasks {
        for (message, claim_id) in task.await.expect("claimer task") {
            if let Some(previous) = owner.insert(message.clone(), claim_id.clone()) {
                panic!("message {message} claimed by {previous} and {claim_id}");
            }
        }
    }
    assert_eq!(owner.len(), 200);
    let stats = s.queue_stats(q("work"), t).await.unwrap();
    assert_eq!((stats.claimed, stats.free), (200, 0));
}

/// Concurrent pops never return the same message twice.
pub async fn parallel_poppers_never_get_the_same_message(s: Store) {
    let t = now();
    let bodies: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    post(&s, &q("work"), "c", &refs, t).await;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let s = Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let popped = s.message_pop(q("work"), 3, t).await.expect("pop");
                if popped.is_empty() {
                    return mine;
                }
                mine.extend(ids(&popped));
            }
        }));
    }
    let mut seen = HashSet::new();
    for task in tasks {
        for id in task.await.expect("popper task") {
            assert!(seen.insert(id.clone()), "message {id} popped twice");
        }
    }
    assert_eq!(seen.len(), 100);
}

/// Posts, claims and deletes on eight queues at once each touch only their
/// own queue.
pub async fn concurrent_writes_to_different_queues_do_not_interfere(s: Store) {
    let t = now();
    let mut tasks = Vec::new();
    for queue in 0..8 {
        let s = Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            let name = format!("q{queue}");
            for i in 0..20 {
                post(&s, &q(&name), "c", &[&i.to_string()], t).await;
            }
            let c = claim(&s, &q(&name), claim_request(60, 0, 5), t).await;
            for m in c.messages.iter() {
                s.message_delete(
                    q(&name),
                    m.id.clone(),
                    plugin_api::types::ROption::RSome(c.id.clone()),
                    t,
                )
                .await
                .expect("delete with claim");
            }
            name
        }));
    }
    for task in tasks {
        let name = task.await.expect("queue task");
        let left = list(&s, &q(&name), everything(100), t).await;
        let expected: Vec<String> = (5..20).map(|i| i.to_string()).collect();
        assert_eq!(bodies(&left), expected);
    }
}
