//! `zaqar-peers`: the peers of bench/peers.sh, driven the way zaqar-load
//! drives zaqar-server, so that every system of the comparison does the
//! same work per message:
//!
//! * publish: N producers, each publishing one message at a time and
//!   waiting for the server's confirmation that it is stored durably
//!   (RabbitMQ: durable queue, persistent message, publisher confirm;
//!   JetStream: file-storage stream, publish ack) before the next;
//! * consume: N consumers taking what the publish phase left, acking each
//!   message (RabbitMQ: prefetch 10, `basic.ack`; JetStream: pull consumer,
//!   batches of 10, `ack`), until all of it is consumed.
//!
//! Prints one JSON object: rates, publish latency p50/p99 and the server
//! process's CPU per message when `--server-pid` is given.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum System {
    Rabbitmq,
    Jetstream,
}

#[derive(Parser, Debug)]
#[command(about = "Publish/consume bench against RabbitMQ or NATS JetStream")]
struct Args {
    #[arg(value_enum)]
    system: System,
    /// amqp://guest:guest@127.0.0.1:5672/%2f or nats://127.0.0.1:4222
    #[arg(long)]
    url: String,
    /// Concurrent producers, and as many consumers.
    #[arg(long, default_value_t = 4)]
    producers: usize,
    /// Length of the publish phase in seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Message body bytes.
    #[arg(long, default_value_t = 148)]
    message_size: usize,
    /// The server process whose CPU time (user + system) is charged to the
    /// messages.
    #[arg(long)]
    server_pid: Option<u32>,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The server's user + system CPU time in seconds, from /proc.
fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// One phase's figures.
#[derive(Default)]
struct Phase {
    messages: AtomicU64,
    latency_us: Mutex<Option<Histogram<u64>>>,
}

impl Phase {
    fn record(&self, histogram: &Histogram<u64>) {
        let mut all = self.latency_us.lock().unwrap();
        match all.as_mut() {
            Some(all) => all.add(histogram).unwrap(),
            None => *all = Some(histogram.clone()),
        }
    }

    fn summary(&self, elapsed: Duration, cpu: Option<f64>) -> serde_json::Value {
        let messages = self.messages.load(Ordering::Relaxed);
        let latency = self.latency_us.lock().unwrap();
        let quantile = |q: f64| {
            latency
                .as_ref()
                .map(|h| h.value_at_quantile(q) as f64 / 1000.0)
        };
        serde_json::json!({
            "messages": messages,
            "per_s": messages as f64 / elapsed.as_secs_f64(),
            "p50_ms": quantile(0.5),
            "p99_ms": quantile(0.99),
            "cpu_us_per_message": cpu.map(|cpu| cpu * 1e6 / messages.max(1) as f64),
        })
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).unwrap()
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = Args::parse();
    let payload = vec![b'x'; args.message_size];
    let name = format!("zaqar-peers-{}", std::process::id());
    let publish = Arc::new(Phase::default());
    let consume = Arc::new(Phase::default());

    let cpu0 = cpu_seconds(args.server_pid);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.duration);
    match args.system {
        System::Rabbitmq => rabbitmq::publish(&args, &name, &payload, deadline, &publish).await?,
        System::Jetstream => jetstream::publish(&args, &name, &payload, deadline, &publish).await?,
    }
    let published_in = started.elapsed();
    let cpu1 = cpu_seconds(args.server_pid);

    let total = publish.messages.load(Ordering::Relaxed);
    let started = Instant::now();
    match args.system {
        System::Rabbitmq => rabbitmq::consume(&args, &name, total, &consume).await?,
        System::Jetstream => jetstream::consume(&args, &name, total, &consume).await?,
    }
    let consumed_in = started.elapsed();
    let cpu2 = cpu_seconds(args.server_pid);
    match args.system {
        System::Rabbitmq => rabbitmq::cleanup(&args, &name).await?,
        System::Jetstream => jetstream::cleanup(&args, &name).await?,
    }

    let diff = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
    let report = serde_json::json!({
        "system": format!("{:?}", args.system).to_lowercase(),
        "producers": args.producers,
        "message_size": args.message_size,
        "publish": publish.summary(published_in, diff(cpu0, cpu1)),
        "consume": consume.summary(consumed_in, diff(cpu1, cpu2)),
    });
    println!("{report}");
    Ok(())
}

/// Runs `n` copies of `worker` and waits for all of them.
async fn join_all<F>(n: usize, worker: impl Fn(usize) -> F) -> Result<(), Error>
where
    F: std::future::Future<Output = Result<(), Error>> + Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(worker(i))).collect();
    for task in tasks {
        task.await??;
    }
    Ok(())
}

mod rabbitmq {
    use futures_util::StreamExt;
    use lapin::{
        options::{
            BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
            ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
        },
        types::FieldTable,
        BasicProperties, Connection, ConnectionProperties,
    };

    use super::*;

    async fn connect(url: &str) -> Result<Connection, Error> {
        Ok(Connection::connect(url, ConnectionProperties::default()).await?)
    }

