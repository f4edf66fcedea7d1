//! `[drivers.notification.mailto]`.

use std::path::PathBuf;

use serde::Deserialize;

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain SMTP (a local relay).
    #[default]
    None,
    /// Plain connection upgraded with `STARTTLS`, which the server must
    /// offer (usually port 587).
    Starttls,
    /// TLS from the first byte, "SMTPS" (usually port 465).
    Tls,
}

/// The sink's own configuration table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailtoConfig {
    /// The SMTP server (relay) every mail goes through.
    pub smtp_host: String,
    /// Its port.
    pub smtp_port: u16,
    /// The sender when the subscription has no `from` option.
    pub from: String,
    /// Seconds one delivery may take as a whole (connect, TLS, SMTP dialog).
    pub timeout_secs: u64,
    /// SMTP AUTH user name (with `password`).
    pub username: Option<String>,
    /// SMTP AUTH password (with `username`).
    pub password: Option<String>,
    /// `none`, `starttls` or `tls`.
    pub tls: TlsMode,
    /// A PEM file of extra CA certificates trusted for the SMTP server's
    /// certificate, on top of the compiled-in Mozilla roots.
    pub ca_file: Option<PathBuf>,
}

impl Default for MailtoConfig {
    fn default() -> Self {
        Self {
            smtp_host: "127.0.0.1".into(),
            smtp_port: 25,
            from: "Zaqar Notifications <no-reply@localhost>".into(),
            timeout_secs: 10,
            username: None,
            password: None,
            tls: TlsMode::None,
            ca_file: None,
        }
    }
}
