//! # zaqar-storage-conformance: one test suite for every storage plugin
//!
//! The storage contract of zaqar-server (`plugin_api::storage::MessageStore`
//! and `plugin_api::management::ManagementStore`) is checked here once, so
//! that every store (the embedded one, PostgreSQL, Redis, a third party's)
//! proves the same behaviour. Each documented behaviour is one test whose
//! name says what it checks (`claimed_message_cannot_be_deleted_without_claim_id`).
//!
//! ## Use
//! In a store crate, add this crate and `plugin-api` as dev-dependencies and
//! write a test file:
//!
//! ```ignore
//! zaqar_storage_conformance::message_store_suite!(async {
//!     let dir = tempfile::tempdir().unwrap();
//!     let store = MyStore::open(dir.path()).await.unwrap();
//!     (store, dir) // the second value is kept alive until the test ends
//! });
//! zaqar_storage_conformance::management_store_suite!(async { (MyManagement::open().await.unwrap(), ()) });
//! ```
//!
//! A store that several hosts share (one database, many servers) also runs
//! the cross-instance behaviours (the change feed and leases seen through a
//! second instance opened on the same backend):
//!
//! ```ignore
//! zaqar_storage_conformance::shared_message_store_suite!(async {
//!     let db = throw_away_database().await;
//!     (MyStore::open(&db.url).await.unwrap(), MyStore::open(&db.url).await.unwrap(), db)
//! });
//! ```
//!
//! The expression is evaluated once per test and must give a **fresh, empty**
//! store and a guard (anything, `()` if nothing needs keeping alive). Each
//! test runs on its own multi-thread tokio runtime; the store is wrapped with
//! `wrap_message_store` / `wrap_management_store`, so every call crosses the
//! same ABI-stable boundary (adapter, FFI futures, panic guard) as in the
//! server.
//!
//! Time: tests pass `now_ms` starting at the real clock and move it forward
//! by adding to it, so nothing sleeps; a store must judge expiry by the
//! `now_ms` it is given (it may also remove what really expired).
//!
//! The behaviours themselves are plain `pub async fn`s in [`message`] and
//! [`management`], callable one by one while debugging a store.
//!
//! A failing test is named after the rule it checks, and its message starts
//! with that rule in words: `storage rule broken: claimed message cannot be
//! deleted without claim id (...)`, then the assertion that failed.
//!
//! ## Outside the zaqar-rs workspace
//! A third party's store depends on this crate by path (or git) to a zaqar-rs
//! checkout, beside `plugin-api`: see `examples/store-memory`, which passes
//! the whole suite that way, and `docs/plugin-authors.md`.

pub mod management;
pub mod message;
pub mod support;

/// Items the macros expand to. Not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use plugin_api::{management::wrap_management_store, storage::wrap_message_store};

    pub use crate::support::run;

    /// Runs one behaviour; if it fails, the failure starts with the rule
    /// that broke, in words, before the assertion's own message.
    pub fn run_rule<F: std::future::Future<Output = ()>>(rule: &str, test: F) {
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| crate::support::run(test)));
        if let Err(payload) = outcome {
            let detail = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            panic!(
                "storage rule broken: {} (`{rule}`)\n{detail}",
                rule.replace('_', " ")
            );
        }
    }
}

