//! Flow-through document parsing: decode + stream-parse + validate into
//! domain operations, no I/O.
//!
//! `cargo bench --bench flowthrough` — `single_add_user` is the parse cost
//! of one typical AddUser request (time per document = time per
//! operation); `bulk_1000` is a 1000-operation document, reported in
//! operations per second. `latin1_add_user` adds the ISO-8859-1 → UTF-8
//! conversion. `attributes/10000` and `attributes/100000` parse one
//! element carrying that many attributes (limits raised so it is read to
//! the end), reported per attribute: equal times per attribute mean the
//! attribute handling is linear (quick-xml's duplicate check made it
//! quadratic, 10x the time per attribute at 10x the count).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use bwgate::flowthrough::{parse_request, ParseLimits};

const NS: &str = "urn:bwgate:flowthrough:1";

fn add_user(i: usize, last_name: &str) -> String {
    format!(
        "<AddUser>\n    <userId>user{i}@acme.example.com</userId>\n    \
         <serviceProviderId>Reseller1</serviceProviderId>\n    <groupId>AcmeCorp</groupId>\n    \
         <firstName>First{i}</firstName>\n    <lastName>{last_name}</lastName>\n    \
         <emailAddress>user{i}@Acme.Example.com</emailAddress>\n    \
         <phoneNumber>+1 240 555 {:04}</phoneNumber>\n    <extension>{:04}</extension>\n    \
         <language>English</language>\n    <timeZone>America/New_York</timeZone>\n    \
         <package>standard</package>\n  </AddUser>\n  ",
        i % 10_000,
        1000 + i % 9000
    )
}

fn document(encoding: &str, ops: impl Iterator<Item = String>) -> String {
    let body: String = ops.collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"{encoding}\"?>\n\
         <ProvisioningRequest xmlns=\"{NS}\" requestId=\"bench-1\">\n  {body}</ProvisioningRequest>\n"
    )
}

fn bench(c: &mut Criterion) {
    let limits = ParseLimits::default();
    let single = document("UTF-8", std::iter::once(add_user(1, "Doe")));
    let latin1: Vec<u8> = document("ISO-8859-1", std::iter::once(add_user(1, "Müller")))
        .chars()
        .map(|ch| ch as u32 as u8)
        .collect();
    let bulk = document("UTF-8", (0..1000).map(|i| add_user(i, "Doe")));

    // Sanity: everything parses and validates.
    for body in [single.as_bytes(), latin1.as_slice(), bulk.as_bytes()] {
        let parsed = parse_request(body, Some("application/xml"), &limits).expect("parse");
        assert!(parsed.operations.iter().all(|o| o.result.is_ok()));
    }

    let mut group = c.benchmark_group("flowthrough_parse");
    group.throughput(Throughput::Elements(1));
    group.bench_function("single_add_user", |b| {
        b.iter(|| {
            parse_request(
                black_box(single.as_bytes()),
                Some("application/xml"),
                &limits,
            )
        })
    });
    group.bench_function("latin1_add_user", |b| {
        b.iter(|| {
            parse_request(
                black_box(&latin1),
                Some("text/xml; charset=ISO-8859-1"),
                &limits,
            )
        })
    });
    group.throughput(Throughput::Elements(1000));
    group.bench_function("bulk_1000", |b| {
        b.iter(|| parse_request(black_box(bulk.as_bytes()), Some("application/xml"), &limits))
    });
    group.finish();
}

fn attributes(c: &mut Criterion) {
    let raised = ParseLimits {
        max_attributes: usize::MAX,
        max_namespace_declarations: usize::MAX,
        ..ParseLimits::default()
    };
    let mut group = c.benchmark_group("attributes");
    for n in [10_000usize, 100_000] {
        let run: String = (0..n).map(|i| format!(" a{i}=\"\"")).collect();
        let doc = document(
            "UTF-8",
            std::iter::once(add_user(1, "Doe").replacen(
                "<AddUser>",
                &format!("<AddUser{run}>"),
                1,
            )),
        );
        parse_request(doc.as_bytes(), Some("application/xml"), &raised).expect("parse");
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(n.to_string(), |b| {
            b.iter(|| parse_request(black_box(doc.as_bytes()), Some("application/xml"), &raised))
        });
    }
    group.finish();
}

criterion_group!(benches, bench, attributes);
criterion_main!(benches);
