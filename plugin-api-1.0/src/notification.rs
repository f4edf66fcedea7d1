//! The notifier sink contract (`zaqar.notification`): delivering one
//! notification to one subscriber. The entry point's name is the URI scheme
//! the sink handles (`http`, `mailto`, ...).
//!
//! Retries, confirmation and bookkeeping are the host's: a sink makes one
//! attempt and says whether another could succeed.

use abi_stable::{
    std_types::{RString, RVec},
    StableAbi,
};

use crate::macros::plugin_trait;

/// One notification for one subscriber.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The subscriber URI (its scheme chose this sink).
    pub subscriber: RString,
    /// The project of the queue.
    pub project: RString,
    /// The queue the message was posted to.
    pub queue: RString,
    /// The subscription id.
    pub subscription_id: RString,
    /// The subscription's options, a JSON object.
    pub options: RVec<u8>,
    /// The notification document (JSON) to deliver, e.g.
    /// `{"body": ..., "ttl": 300, "Message_Type": "Notification", "queue_name": "q"}`.
    pub payload: RVec<u8>,
    /// The operator allows deliveries to loopback, link-local and private
    /// addresses (`[notification] allow_private_subscribers`). When false, a
    /// sink that connects over the network must refuse such addresses
    /// (check every resolved address and redirect target with
    /// [`crate::net::is_private_address`]) and fail with
    /// `DELIVERY_PERMANENT`.
    pub allow_private_addresses: bool,
}

plugin_trait! {
    /// A notifier sink: implement this for a `zaqar.notification` plugin.
    native Notifier;
    abi NotifierAbi, object NotifierAbi_TO, boxed NotifierBox, adapter NotifierAdapter, wrap wrap_notifier;
    methods {}
    last {
        /// Makes one delivery attempt. Fail with
        /// [`ErrorCode::DELIVERY_RETRYABLE`](crate::ErrorCode::DELIVERY_RETRYABLE)
        /// when a later attempt may succeed (timeouts, 5xx, refused
        /// connections) and
        /// [`ErrorCode::DELIVERY_PERMANENT`](crate::ErrorCode::DELIVERY_PERMANENT)
        /// when it never will.
        fn deliver(&self, delivery: Delivery) -> ();
    }
}
