//! A throwaway PostgreSQL cluster for tests: Debian's `postgresql` server
//! binaries, `initdb` into a temporary directory, listening on loopback at
//! a free port, started on first use and shared by the test process.
//! Every caller gets its own schema (a fresh, empty database as far as
//! bwgate can tell). A watchdog stops the cluster and deletes its files
//! once the test process is gone, however it ended.
//!
//! Used by the library's store suite and by the integration tests (each
//! includes this file with `#[path]`), so it depends on std only.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The database user and database the cluster is made with.
pub const USER: &str = "bwgate";
pub const DATABASE: &str = "bwgate";

pub struct PgCluster {
    pub dir: PathBuf,
    pub port: u16,
    bin: PathBuf,
    /// Run the server binaries as this user (PostgreSQL refuses root).
    run_as: Option<String>,
}

static SHARED: OnceLock<Result<PgCluster, String>> = OnceLock::new();
static NEXT_SCHEMA: AtomicU64 = AtomicU64::new(1);

impl PgCluster {
    /// The process's cluster, started on first use. Panics with what to
    /// install when the server binaries are missing.
    pub fn shared() -> &'static PgCluster {
        // A failed start is kept too: one attempt per process, not per test.
        match SHARED.get_or_init(PgCluster::start) {
            Ok(c) => c,
            Err(e) => panic!("cannot start a scratch PostgreSQL cluster: {e}"),
        }
    }

    /// A connection string for a new, empty schema of its own.
    pub fn fresh_url(&self) -> String {
        let n = NEXT_SCHEMA.fetch_add(1, Ordering::Relaxed);
        let schema = format!("t{}_{n}", std::process::id());
        self.psql(&format!("CREATE SCHEMA {schema}"))
            .unwrap_or_else(|e| panic!("creating schema {schema}: {e}"));
        self.url_for_schema(&schema)
    }

    /// A connection string whose tables go to `schema`.
    pub fn url_for_schema(&self, schema: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={USER} dbname={DATABASE} options='-c search_path={schema}'",
            self.port
        )
    }

    /// Runs one SQL command with psql (as the cluster's superuser).
    pub fn psql(&self, sql: &str) -> Result<String, String> {
        self.psql_in(DATABASE, sql)
    }

    fn psql_in(&self, database: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", USER, "-d", database, "-c", sql])
            .output()
            .map_err(|e| format!("psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    fn start() -> Result<PgCluster, String> {
        let bin = server_bin_dir()?;
        let run_as = is_root().then(|| "postgres".to_string());
        let dir = std::env::temp_dir().join(format!(
            "bwgate-pg-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if let Some(user) = &run_as {
            run(Command::new("chown").args([user.as_str(), path_str(&dir)?]))?;
        }
        let data = dir.join("data");
        let cluster = |program: &str| as_user(run_as.as_deref(), &bin.join(program));
        run(cluster("initdb").args([
            "-D",
            path_str(&data)?,
            "-U",
            USER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]))?;
        // A port free now; a race with another process shows as a failed
        // start, and the next try takes another.
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port()?;
            let options = format!(
                "-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={} \
                 -c max_connections=300 -c shared_buffers=64MB",
                path_str(&dir)?
            );
            let started = run(cluster("pg_ctl").args([
                "-D",
                path_str(&data)?,
                "-l",
                path_str(&dir.join("server.log"))?,
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ]));
            match started {
                Ok(()) => {
                    let pg = PgCluster {
                        dir: dir.clone(),
                        port,
                        bin: bin.clone(),
                        run_as: run_as.clone(),
                    };
                    pg.spawn_watchdog()?;
                    pg.psql_in("postgres", &format!("CREATE DATABASE {DATABASE}"))?;
                    return Ok(pg);
                }
                Err(e) => last_error = e,
            }
        }
        Err(format!("pg_ctl start failed: {last_error}"))
    }

    /// Stops the cluster (immediate: tests want no checkpoint) and removes
    /// its files once this process has exited.
    fn spawn_watchdog(&self) -> Result<(), String> {
        let data = self.dir.join("data");
        let stop = match &self.run_as {
            Some(user) => format!(
                "runuser -u {user} -- {} -D {} -m immediate stop",
                path_str(&self.bin.join("pg_ctl"))?,
                path_str(&data)?
            ),
            None => format!(
                "{} -D {} -m immediate stop",
                path_str(&self.bin.join("pg_ctl"))?,
                path_str(&data)?
            ),
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            dir = path_str(&self.dir)?,
        );
        Command::new("setsid")
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("watchdog: {e}"))?;
        Ok(())
    }

    /// The server's log so far (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

/// `BWGATE_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin` (Debian).
fn server_bin_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("BWGATE_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| {
            "no PostgreSQL server binaries: install Debian's `postgresql` (scripts/test.sh does) \
             or set BWGATE_PG_BIN"
                .to_string()
        })?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no initdb under /usr/lib/postgresql/*/bin".to_string())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn as_user(user: Option<&str>, program: &Path) -> Command {
    match user {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--"]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} exited {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn path_str(p: &Path) -> Result<&str, String> {
    p.to_str()
        .ok_or_else(|| format!("{} is not UTF-8", p.display()))
}
