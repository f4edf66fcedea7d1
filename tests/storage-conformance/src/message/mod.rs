//! The message store behaviours, one `pub async fn` per test. Each takes a
//! fresh, empty store (boxed for the ABI boundary) and panics on a failure.

mod claims;
mod concurrency;
mod messages;
mod queues;
mod subscriptions;

pub use claims::*;
pub use concurrency::*;
pub use messages::*;
pub use queues::*;
pub use subscriptions::*;
