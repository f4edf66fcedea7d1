//! Command-line interface.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::{
    client::{Identity, Target},
    workload::{LoadConfig, ProgressMode},
};

/// Load generator for Zaqar v2 servers: producers post, consumers claim and
/// delete, observers list; over HTTP (--url) or WebSocket (--ws).
#[derive(Parser, Debug)]
#[command(
    name = "zaqar-load",
    version,
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  zaqar-load --url http://127.0.0.1:8888 --duration 10s --producers 8 --consumers 4\n  zaqar-load --ws ws://127.0.0.1:9000 --msgpack --messages 10000 --json\n  zaqar-load reference-server --port 0\n  zaqar-load reference-server --port 0 --durable-dir /var/tmp/floor"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub load: LoadArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve canned Zaqar-sized answers with bare hyper (no work), to compare
    /// the server's HTTP figures with; prints the address it listens on.
    ReferenceServer(ReferenceArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ReferenceArgs {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// Port (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// The durable floor: answer each post (and, over HTTP, each claim and
    /// delete) only once its bytes are written and `fdatasync`ed (in groups,
    /// by one thread) to a 64 MiB log in this directory; HTTP claims then
    /// hand out canned messages. Without it, nothing is written.
    #[arg(long, value_name = "DIR")]
    pub durable_dir: Option<std::path::PathBuf>,
    /// Serve Zaqar's WebSocket frames (JSON and MessagePack) instead of
    /// HTTP: posts are answered with an id, claims find nothing.
    #[arg(long)]
    pub websocket: bool,
}

#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    /// The server's HTTP endpoint, e.g. http://127.0.0.1:8888
    #[arg(long, value_name = "URL", conflicts_with = "ws")]
    pub url: Option<String>,
    /// The server's WebSocket endpoint, e.g. ws://127.0.0.1:9000
    #[arg(long, value_name = "URL")]
    pub ws: Option<String>,
    /// Send MessagePack binary frames instead of JSON text (WebSocket only).
    #[arg(long)]
    pub msgpack: bool,
    /// How long to run (e.g. 10s, 500ms, 2m). Default 10s, or a 10m cap with --messages.
    #[arg(long, value_parser = parse_duration, value_name = "TIME")]
    pub duration: Option<Duration>,
    /// Post this many messages in all (rounded up to whole batches) and, with
    /// consumers, run until they are consumed; observers alone do this many lists each.
    #[arg(long, value_name = "N")]
    pub messages: Option<u64>,
    /// Producer workers (one connection each).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub producers: usize,
    /// Consumer workers (one connection each).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub consumers: usize,
    /// Observer workers listing messages (one connection each).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub observers: usize,
    /// Size of each message body in bytes of JSON.
    #[arg(long, default_value_t = 256, value_name = "BYTES")]
    pub message_size: usize,
    /// Number of queues; workers spread over them and rotate.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub queues: usize,
    /// Messages per post request.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub batch: usize,
    /// Messages per claim (claim ?limit=).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub claim_limit: usize,
    /// Delete the claimed messages with one bulk request (?ids=) instead of one each.
    #[arg(long)]
    pub bulk_delete: bool,
    /// Page size of observers' lists.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub list_limit: usize,
    /// Message TTL in seconds.
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    pub message_ttl: u64,
    /// Claim TTL in seconds.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub claim_ttl: u64,
    /// Claim grace in seconds.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub claim_grace: u64,
    /// Pause before each post: a producer idles this long between its
    /// answer and its next post, so that each post meets an idle server
    /// (the latency a client of a quiet queue sees). Default: none.
    #[arg(long, default_value = "0s", value_parser = parse_duration, value_name = "TIME")]
    pub post_pause: Duration,
    /// Pause after a claim that found nothing.
    #[arg(long, default_value = "1ms", value_parser = parse_duration, value_name = "TIME")]
    pub empty_claim_backoff: Duration,
    /// X-Project-ID of every request.
    #[arg(long, default_value = "zaqar-load", value_name = "ID")]
    pub project: String,
    /// Client-ID of every request (a UUID; random by default).
    #[arg(long, value_name = "UUID")]
    pub client_id: Option<String>,
    /// Queue name prefix; queues are PREFIX-0 … PREFIX-(N-1). Random by default.
    #[arg(long, value_name = "PREFIX")]
    pub queue_prefix: Option<String>,
    /// Leave the queues (and what is left in them) when done; default is to delete them.
    #[arg(long)]
    pub keep_queues: bool,
    /// Give up on a request after this long (counted as a "timeout" error).
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "TIME")]
    pub timeout: Duration,
    /// Client runtime threads (default: the number of CPUs).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Print the summary as JSON on stdout (the table goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// No progress line.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Parses `10s`, `250ms`, `2m`, `1h`, `1.5s` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?} (try 10s, 500ms, 2m)"))?;
    let seconds = match unit.trim() {
        "" | "s" | "sec" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown duration unit {other:?} (use ms, s, m or h)"
            ))
        }
    };
    if !seconds.is_finite() || !(0.0..=7.0 * 86400.0).contains(&seconds) {
        return Err(format!("duration {text:?} out of range"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// The default time cap of a `--messages` run without `--duration`.
pub const MESSAGES_RUN_CAP: Duration = Duration::from_secs(600);

impl LoadArgs {
    /// Checks the arguments and resolves the target.
    pub async fn into_config(self) -> Result<LoadConfig, String> {
        let (url, msgpack) = match (&self.url, &self.ws) {
            (Some(url), None) => (url.clone(), false),
            (None, Some(ws)) => (ws.clone(), self.msgpack),
            _ => {
                return Err(
                    "give the server with --url http://HOST:PORT or --ws ws://HOST:PORT".into(),
                )
            }
        };
        if self.msgpack && self.ws.is_none() {
            return Err("--msgpack applies to WebSocket only (--ws ws://HOST:PORT)".into());
        }
        let target = Target::resolve(&url, msgpack).await?;
        match (&self.url, target.kind) {
            (Some(_), crate::client::TargetKind::WebSocket { .. }) => {
                return Err(format!(
                    "--url wants an http:// URL, got {url} (use --ws for WebSocket)"
                ))
            }
            (None, crate::client::TargetKind::Http) => {
                return Err(format!(
                    "--ws wants a ws:// URL, got {url} (use --url for HTTP)"
                ))
            }
            _ => {}
        }
        if self.producers + self.consumers + self.observers == 0 {
            return Err("nothing to do: --producers, --consumers and --observers are all 0".into());
        }
        for (name, value) in [
            ("--queues", self.queues),
            ("--batch", self.batch),
            ("--claim-limit", self.claim_limit),
            ("--list-limit", self.list_limit),
        ] {
            if value == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        if self.messages == Some(0) {
            return Err("--messages must be at least 1".into());
        }
        if self.timeout.is_zero() {
            return Err("--timeout must be more than 0".into());
        }
        let duration = match (self.duration, self.messages) {
            (Some(duration), _) => duration,
            (None, Some(_)) => MESSAGES_RUN_CAP,
            (None, None) => Duration::from_secs(10),
        };
        let run_id = uuid::Uuid::new_v4().simple().to_string();
        Ok(LoadConfig {
            target,
            identity: Identity {
                client_id: self
                    .client_id
                    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
                project: self.project,
            },
            producers: self.producers,
            consumers: self.consumers,
            observers: self.observers,
            duration,
            messages: self.messages,
            message_size: self.message_size,
            message_ttl: self.message_ttl,
            batch: self.batch,
            queues: self.queues,
            queue_prefix: self
                .queue_prefix
                .unwrap_or_else(|| format!("load-{}", &run_id[..8])),
            keep_queues: self.keep_queues,
            claim_limit: self.claim_limit,
            claim_ttl: self.claim_ttl,
            claim_grace: self.claim_grace,
            bulk_delete: self.bulk_delete,
            list_limit: self.list_limit,
            post_pause: self.post_pause,
            empty_claim_backoff: self.empty_claim_backoff,
            timeout: self.timeout,
            progress: if self.quiet {
                ProgressMode::Off
            } else {
                ProgressMode::Auto
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5y").is_err());
    }

    #[test]
    fn parses_both_modes() {
        let cli = Cli::try_parse_from(["zaqar-load", "reference-server", "--port", "0"]).unwrap();
        assert!(matches!(cli.command, Some(Command::ReferenceServer(_))));
        let cli = Cli::try_parse_from([
            "zaqar-load",
            "--url",
            "http://127.0.0.1:1",
            "--producers",
            "3",
            "--duration",
            "1s",
        ])
        .unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.load.producers, 3);
        assert!(
            Cli::try_parse_from(["zaqar-load", "--url", "http://a", "--ws", "ws://b"]).is_err()
        );
    }

    #[tokio::test]
    async fn rejects_inconsistent_arguments() {
        let check = |argv: &'static [&'static str]| async move {
            Cli::try_parse_from(argv.iter().copied())
                .unwrap()
                .load
                .into_config()
                .await
                .unwrap_err()
        };
        assert!(
            check(&["zaqar-load", "--url", "http://127.0.0.1:1", "--msgpack"])
                .await
                .contains("--msgpack")
        );
        assert!(check(&["zaqar-load"]).await.contains("--url"));
        assert!(check(&["zaqar-load", "--url", "ws://127.0.0.1:1"])
            .await
            .contains("http://"));
        assert!(check(&[
            "zaqar-load",
            "--url",
            "http://127.0.0.1:1",
            "--producers",
            "0",
            "--consumers",
            "0"
        ])
        .await
        .contains("nothing to do"));
    }
}
