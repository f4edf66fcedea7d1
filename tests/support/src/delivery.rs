//! Building a [`Delivery`] as the host hands it to a notifier sink.

use plugin_api::notification::Delivery;
use serde_json::Value;

/// A delivery to `subscriber` for queue `q1` of project `p1`, subscription
/// `s1`, with an empty payload and options, private addresses refused; the
/// builder methods change each.
pub fn delivery(subscriber: &str) -> DeliveryBuilder {
    DeliveryBuilder(Delivery {
        subscriber: subscriber.into(),
        project: "p1".into(),
        queue: "q1".into(),
        subscription_id: "s1".into(),
        options: b"{}".to_vec().into(),
        payload: b"{}".to_vec().into(),
        allow_private_addresses: false,
    })
}

/// See [`delivery`].
pub struct DeliveryBuilder(Delivery);

impl DeliveryBuilder {
    /// The notification (what the sink sends), as JSON.
    pub fn payload(mut self, payload: Value) -> Self {
        self.0.payload = serde_json::to_vec(&payload)
            .expect("JSON serialises")
            .into();
        self
    }

    /// The subscription's options.
    pub fn options(mut self, options: Value) -> Self {
        self.0.options = serde_json::to_vec(&options)
            .expect("JSON serialises")
            .into();
        self
    }

    /// Whether the operator allows private subscriber addresses.
    pub fn allow_private_addresses(mut self, allow: bool) -> Self {
        self.0.allow_private_addresses = allow;
        self
    }

    /// The queue and project.
    pub fn queue(mut self, project: &str, queue: &str) -> Self {
        self.0.project = project.into();
        self.0.queue = queue.into();
        self
    }

    /// The delivery.
    pub fn build(self) -> Delivery {
        self.0
    }
}
