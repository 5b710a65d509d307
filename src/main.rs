//! The `bwgate` command: serve, certificates, config checks, error table;
//! the tooling commands (`load`, `bench-*`, `replay`) are in `bwgate::tools`.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use bwgate::config::{self, ClientAuth, LogFormat, Overrides, StoreBackend};
use bwgate::domain::ErrorCode;

#[derive(Parser)]
#[command(
    name = "bwgate",
    version,
    about = "BroadWorks-compatible provisioning gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (embedded default: SQLite in ./data, dev certificates in ./certs).
    Serve(ServeArgs),
    /// The license core as its own service (gateways with `[license]
    /// mode = "remote"` send it their commands over mTLS).
    #[command(subcommand)]
    LicenseCore(LicenseCoreCommand),
    /// Certificates.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// XSI token keys.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Print the error-code table shared by every face.
    Errors {
        #[arg(long, value_enum, default_value = "markdown")]
        format: TableFormat,
    },
    /// Read a password on stdin and print its argon2id hash for
    /// `templates.provisioning_password_hash`.
    HashPassword,
    /// mTLS load generator for loopback targets: throughput, status and
    /// errorCode counts, HDR latency percentiles.
    Load(bwgate::tools::load::LoadArgs),
    /// Bare hyper+rustls server answering a fixed 200 (benchmark ceiling).
    #[command(hide = true)]
    BenchBaseline(bwgate::tools::load::baseline::BaselineArgs),
    /// The store's own durable AddUser throughput, no TLS/HTTP/XML (benchmark anchor).
    #[command(hide = true)]
    BenchStore(bwgate::tools::load::store_bench::StoreBenchArgs),
    /// Replay a conformance directory (recorded requests + expected answers)
    /// against a bwgate server; exit 0 only if every case passes.
    Replay(bwgate::tools::conformance::ReplayArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// TOML config file; `BWGATE__SECTION__KEY` variables and flags override it.
    #[arg(long, short)]
    config: Option<PathBuf>,
    #[arg(long)]
    listen: Option<SocketAddr>,
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    #[arg(long)]
    portal_listen: Option<SocketAddr>,
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[arg(long)]
    certs_dir: Option<PathBuf>,
    #[arg(long, value_enum)]
    client_auth: Option<ClientAuthArg>,
    #[arg(long, value_enum)]
    log_format: Option<LogFormatArg>,
    #[arg(long)]
    log_level: Option<String>,
    /// `sqlite` (embedded, the default) or `postgres` (`--store-url`).
    #[arg(long, value_enum)]
    store_backend: Option<StoreBackendArg>,
    /// PostgreSQL connection string (`postgres://user:password@host/db`).
    #[arg(long)]
    store_url: Option<String>,
}

