//! The live progress line: indicatif on a terminal, a plain line every few
//! seconds otherwise (logs, pipes), nothing with `--quiet`.

use std::{
    io::{IsTerminal, Write},
    sync::Mutex,
    time::{Duration, Instant},
};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::{
    stats::{Live, LiveSnapshot, Op},
    workload::ProgressMode,
};

/// How often a plain (non-terminal) progress line is printed.
const PLAIN_EVERY: Duration = Duration::from_secs(2);

enum Output {
    Off,
    Bar(ProgressBar),
    Plain,
}

pub struct Progress {
    output: Output,
    started: Instant,
    limit: String,
    last: Mutex<(Instant, LiveSnapshot)>,
}

impl Progress {
    pub fn start(
        mode: ProgressMode,
        started: Instant,
        duration: Duration,
        messages: Option<u64>,
        live: &Live,
    ) -> Progress {
        let output = match mode {
            ProgressMode::Off => Output::Off,
            ProgressMode::Auto if std::io::stderr().is_terminal() => {
                let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.enable_steady_tick(Duration::from_millis(250));
                Output::Bar(bar)
            }
            ProgressMode::Auto => Output::Plain,
        };
        let limit = match messages {
            Some(count) => format!("{count} messages"),
            None => format!("{:.0} s", duration.as_secs_f64()),
        };
        Progress {
            output,
            started,
            limit,
            last: Mutex::new((started, live.snapshot())),
        }
    }

    /// Called every 250 ms with the live counters.
    pub fn update(&self, live: &Live) {
        if matches!(self.output, Output::Off) {
            return;
        }
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let interval = now.duration_since(last.0);
        if matches!(self.output, Output::Plain) && interval < PLAIN_EVERY {
            return;
        }
        let current = live.snapshot();
        let line = self.line(&last.1, &current, interval);
        *last = (now, current);
        drop(last);
        match &self.output {
            Output::Bar(bar) => bar.set_message(line),
            Output::Plain => {
                let _ = writeln!(std::io::stderr(), "zaqar-load: {line}");
            }
            Output::Off => {}
        }
    }

    fn line(&self, before: &LiveSnapshot, now: &LiveSnapshot, interval: Duration) -> String {
        let seconds = interval.as_secs_f64().max(1e-3);
        let rate = |value: u64, earlier: u64| (value.saturating_sub(earlier)) as f64 / seconds;
        let mut parts = vec![format!(
            "{:>6.1} s of {}",
            self.started.elapsed().as_secs_f64(),
            self.limit
        )];
        for op in Op::ALL {
            if now.requests(op) == 0 {
                continue;
            }
            parts.push(format!(
                "{} {:.0} req/s",
                op.name(),
                rate(now.requests(op), before.requests(op))
            ));
        }
        let posted = rate(now.messages(Op::Post), before.messages(Op::Post));
        let consumed = rate(
            now.messages(Op::Delete) + now.messages(Op::DeleteMany),
            before.messages(Op::Delete) + before.messages(Op::DeleteMany),
        );
        parts.push(format!("posted {posted:.0} msg/s"));
        parts.push(format!("consumed {consumed:.0} msg/s"));
        parts.push(format!("errors {}", now.errors));
        parts.join(" | ")
    }

    /// Prints a one-off note (above the bar on a terminal).
    pub fn note(&self, text: &str) {
        match &self.output {
            Output::Bar(bar) => bar.println(format!("zaqar-load: {text}")),
            Output::Plain => {
                let _ = writeln!(std::io::stderr(), "zaqar-load: {text}");
            }
            Output::Off => {}
        }
    }

    pub fn finish(&self) {
        if let Output::Bar(bar) = &self.output {
            bar.finish_and_clear();
        }
    }
}
