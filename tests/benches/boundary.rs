//! The cost of one async call across the plugin boundary: a no-op
//! `Notifier::deliver`, called natively (no boundary), through the ABI-stable
//! trait object of a built-in (linked) plugin, and through the same trait
//! object of the plugin loaded from a dynamic library (which also enters the
//! library's own tokio runtime on every poll).
//!
//! `cargo bench -p zaqar-tests --bench boundary`

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use plugin_api::{
    notification::{Delivery, Notifier, NotifierBox},
    Constructor, NAMESPACE_NOTIFICATION,
};
use zaqar_fixture_plugins::NoopNotifier;
use zaqar_host::plugins::{self, Registry};
use zaqar_tests::plugin_library_release;

fn delivery() -> Delivery {
    Delivery {
        subscriber: "noop:bench".into(),
        project: "p".into(),
        queue: "q".into(),
        subscription_id: "s".into(),
        options: b"{}".to_vec().into(),
        payload: b"{\"body\":1}".to_vec().into(),
        allow_private_addresses: true,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Times `iterations` sequential awaited calls inside one task, so the
/// runtime's own entry cost is not part of the figure.
fn time_calls<N: Notifier>(
    rt: &tokio::runtime::Runtime,
    notifier: &N,
    iterations: u64,
) -> Duration {
    rt.block_on(async {
        let template = delivery();
        let start = Instant::now();
        for _ in 0..iterations {
            notifier
                .deliver(template.clone())
                .await
                .expect("noop delivers");
        }
        start.elapsed()
    })
}

fn builtin_noop(rt: &tokio::runtime::Runtime) -> NotifierBox {
    let build = zaqar_fixture_plugins::entry_points()
        .into_iter()
        .find(|e| e.name.as_str() == "noop")
        .and_then(|e| match e.constructor {
            Constructor::Notifier(build) => Some(build),
            _ => None,
        })
        .expect("the fixture has a noop notifier");
    rt.block_on(async {
        build(plugin_api::PluginContext {
            name: "noop".into(),
            config: b"{}".to_vec().into(),
            services: plugin_api::wrap_host_services(Quiet),
        })
        .await
        .into_result()
        .expect("builds")
    })
}

struct Quiet;

impl plugin_api::HostServices for Quiet {
    fn log(&self, _level: plugin_api::LogLevel, _message: plugin_api::types::RStr<'_>) {}
}

fn dylib_noop(rt: &tokio::runtime::Runtime) -> NotifierBox {
    let library = plugin_library_release("zaqar-fixture-plugins", "zaqar_fixture_plugins");
    let registry = Registry::discover(&[library]);
    let plugin = registry
        .select(NAMESPACE_NOTIFICATION, "noop", "bench")
        .expect("the fixture library loads");
    rt.block_on(plugins::build_notifier(plugin, &serde_json::json!({})))
        .expect("builds")
}

fn boundary(c: &mut Criterion) {
    let rt = runtime();
    let native = NoopNotifier;
    let builtin = builtin_noop(&rt);
    let dylib = dylib_noop(&rt);
    let mut group = c.benchmark_group("async call across the plugin boundary");
    group.bench_function("native (no boundary)", |b| {
        b.iter_custom(|n| time_calls(&rt, &native, n))
    });
    group.bench_function("built-in plugin", |b| {
        b.iter_custom(|n| time_calls(&rt, &builtin, n))
    });
    group.bench_function("dylib plugin", |b| {
        b.iter_custom(|n| time_calls(&rt, &dylib, n))
    });
    group.finish();
}

criterion_group!(benches, boundary);
criterion_main!(benches);