#[derive(Subcommand)]
enum LicenseCoreCommand {
    /// Serve `POST /license-core/v1/commands` on the mTLS listener, with
    /// this process's own store (no flow-through, portal or demo).
    Serve(ServeArgs),
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Write a dev CA, a server certificate (1 year) and a client certificate.
    Init {
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum TokensCommand {
    /// Make a new XSI token signing key; the current one keeps verifying
    /// the tokens it signed (until the next rotation). Restart the nodes
    /// (and copy the key files to each) to sign with it.
    RotateKey {
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a config file (with the environment's overrides) and explain every error.
    Check { file: PathBuf },
}

#[derive(Clone, Copy, ValueEnum)]
enum TableFormat {
    Markdown,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum ClientAuthArg {
    Require,
    Optional,
    Off,
}

#[derive(Clone, Copy, ValueEnum)]
enum StoreBackendArg {
    Sqlite,
    Postgres,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Pretty,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args, false),
        Command::LicenseCore(LicenseCoreCommand::Serve(args)) => serve(args, true),
        Command::Certs(CertsCommand::Init { dir, force }) => {
            match bwgate::tls::init_dev_certs(&dir, force) {
                Ok(paths) => {
                    println!(
                        "wrote CA {}, server {}, client {}",
                        paths.ca_cert.display(),
                        paths.server_cert.display(),
                        paths.client_cert.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(1, &format!("certs init: {e}")),
            }
        }
        Command::Config(ConfigCommand::Check { file }) => check_config(file),
        Command::Tokens(TokensCommand::RotateKey { data_dir }) => {
            match bwgate::tokens::TokenIssuer::rotate(&data_dir) {
                Ok(kid) => {
                    println!(
                        "new XSI token key {kid} in {}; the previous key keeps verifying its tokens",
                        data_dir.join(bwgate::tokens::KEY_FILE).display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(1, &format!("tokens rotate-key: {e}")),
            }
        }
        Command::Errors { format } => {
            match format {
                TableFormat::Markdown => print!("{}", ErrorCode::markdown_table()),
                TableFormat::Json => {
                    let rows: Vec<_> = ErrorCode::ALL
                        .iter()
                        .map(|c| {
                            let i = c.info();
                            serde_json::json!({"code": i.code, "httpStatus": i.http_status, "summary": i.summary, "inSubscriberErrors": i.async_possible})
                        })
                        .collect();
                    println!("{}", serde_json::Value::Array(rows));
                }
            }
            ExitCode::SUCCESS
        }
        Command::Load(args) => bwgate::tools::load::cli(args),
        Command::BenchBaseline(args) => bwgate::tools::load::baseline::cli(args),
        Command::BenchStore(args) => bwgate::tools::load::store_bench::cli(args),
        Command::HashPassword => {
            let mut input = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut input) {
                return fail(1, &format!("reading stdin: {e}"));
            }
            let password = input.trim_end_matches(['\r', '\n']);
            match bwgate::domain::credentials::hash_password(password) {
                Ok(h) => {
                    println!("{h}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(1, &e.to_string()),
            }
        }
        Command::Replay(args) => bwgate::tools::conformance::cli(args),
    }
}

/// `core`: run as a remote license core.
fn serve(args: ServeArgs, core: bool) -> ExitCode {
    let overrides = Overrides {
        listen: args.listen,
        admin_listen: args.admin_listen,
        portal_listen: args.portal_listen,
        data_dir: args.data_dir,
        certs_dir: args.certs_dir,
        client_auth: args.client_auth.map(|a| match a {
            ClientAuthArg::Require => ClientAuth::Require,
            ClientAuthArg::Optional => ClientAuth::Optional,
            ClientAuthArg::Off => ClientAuth::Off,
        }),
        log_format: args.log_format.map(|f| match f {
            LogFormatArg::Pretty => LogFormat::Pretty,
            LogFormatArg::Json => LogFormat::Json,
        }),
        log_level: args.log_level,
        store_backend: args.store_backend.map(|b| match b {
            StoreBackendArg::Sqlite => StoreBackend::Sqlite,
            StoreBackendArg::Postgres => StoreBackend::Postgres,
        }),
        store_url: args.store_url,
    };
    let mut cfg = match config::load(args.config.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => return fail(2, &e.to_string()),
    };
    if core {
        cfg.license.serve_core = true;
        cfg.demo.enabled = false;
    }
    if let Err(e) = config::validate(&cfg) {
        return fail(2, &e.to_string());
    }
    bwgate::telemetry::init_logging(&cfg.log);
    match bwgate::serve::run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "bwgate failed");
            fail(1, &e.to_string())
        }
    }
}

fn check_config(file: PathBuf) -> ExitCode {
    let cfg = match config::load(Some(&file), &Overrides::default()) {
        Ok(c) => c,
        Err(e) => return fail(2, &format!("{}: {e}", file.display())),
    };
    match config::validate(&cfg) {
        Ok(()) => {
            for w in config::warnings(&cfg) {
                eprintln!("{}: warning: {}: {}", file.display(), w.key, w.message);
            }
            println!(
                "{}: OK ({} partner(s), {} cluster(s), {} template(s))",
                file.display(),
                cfg.partners.len(),
                cfg.clusters.len(),
                cfg.templates.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(2, &format!("{}: {e}", file.display())),
    }
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("bwgate: {message}");
    ExitCode::from(code)
}
