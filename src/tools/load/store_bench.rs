//! `bwgate bench-store` (hidden): the store's own AddUser throughput, the
//! anchor `scripts/bench.sh` compares bwgate with.
//!
//! The same durable work a flow-through AddUser causes (one document, one
//! AddUser of a new subscriber in one enterprise, trusted email, default
//! template settings, as `bwgate load`'s built-in body), handed straight
//! to the SQLite store by `--concurrency` tasks in a closed loop, with the
//! outbox delivery to the in-process license core running meanwhile; no
//! TLS, HTTP, XML or credential check. What bwgate reaches end to end,
//! divided by this, is the share of a core the gateway's own request
//! handling leaves to the store.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::StoreConfig;
use crate::domain::ids::UserId;
use crate::domain::subscriber::{NewSubscriber, Operation};
use crate::domain::template::{CustomerTemplate, Partner, TemplateSettings, TemplateSource};
use crate::license::{LicenseCore, LocalLicenseCore};
use crate::provision::{accept, AcceptBatch};
use crate::store::postgres::{PgOptions, PgStore, LANE_THREAD as PG_LANE_THREAD};
use crate::store::sqlite::{SqliteStore, WRITER_THREAD};
use crate::store::{SharedStore, StoreError};

#[derive(clap::Args, Debug, Clone)]
pub struct StoreBenchArgs {
    /// How long to run, in seconds (1..=60).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub seconds: u64,
    /// Concurrent callers (like connections of `bwgate load`).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Data directory (default: a new one under the system's temporary
    /// directory, removed afterwards).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Run against this PostgreSQL database instead of a SQLite file (its
    /// bwgate tables are created when missing; use a scratch database).
    #[arg(long)]
    pub store_url: Option<String>,
    /// PostgreSQL connections (with `--store-url`).
    #[arg(long, default_value_t = 16)]
    pub pool_size: usize,
    /// PostgreSQL writer lanes (with `--store-url`).
    #[arg(long, default_value_t = 2)]
    pub writers: usize,
    /// BroadWorks enterprises the users are spread over (1: every AddUser
    /// in one enterprise, like `bwgate load`'s built-in body).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub enterprises: u64,
    /// Make an Xsi-Events subscription (to the whole partner) first, so
    /// every status change also appends a provisioning event (without one,
    /// none is written): the event log's cost.
    #[arg(long)]
    pub event_subscription: bool,
}

pub fn cli(args: StoreBenchArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bwgate bench-store: runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let (dir, remove) = match &args.data_dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!(
                "bwgate-bench-store-{}-{}",
                std::process::id(),
                uuid::Uuid::now_v7().simple()
            )),
            true,
        ),
    };
    let result = rt.block_on(run(&dir, &args));
    if remove {
        let _ = std::fs::remove_dir_all(&dir);
    }
    match result {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bwgate bench-store: {e}");
            ExitCode::from(1)
        }
    }
}

fn template() -> CustomerTemplate {
    CustomerTemplate {
        provisioning_id: "bench-store".into(),
        partner_id: "bench".into(),
        cluster_id: None,
        name: "bench-store".into(),
        settings: TemplateSettings::default(),
        provisioning_username: "bench".into(),
        // Never checked: this benchmark has no credentials step.
        provisioning_password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        source: TemplateSource::Api,
        disabled_at: None,
    }
}

fn add_user(run: u64, n: u64, enterprises: u64) -> Result<Operation, StoreError> {
    let user_id = UserId::parse(&format!("load-{run}-{n}@load.bwgate.example"))
        .map_err(|e| StoreError::Database(format!("bench user id: {e}")))?;
    Ok(Operation::AddUser(NewSubscriber {
        user_id,
        service_provider_id: if enterprises == 1 {
            "loadsp".into()
        } else {
            format!("loadsp{}", n % enterprises)
        },
        group_id: "loadgroup".into(),
        first_name: "Load".into(),
        last_name: format!("User{n}"),
        email: Some(format!("load-{run}-{n}@load.bwgate.example")),
        phone_number: None,
        extension: None,
        mobile_phone_number: None,
        language: None,
        time_zone: None,
        package: None,
        is_trunk_user: false,
        has_route_list: false,
        service_provider_name: None,
        group_name: None,
    }))
}

