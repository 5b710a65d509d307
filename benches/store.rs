//! Group commit in numbers: durable (synchronous=FULL) SQLite writes with
//! one writer at a time versus many concurrent writers sharing commits.
//!
//! `cargo bench --bench store` — compare the per-write time of the
//! `concurrent/64` group against `sequential`: the ratio is what group
//! commit buys on this disk.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use bwgate::config::StoreConfig;
use bwgate::domain::Partner;
use bwgate::store::sqlite::SqliteStore;
use bwgate::store::Store;

fn partner(i: u64) -> Partner {
    Partner {
        id: format!("p{i}"),
        name: format!("Partner {i}"),
        admin_email: None,
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        rt.block_on(SqliteStore::open(
            &dir.path().join("bench.db"),
            &StoreConfig::default(),
        ))
        .expect("open"),
    );
    let mut next = 0u64;
    let mut group = c.benchmark_group("store_writes");
    group.sample_size(10);

    group.throughput(Throughput::Elements(1));
    group.bench_function("sequential", |b| {
        b.to_async(&rt).iter(|| {
            next += 1;
            let store = store.clone();
            let p = partner(next);
            async move { store.upsert_partner(&p).await.expect("write") }
        })
    });

    for writers in [8u64, 64] {
        group.throughput(Throughput::Elements(writers));
        group.bench_function(format!("concurrent/{writers}"), |b| {
            b.to_async(&rt).iter_batched(
                || {
                    next += writers;
                    next
                },
                |base| {
                    let store = store.clone();
                    async move {
                        let tasks: Vec<_> = (0..writers)
                            .map(|i| {
                                let store = store.clone();
                                tokio::spawn(async move {
                                    store.upsert_partner(&partner(base + i)).await
                                })
                            })
                            .collect();
                        for t in tasks {
                            t.await.expect("join").expect("write");
                        }
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
    rt.block_on(store.close()).expect("close");
}

criterion_group!(benches, bench);
criterion_main!(benches);