    pub async fn publish(
        args: &Args,
        queue: &str,
        payload: &[u8],
        deadline: Instant,
        phase: &Arc<Phase>,
    ) -> Result<(), Error> {
        let setup = connect(&args.url).await?.create_channel().await?;
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        setup
            .queue_declare(queue, durable, FieldTable::default())
            .await?;
        let url = args.url.clone();
        let payload = payload.to_vec();
        let queue = queue.to_owned();
        join_all(args.producers, |_| {
            let (url, payload, queue, phase) =
                (url.clone(), payload.clone(), queue.clone(), phase.clone());
            async move {
                // One connection per producer, as each HTTP producer has its own.
                let connection = connect(&url).await?;
                let channel = connection.create_channel().await?;
                channel
                    .confirm_select(ConfirmSelectOptions::default())
                    .await?;
                let mut latency = histogram();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let confirm = channel
                        .basic_publish(
                            "",
                            &queue,
                            BasicPublishOptions::default(),
                            &payload,
                            BasicProperties::default().with_delivery_mode(2),
                        )
                        .await?
                        .await?;
                    if !confirm.is_ack() {
                        return Err("RabbitMQ refused a message (nack)".into());
                    }
                    latency.record(sent.elapsed().as_micros() as u64).ok();
                    phase.messages.fetch_add(1, Ordering::Relaxed);
                }
                phase.record(&latency);
                connection.close(200, "done").await.ok();
                Ok(())
            }
        })
        .await
    }

    pub async fn consume(
        args: &Args,
        queue: &str,
        total: u64,
        phase: &Arc<Phase>,
    ) -> Result<(), Error> {
        let done = Arc::new(AtomicBool::new(false));
        let url = args.url.clone();
        let queue = queue.to_owned();
        join_all(args.producers, |i| {
            let (url, queue, phase, done) =
                (url.clone(), queue.clone(), phase.clone(), done.clone());
            async move {
                let connection = connect(&url).await?;
                let channel = connection.create_channel().await?;
                channel.basic_qos(10, BasicQosOptions::default()).await?;
                let mut deliveries = channel
                    .basic_consume(
                        &queue,
                        &format!("c{i}"),
                        BasicConsumeOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
                let mut latency = histogram();
                while !done.load(Ordering::Relaxed) {
                    let next =
                        tokio::time::timeout(Duration::from_millis(200), deliveries.next()).await;
                    let Ok(Some(delivery)) = next else { continue };
                    let delivery = delivery?;
                    let acked = Instant::now();
                    delivery.ack(BasicAckOptions::default()).await?;
                    latency.record(acked.elapsed().as_micros() as u64).ok();
                    if phase.messages.fetch_add(1, Ordering::Relaxed) + 1 >= total {
                        done.store(true, Ordering::Relaxed);
                    }
                }
                phase.record(&latency);
                connection.close(200, "done").await.ok();
                Ok(())
            }
        })
        .await
    }

    pub async fn cleanup(args: &Args, queue: &str) -> Result<(), Error> {
        let channel = connect(&args.url).await?.create_channel().await?;
        channel
            .queue_delete(queue, QueueDeleteOptions::default())
            .await?;
        Ok(())
    }
}

mod jetstream {
    use async_nats::jetstream::{self, consumer::pull, stream};
    use futures_util::StreamExt;

    use super::*;

    async fn context(url: &str) -> Result<jetstream::Context, Error> {
        Ok(jetstream::new(async_nats::connect(url).await?))
    }

    pub async fn publish(
        args: &Args,
        name: &str,
        payload: &[u8],
        deadline: Instant,
        phase: &Arc<Phase>,
    ) -> Result<(), Error> {
        context(&args.url)
            .await?
            .get_or_create_stream(stream::Config {
                name: name.to_owned(),
                subjects: vec![name.to_owned()],
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await?;
        let url = args.url.clone();
        let payload = payload.to_vec();
        let subject = name.to_owned();
        join_all(args.producers, |_| {
            let (url, payload, subject, phase) =
                (url.clone(), payload.clone(), subject.clone(), phase.clone());
            async move {
                // One connection per producer, as each HTTP producer has its own.
                let js = context(&url).await?;
                let mut latency = histogram();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    js.publish(subject.clone(), payload.clone().into())
                        .await?
                        .await?;
                    latency.record(sent.elapsed().as_micros() as u64).ok();
                    phase.messages.fetch_add(1, Ordering::Relaxed);
                }
                phase.record(&latency);
                Ok(())
            }
        })
        .await
    }

    pub async fn consume(
        args: &Args,
        name: &str,
        total: u64,
        phase: &Arc<Phase>,
    ) -> Result<(), Error> {
        let js = context(&args.url).await?;
        js.get_stream(name)
            .await?
            .get_or_create_consumer(
                "bench",
                pull::Config {
                    durable_name: Some("bench".into()),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ..Default::default()
                },
            )
            .await?;
        let done = Arc::new(AtomicBool::new(false));
        let url = args.url.clone();
        let name = name.to_owned();
        join_all(args.producers, |_| {
            let (url, name, phase, done) = (url.clone(), name.clone(), phase.clone(), done.clone());
            async move {
                let js = context(&url).await?;
                let consumer: jetstream::consumer::PullConsumer =
                    js.get_stream(&name).await?.get_consumer("bench").await?;
                let mut latency = histogram();
                while !done.load(Ordering::Relaxed) {
                    let mut batch = consumer
                        .fetch()
                        .max_messages(10)
                        .expires(Duration::from_millis(200))
                        .messages()
                        .await?;
                    while let Some(message) = batch.next().await {
                        let message = message?;
                        let acked = Instant::now();
                        message.ack().await?;
                        latency.record(acked.elapsed().as_micros() as u64).ok();
                        if phase.messages.fetch_add(1, Ordering::Relaxed) + 1 >= total {
                            done.store(true, Ordering::Relaxed);
                        }
                    }
                }
                phase.record(&latency);
                Ok(())
            }
        })
        .await
    }

    pub async fn cleanup(args: &Args, name: &str) -> Result<(), Error> {
        context(&args.url).await?.delete_stream(name).await?;
        Ok(())
    }
}
