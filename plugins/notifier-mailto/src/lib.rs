//! The `mailto` notifier sink of zaqar-server: one plain-text mail per
//! delivery through an SMTP relay (Zaqar's `tasks/mailto.py`, in its
//! `self_local` spirit but with the relay, TLS mode and sender configured
//! here).
//!
//! * To: the addresses of the URI (`mailto:a@example.com,b@example.com`,
//!   percent-decoded, plus any `to=` query parameter);
//! * Subject: the `subject` query parameter (name case-insensitive), else
//!   the subscription option `subject`, else [`DEFAULT_SUBJECT`];
//! * From: the subscription option `from`, else the configured `from`;
//! * body: the notification document (JSON) as `text/plain; charset=utf-8`.
//!
//! One attempt per call: an invalid address or a 5xx answer is
//! `DELIVERY_PERMANENT`; a refused connection, a timeout, a TLS failure or a
//! 4xx answer is `DELIVERY_RETRYABLE`. See `docs/notifiers.md`.

mod config;

use std::{str::FromStr, time::Duration};

use lettre::{
    message::{header::ContentType, Mailbox},
    transport::smtp::{
        authentication::Credentials,
        client::{Certificate, Tls, TlsParameters},
    },
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use plugin_api::{
    notification::{Delivery, Notifier},
    ErrorCode, LogLevel, PluginContext, PluginError, PluginResult,
};
use serde_json::Value;

pub use config::{MailtoConfig, TlsMode};

/// The subject when neither the URI nor the options give one.
pub const DEFAULT_SUBJECT: &str = "Zaqar Notification";

fn permanent(message: impl Into<String>) -> PluginError {
    PluginError::new(ErrorCode::DELIVERY_PERMANENT, message)
}

fn retryable(message: impl Into<String>) -> PluginError {
    PluginError::new(ErrorCode::DELIVERY_RETRYABLE, message)
}

/// The mail sink behind the `mailto` entry point.
pub struct MailtoNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    timeout: Duration,
    relay: String,
}

impl MailtoNotifier {
    /// The constructor behind the entry point.
    pub async fn open(context: PluginContext) -> PluginResult<Self> {
        let config: MailtoConfig = context.config()?;
        let notifier = Self::new(&config)?;
        if config.username.is_some() && config.tls == TlsMode::None {
            context.log(
                LogLevel::WARN,
                &format!(
                    "mailto: SMTP credentials for {} are sent unencrypted (tls = \"none\"); \
                     use tls = \"starttls\" or \"tls\" unless the relay is local",
                    notifier.relay
                ),
            );
        }
        context.log(
            LogLevel::DEBUG,
            &format!(
                "mailto sink ready: relay {}, tls {:?}",
                notifier.relay, config.tls
            ),
        );
        Ok(notifier)
    }

    /// Builds the sink from its configuration.
    pub fn new(config: &MailtoConfig) -> PluginResult<Self> {
        if config.timeout_secs == 0 {
            return Err(PluginError::bad_config("timeout_secs must be at least 1"));
        }
        if config.smtp_host.trim().is_empty() {
            return Err(PluginError::bad_config("smtp_host is empty"));
        }
        let from = Mailbox::from_str(&config.from).map_err(|e| {
            PluginError::bad_config(format!("from {:?} is not a mail address: {e}", config.from))
        })?;
        let timeout = Duration::from_secs(config.timeout_secs);
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.smtp_host)
                .port(config.smtp_port)
                .timeout(Some(timeout));
        match (&config.username, &config.password) {
            (Some(user), Some(password)) => {
                builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
            }
            (None, None) => {}
            _ => {
                return Err(PluginError::bad_config(
                    "username and password go together: give both or neither",
                ))
            }
        }
        if config.tls != TlsMode::None {
            let parameters = tls_parameters(config)?;
            builder = builder.tls(match config.tls {
                TlsMode::Starttls => Tls::Required(parameters),
                _ => Tls::Wrapper(parameters),
            });
        } else if config.ca_file.is_some() {
            return Err(PluginError::bad_config(
                "ca_file is only used with tls = \"starttls\" or \"tls\"",
            ));
        }
        Ok(Self {
            transport: builder.build(),
            from,
            timeout,
            relay: format!("{}:{}", config.smtp_host, config.smtp_port),
        })
    }

    /// The mail for one delivery.
    fn message(&self, delivery: &Delivery) -> PluginResult<Message> {
        let options = parse_options(&delivery.options)?;
        let target = parse_mailto(delivery.subscriber.as_str())?;
        let subject = target
            .subject
            .or_else(|| option_text(&options, "subject"))
            .unwrap_or_else(|| DEFAULT_SUBJECT.to_string());
        let from = match option_text(&options, "from") {
            Some(from) => Mailbox::from_str(&from).map_err(|e| {
                permanent(format!("option from {from:?} is not a mail address: {e}"))
            })?,
            None => self.from.clone(),
        };
        let mut builder = Message::builder()
            .from(from)
            .subject(one_line(&subject))
            .header(ContentType::TEXT_PLAIN);
        for to in target.to {
            builder = builder.to(to);
        }
        builder
            .body(String::from_utf8_lossy(&delivery.payload).into_owned())
            .map_err(|e| permanent(format!("cannot build the mail: {e}")))
    }
}

impl Notifier for MailtoNotifier {
    async fn deliver(&self, delivery: Delivery) -> PluginResult<()> {
        let message = self.message(&delivery)?;
        match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(classify(&self.relay, &delivery.subscriber, &e)),
            Err(_) => Err(retryable(format!(
                "mail to {} through {} timed out after {} s",
                delivery.subscriber,
                self.relay,
                self.timeout.as_secs()
            ))),
        }
    }
}