/// Expands to one `#[test]` per message store behaviour, each building a
/// fresh store with `$make` (an `async` block giving `(store, guard)`).
#[macro_export]
macro_rules! message_store_suite {
    ($make:expr) => {
        $crate::__message_tests! { $make;
            claim_takes_oldest_visible_unclaimed_messages_up_to_limit,
            claim_on_empty_or_missing_queue_returns_an_id_and_no_messages,
            claim_count_grows_with_each_claim_and_live_claims_are_exclusive,
            grace_extends_messages_that_would_expire_before_the_claim,
            grace_leaves_messages_that_outlive_the_claim_alone,
            claim_get_returns_the_live_claim_with_its_live_messages,
            claim_update_renews_the_claim_and_applies_grace,
            claim_update_of_unknown_or_expired_claim_is_claim_not_found,
            claim_delete_releases_its_messages_at_once,
            claim_delete_of_unknown_claim_succeeds,
            claimed_message_cannot_be_deleted_without_claim_id,
            claimed_message_cannot_be_deleted_with_another_claims_id,
            refused_deletes_change_nothing,
            claimed_message_is_deleted_with_its_claim_id,
            deleting_unclaimed_message_with_unknown_claim_id_is_claim_not_found,
            deleting_unclaimed_message_with_live_claim_id_is_message_not_claimed,
            message_whose_claim_expired_is_deleted_without_claim_id,
            message_claimed_too_often_moves_to_the_dead_letter_queue,
            dead_lettered_message_keeps_its_expiry_without_policy_ttl,
            parallel_posters_get_unique_increasing_sequence_numbers,
            parallel_batch_posts_stay_consecutive,
            parallel_claimers_never_share_a_message,
            parallel_poppers_never_get_the_same_message,
            concurrent_writes_to_different_queues_do_not_interfere,
            message_post_assigns_consecutive_sequence_numbers_and_unique_ids,
            listed_message_carries_body_client_times_and_no_claim,
            message_list_pages_in_sequence_order_after_a_sequence_number,
            message_list_of_missing_queue_is_empty,
            message_list_excludes_the_given_client,
            message_list_hides_claimed_messages_unless_asked,
            message_list_hides_delayed_messages_until_the_delay_passes,
            expired_messages_are_invisible_to_every_read,
            reported_ttl_is_lifetime_from_creation_to_expiry,
            message_get_many_returns_live_messages_in_sequence_order,
            message_get_many_of_missing_queue_is_empty,
            unclaimed_message_is_deleted_without_claim_id,
            deleting_a_missing_message_succeeds,
            message_delete_many_removes_claimed_and_unclaimed_and_ignores_unknown,
            message_pop_takes_oldest_visible_unclaimed_messages,
            message_pop_of_missing_queue_is_empty,
            message_purge_empties_the_queue_but_keeps_it,
            queue_stats_count_live_messages_with_oldest_and_newest,
            queue_stats_of_missing_queue_are_zeros,
            queue_create_returns_false_and_changes_nothing_when_queue_exists,
            missing_queue_has_no_metadata,
            queue_set_metadata_replaces_metadata,
            queue_set_metadata_on_missing_queue_is_queue_not_found,
            queue_list_orders_by_name_and_pages_strictly_after_marker,
            queue_list_includes_metadata_only_when_asked,
            queue_list_and_count_are_scoped_to_the_project,
            same_queue_name_in_two_projects_is_two_queues,
            message_post_creates_the_queue_lazily,
            queue_delete_of_missing_queue_succeeds,
            queue_delete_removes_messages_claims_and_subscriptions,
            queue_last_seq_is_the_last_posted_seq_and_never_goes_back,
            store_is_alive,
            subscription_create_then_get_round_trips,
            duplicate_subscriber_gets_the_existing_subscription,
            subscription_list_pages_in_a_stable_order,
            subscription_update_changes_given_fields_and_restarts_ttl,
            subscription_update_to_a_taken_subscriber_is_conflict,
            subscription_update_moves_its_subscriber,
            subscription_update_or_confirm_of_missing_is_not_found,
            subscription_confirm_sets_and_clears_the_flag,
            subscription_delete_removes_it_and_missing_delete_succeeds,
            expired_subscription_is_invisible_and_subscriber_can_subscribe_again,
            new_subscription_starts_at_the_queues_last_seq,
            subscription_advance_moves_the_cursor_forward_only,
            subscription_update_and_confirm_keep_the_cursor,
            subscription_advance_of_missing_or_expired_is_not_found,
            subscription_scan_pages_through_every_live_subscription_once,
            subscription_scan_continues_after_its_marker_is_deleted,
            committed_post_announces_messages_with_the_queues_last_seq,
            changes_of_one_queue_are_announced_in_commit_order,
            dead_letter_move_announces_messages_on_the_dead_letter_queue,
            queue_delete_announces_queue_deleted,
            message_purge_announces_queue_purged,
            subscription_changes_announce_subscriptions,
            notification_log_keeps_messages_consumed_before_notification,
            notification_log_pages_after_seq_up_to_limit,
            notification_log_holds_only_messages_posted_while_subscribed,
            notification_log_drops_entries_every_subscription_has_passed,
            notification_log_drops_expired_entries,
            notification_log_drops_entries_when_no_subscription_is_left,
            lease_first_acquirer_wins_and_others_are_refused_while_live,
            lease_holder_renews_its_lease,
            expired_lease_is_taken_over,
            lease_release_frees_it_and_another_holders_release_does_nothing,
            concurrent_lease_acquirers_have_exactly_one_winner,
        }
    };
}