async fn run(dir: &Path, args: &StoreBenchArgs) -> Result<String, StoreError> {
    let store: SharedStore = match &args.store_url {
        Some(url) => {
            let options = PgOptions {
                url: url.clone(),
                pool_size: args.pool_size,
                writers: args.writers,
                max_batch: StoreConfig::default().group_commit_max,
            };
            Arc::new(PgStore::open(&options, None).await?)
        }
        None => Arc::new(SqliteStore::open(&dir.join("bwgate.db"), &StoreConfig::default()).await?),
    };
    store
        .upsert_partner(&Partner {
            id: "bench".into(),
            name: "Bench".into(),
            admin_email: None,
        })
        .await?;
    let template = template();
    store.upsert_template(&template).await?;
    if args.event_subscription {
        use crate::domain::event::{EventDelivery, EventSubscription, EventTarget, EVENT_PACKAGE};
        store
            .put_event_subscription(&EventSubscription {
                id: "bench".into(),
                owner: "partner:bench".into(),
                partner_id: "bench".into(),
                node: "bench".into(),
                target: EventTarget::System,
                event_package: EVENT_PACKAGE.into(),
                delivery: EventDelivery::ChannelSet {
                    channel_set_id: "bench".into(),
                },
                application_id: None,
                expires_at: i64::MAX,
                acked_seq: 0,
                created_at: 0,
            })
            .await?;
    }
    let core: Arc<dyn LicenseCore> =
        LocalLicenseCore::new(store.clone(), crate::license::LicensePolicy::default());
    let wake = Arc::new(tokio::sync::Notify::new());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let delivery = crate::provision::worker::spawn_delivery(
        store.clone(),
        core.clone(),
        wake.clone(),
        stop_rx,
    );

    // Unique per run and process: two runs at once on one database (two
    // "nodes") write different users.
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        * 1_000_000
        + u64::from(std::process::id() % 1_000_000);
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let cpu_before = ThreadCpu::read();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut tasks = tokio::task::JoinSet::new();
    let enterprises = args.enterprises;
    for _ in 0..args.concurrency.max(1) {
        let (store, template, next, done, wake) = (
            store.clone(),
            template.clone(),
            next.clone(),
            done.clone(),
            wake.clone(),
        );
        tasks.spawn(async move {
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let outcome = accept::run(
                    store.as_ref(),
                    AcceptBatch {
                        template: template.clone(),
                        tracking_id: uuid::Uuid::now_v7().to_string(),
                        request_id: Some(format!("bench-{run_id}-{n}")),
                        now: crate::domain::now_millis(),
                        operations: vec![(0, add_user(run_id, n, enterprises)?)],
                        invalid: Vec::new(),
                        sent_user_ids: vec![None],
                        approvals: None,
                        activations: None,
                        self_activation: false,
                    },
                )
                .await?;
                if outcome.results.iter().any(|r| r.error_code.is_some()) {
                    return Err(StoreError::Database(format!(
                        "AddUser refused: {:?}",
                        outcome.results
                    )));
                }
                wake.notify_one();
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), StoreError>(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.map_err(|e| StoreError::Database(format!("bench task: {e}")))??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = ThreadCpu::read().since(&cpu_before);
    let _ = stop_tx.send(true);
    let _ = delivery.await;
    // Commands still pending when the window closed (delivery lagging
    // behind acceptance shows here), delivered now so the data directory
    // ends complete.
    let mut backlog = 0;
    loop {
        let settled = crate::provision::worker::deliver_due(&store, &core).await?;
        if settled == 0 {
            break;
        }
        backlog += settled;
    }
    let stats = store.stats();
    store.close().await?;
    let n = done.load(Ordering::Relaxed);
    let per = |ticks: u64| ticks as f64 * 1e6 / USER_HZ / (n.max(1) as f64);
    let report = serde_json::json!({
        "add_users": n,
        "seconds": elapsed,
        "ok_throughput": n as f64 / elapsed,
        "cpu_us_per_add_user": per(cpu.all).round(),
        "writer_cpu_us_per_add_user": per(cpu.writer).round(),
        "commands_pending_at_end": backlog,
        "store_backend": store.backend_name(),
        "store_transactions": stats.transactions_committed,
        "store_writes_per_transaction":
            stats.writes_committed as f64 / stats.transactions_committed.max(1) as f64,
        "store_largest_batch": stats.largest_batch,
        "store_conflict_reruns": stats.conflict_reruns,
        "store_isolated_reruns": stats.isolated_reruns,
    });
    // Pretty: one key per line, as `bwgate load --json` (bench.sh greps it).
    serde_json::to_string_pretty(&report).map_err(|e| StoreError::Database(format!("report: {e}")))
}

/// Clock ticks per second in /proc: 100 on every Linux (fixed by the
/// kernel ABI, whatever the kernel's own tick).
const USER_HZ: f64 = 100.0;

/// CPU time (clock ticks) of this process's threads, from /proc (Linux).
#[derive(Default)]
struct ThreadCpu {
    all: u64,
    writer: u64,
}

impl ThreadCpu {
    fn read() -> ThreadCpu {
        let mut cpu = ThreadCpu::default();
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return cpu;
        };
        for task in tasks.flatten() {
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            // "tid (comm) state ppid ..." — comm may hold spaces.
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let comm = stat.get(open + 1..close).unwrap_or("");
            let fields: Vec<&str> = stat
                .get(close + 2..)
                .unwrap_or("")
                .split_whitespace()
                .collect();
            let ticks: u64 = [11, 12]
                .iter()
                .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
                .sum();
            cpu.all += ticks;
            // Linux keeps the first 15 bytes of a thread's name.
            let sqlite_writer = &WRITER_THREAD.as_bytes()[..WRITER_THREAD.len().min(15)];
            if comm.as_bytes() == sqlite_writer || comm.starts_with(PG_LANE_THREAD) {
                cpu.writer += ticks;
            }
        }
        cpu
    }

    fn since(&self, before: &ThreadCpu) -> ThreadCpu {
        ThreadCpu {
            all: self.all.saturating_sub(before.all),
            writer: self.writer.saturating_sub(before.writer),
        }
    }
}