/// 5xx is permanent; 4xx, connection, timeout and TLS failures may pass
/// on a later attempt.
fn classify(relay: &str, subscriber: &str, error: &lettre::transport::smtp::Error) -> PluginError {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        let more = e.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = e.source();
    }
    let message = format!("mail to {subscriber} through {relay}: {text}");
    if error.is_permanent() {
        permanent(message)
    } else {
        retryable(message)
    }
}

fn tls_parameters(config: &MailtoConfig) -> PluginResult<TlsParameters> {
    let mut builder = TlsParameters::builder(config.smtp_host.clone());
    if let Some(path) = &config.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| PluginError::bad_config(format!("ca_file {}: {e}", path.display())))?;
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            return Err(PluginError::bad_config(format!(
                "ca_file {}: no PEM certificate in it",
                path.display()
            )));
        }
        let certificate = Certificate::from_pem(&pem)
            .map_err(|e| PluginError::bad_config(format!("ca_file {}: {e}", path.display())))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build_rustls()
        .map_err(|e| PluginError::bad_config(format!("TLS setup: {e}")))
}

/// The subscription options (a JSON object; empty bytes count as `{}`).
fn parse_options(raw: &[u8]) -> PluginResult<serde_json::Map<String, Value>> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice::<Value>(raw) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Null) => Ok(serde_json::Map::new()),
        Ok(_) => Err(permanent("subscription options are not a JSON object")),
        Err(e) => Err(permanent(format!(
            "subscription options are not valid JSON: {e}"
        ))),
    }
}

/// A non-empty string option.
fn option_text(options: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    match options.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// Header text on one line: control characters (CR, LF, ...) become spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// What a `mailto:` URI asks for.
#[derive(Debug, PartialEq)]
pub struct MailtoTarget {
    /// The recipients.
    pub to: Vec<Mailbox>,
    /// The `subject` query parameter, if given and not blank.
    pub subject: Option<String>,
}

/// Parses `mailto:addr[,addr...][?subject=...&to=...]` (RFC 6068): the
/// addresses are percent-decoded; query values are decoded as Python's
/// `parse_qs` does (`+` is a space), parameter names compared without case.
pub fn parse_mailto(uri: &str) -> PluginResult<MailtoTarget> {
    let rest = uri
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case("mailto:"))
        .map(|_| &uri[7..])
        .ok_or_else(|| permanent(format!("subscriber {uri:?} is not a mailto: URI")))?;
    let rest = rest.split('#').next().unwrap_or_default();
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut to = Vec::new();
    let mut add = |list: &str| -> PluginResult<()> {
        for address in list.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            let mailbox = Mailbox::from_str(address).map_err(|e| {
                permanent(format!("{address:?} in {uri:?} is not a mail address: {e}"))
            })?;
            to.push(mailbox);
        }
        Ok(())
    };
    add(&percent_decode(path, false))?;
    let mut subject = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = percent_decode(name, true);
        let value = percent_decode(value, true);
        if name.eq_ignore_ascii_case("subject") {
            if subject.is_none() && !value.trim().is_empty() {
                subject = Some(value);
            }
        } else if name.eq_ignore_ascii_case("to") {
            add(&value)?;
        }
    }
    if to.is_empty() {
        return Err(permanent(format!("subscriber {uri:?} names no recipient")));
    }
    Ok(MailtoTarget { to, subject })
}

fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let text = if plus_is_space {
        text.replace('+', " ")
    } else {
        text.to_string()
    };
    percent_encoding::percent_decode_str(&text)
        .decode_utf8_lossy()
        .into_owned()
}

plugin_api::entry_points! {
    pub fn entry_points;
    notifier "mailto" => MailtoNotifier::open,
}

plugin_api::register_builtin!(entry_points);

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(target: &MailtoTarget) -> Vec<String> {
        target.to.iter().map(|m| m.email.to_string()).collect()
    }

    #[test]
    fn parses_addresses_and_subject() {
        let t = parse_mailto("mailto:ops@example.com?Subject=Queue%20alert+now").unwrap();
        assert_eq!(addresses(&t), ["ops@example.com"]);
        assert_eq!(t.subject.as_deref(), Some("Queue alert now"));

        let t = parse_mailto("MAILTO:a@example.com,%20b@example.org?to=c@example.net&SUBJECT=")
            .unwrap();
        assert_eq!(
            addresses(&t),
            ["a@example.com", "b@example.org", "c@example.net"]
        );
        assert_eq!(t.subject, None, "a blank subject falls back");

        let t = parse_mailto("mailto:ops@localhost#frag").unwrap();
        assert_eq!(addresses(&t), ["ops@localhost"]);
    }

    #[test]
    fn bad_uris_are_permanent() {
        for uri in [
            "mailto:",
            "mailto:?subject=x",
            "mailto:not-an-address",
            "mailto:a@b.c,@@",
            "http://example.com/",
            "mail",
        ] {
            let error = parse_mailto(uri).unwrap_err();
            assert_eq!(error.code, ErrorCode::DELIVERY_PERMANENT, "{uri}");
        }
    }

    #[test]
    fn default_config_is_valid() {
        let sink = MailtoNotifier::new(&MailtoConfig::default()).unwrap();
        assert_eq!(sink.relay, "127.0.0.1:25");
        assert_eq!(sink.from.email.to_string(), "no-reply@localhost");
    }

    #[test]
    fn subjects_stay_on_one_line() {
        assert_eq!(one_line("a\r\nBcc: x@y"), "a  Bcc: x@y");
    }
}