/// Expands to one `#[test]` per behaviour of a store shared by several
/// hosts, each building, with `$make` (an `async` block giving
/// `(store, second_store, guard)`), two instances of a fresh, empty store
/// opened on the same backend (as two hosts would open it). Optional: use
/// it for stores that several hosts (or several opens in one process) share.
#[macro_export]
macro_rules! shared_message_store_suite {
    ($make:expr) => {
        $crate::__shared_message_tests! { $make;
            changes_written_through_another_instance_are_announced,
            leases_are_exclusive_across_instances,
        }
    };
}

/// Expands to one `#[test]` per management store behaviour, each building a
/// fresh store with `$make` (an `async` block giving `(store, guard)`).
#[macro_export]
macro_rules! management_store_suite {
    ($make:expr) => {
        $crate::__management_tests! { $make;
            pool_put_creates_then_replaces,
            missing_pool_is_none_and_its_delete_succeeds,
            pool_delete_removes_it,
            pool_list_pages_by_name_after_marker,
            flavor_put_creates_then_replaces_within_its_project,
            flavor_list_pages_by_name_within_the_project,
            flavor_delete_removes_only_that_projects_flavor,
            management_store_is_alive,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __message_tests {
    ($make:expr; $($name:ident,)+) => {$(
        #[test]
        fn $name() {
            $crate::__private::run_rule(stringify!($name), async {
                let (store, guard) = $make.await;
                let store = ::std::sync::Arc::new($crate::__private::wrap_message_store(store));
                $crate::message::$name(store).await;
                drop(guard);
            });
        }
    )+};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __shared_message_tests {
    ($make:expr; $($name:ident,)+) => {$(
        #[test]
        fn $name() {
            $crate::__private::run(async {
                let (store, other, guard) = $make.await;
                let store = ::std::sync::Arc::new($crate::__private::wrap_message_store(store));
                let other = ::std::sync::Arc::new($crate::__private::wrap_message_store(other));
                $crate::message::$name(store, other).await;
                drop(guard);
            });
        }
    )+};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __management_tests {
    ($make:expr; $($name:ident,)+) => {$(
        #[test]
        fn $name() {
            $crate::__private::run_rule(stringify!($name), async {
                let (store, guard) = $make.await;
                let store = ::std::sync::Arc::new($crate::__private::wrap_management_store(store));
                $crate::management::$name(store).await;
                drop(guard);
            });
        }
    )+};
}

#[cfg(test)]
mod tests {
    /// A failing behaviour says which rule broke, then how.
    #[test]
    fn a_failure_names_the_rule_that_broke() {
        let failure = std::panic::catch_unwind(|| {
            crate::__private::run_rule(
                "claimed_message_cannot_be_deleted_without_claim_id",
                async { assert_eq!(1, 2, "the store let it go") },
            )
        });
        let payload = failure.expect_err("the behaviour failed");
        let message = payload.downcast_ref::<String>().expect("a message");
        assert!(
            message.starts_with(
                "storage rule broken: claimed message cannot be deleted without claim id"
            ),
            "{message}"
        );
        assert!(message.contains("the store let it go"), "{message}");
    }

    /// Every behaviour written in the modules is listed in the macros.
    #[test]
    fn every_behaviour_is_in_a_suite() {
        let lib = include_str!("lib.rs");
        let sources = [
            include_str!("message/change_feed.rs"),
            include_str!("message/claims.rs"),
            include_str!("message/concurrency.rs"),
            include_str!("message/messages.rs"),
            include_str!("message/queues.rs"),
            include_str!("message/subscriptions.rs"),
            include_str!("message/notification_log.rs"),
            include_str!("message/leases.rs"),
            include_str!("management.rs"),
        ];
        for source in sources {
            for line in source.lines() {
                if let Some(rest) = line.strip_prefix("pub async fn ") {
                    let name = rest.split('(').next().unwrap_or_default();
                    let listed = format!("            {name},");
                    assert!(
                        lib.contains(&listed),
                        "{name} is missing from the suite macros"
                    );
                }
            }
        }
    }
}
