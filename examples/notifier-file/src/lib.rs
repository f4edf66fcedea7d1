//! An out-of-tree notifier sink for zaqar-server: every notification for a
//! `file:` subscriber is appended, as one JSON line, to the file named in the
//! plugin's configuration:
//!
//! ```toml
//! [plugins]
//! paths = ["target/release/libzaqar_notifier_file.so"]
//!
//! [drivers.notification.file]
//! path = "/var/log/zaqar/deliveries.jsonl"
//! ```
//!
//! The subscriber URI only selects this sink (`file:anything`); it never
//! names a path, so a tenant cannot make the server write where it likes.

use std::{
    fs::{File, OpenOptions},
    io::Write,
    path::PathBuf,
    sync::Mutex,
};

use plugin_api::{
    notification::{Delivery, Notifier},
    ErrorCode, LogLevel, PluginContext, PluginError, PluginResult,
};
use serde::Deserialize;

/// `[drivers.notification.file]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSinkConfig {
    /// The file deliveries are appended to (created if missing).
    path: PathBuf,
}

/// Appends each delivery to one file.
pub struct FileNotifier {
    file: Mutex<File>,
}

impl FileNotifier {
    /// The constructor behind the `file` entry point.
    pub async fn open(context: PluginContext) -> PluginResult<Self> {
        let config: FileSinkConfig = context.config()?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&config.path)
            .map_err(|e| {
                PluginError::bad_config(format!("cannot open {}: {e}", config.path.display()))
            })?;
        context.log(
            LogLevel::INFO,
            &format!("appending deliveries to {}", config.path.display()),
        );
        Ok(Self {
            file: Mutex::new(file),
        })
    }
}

impl Notifier for FileNotifier {
    async fn deliver(&self, delivery: Delivery) -> PluginResult<()> {
        let payload: serde_json::Value = serde_json::from_slice(&delivery.payload)
            .map_err(|e| PluginError::new(ErrorCode::DELIVERY_PERMANENT, e.to_string()))?;
        let mut line = serde_json::to_vec(&serde_json::json!({
            "subscriber": delivery.subscriber.as_str(),
            "project": delivery.project.as_str(),
            "queue": delivery.queue.as_str(),
            "subscription_id": delivery.subscription_id.as_str(),
            "payload": payload,
        }))
        .map_err(|e| PluginError::internal(e.to_string()))?;
        line.push(b'\n');
        // One write per line under the lock, so concurrent deliveries never
        // interleave inside a line.
        let mut file = self
            .file
            .lock()
            .map_err(|_| PluginError::internal("file lock poisoned"))?;
        file.write_all(&line)
            .and_then(|()| file.flush())
            .map_err(|e| PluginError::new(ErrorCode::DELIVERY_RETRYABLE, e.to_string()))
    }
}

plugin_api::entry_points! {
    pub fn entry_points;
    notifier "file" => FileNotifier::open,
}

plugin_api::export_plugin!(entry_points);
