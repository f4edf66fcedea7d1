//! The message store behaviours, one `pub async fn` per test. Each takes a
//! fresh, empty store (boxed for the ABI boundary) and panics on a failure.

mod change_feed;
mod claims;
mod concurrency;
mod leases;
mod messages;
mod notification_log;
mod queues;
mod subscriptions;

pub use change_feed::*;
pub use claims::*;
pub use concurrency::*;
pub use leases::*;
pub use messages::*;
pub use notification_log::*;
pub use queues::*;
pub use subscriptions::*;
