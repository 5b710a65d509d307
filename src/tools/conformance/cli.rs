//! `bwgate replay`: its arguments and exit codes (the runner is in
//! [`super::runner`]).

use std::path::PathBuf;
use std::process::ExitCode;

use super::{self as conf, ReplayTarget};

// No doc comment here: clap would take it over the subcommand's own help.
#[derive(clap::Args)]
pub struct ReplayArgs {
    /// Conformance directory: NNN-short-name/ cases (see tests/conformance/README.md).
    pub dir: PathBuf,
    /// Base URL of the server, `https://host:port`; requests go to
    /// `{url}/uc-one/v1/provisioning/{provisioningId}`.
    #[arg(long)]
    pub url: String,
    /// CA certificate(s) (PEM) the server certificate must chain to.
    #[arg(long)]
    pub cacert: PathBuf,
    /// Client certificate (PEM) for mTLS; with --key.
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM); with --cert.
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Provisioning account (HTTP Basic user) of the templates.
    #[arg(long)]
    pub user: String,
    /// Provisioning password.
    #[arg(long, env = "BWGATE_REPLAY_PASSWORD", hide_env_values = true)]
    pub password: String,
    /// Map a logical template name to a provisioningId (repeatable). Defaults:
    /// trusted=conformance-trusted, untrusted=conformance-untrusted,
    /// group=conformance-group, wholesale=conformance-wholesale,
    /// unknown=no-such-template.
    #[arg(long = "template", value_name = "NAME=ID")]
    pub templates: Vec<String>,
    /// Only cases whose directory name contains this text (repeatable).
    #[arg(long = "case", value_name = "TEXT")]
    pub cases: Vec<String>,
    /// Use this run token for {{run}} instead of a fresh one (to reproduce a run).
    #[arg(long)]
    pub run_token: Option<String>,
    /// Seconds allowed for one request.
    #[arg(long, default_value_t = 30)]
    pub timeout_secs: u64,
    /// Use HTTP/1.1 only (default: offer h2 and http/1.1 by ALPN; bwgate picks h2).
    #[arg(long)]
    pub http1: bool,
    /// DIR holds XSI cases (`tests/conformance/xsi`): `--user` /
    /// `--password` are then an XSI user's BroadWorks credentials.
    #[arg(long)]
    pub xsi: bool,
}

/// `bwgate replay`: 0 when every case passes, 1 when one fails (or the
/// run cannot proceed), 2 for a bad directory or bad flags.
pub fn cli(args: ReplayArgs) -> ExitCode {
    if args.xsi {
        return xsi_cli(args);
    }
    let mut cases = match conf::load_cases(&args.dir) {
        Ok(c) => c,
        Err(e) => return fail(2, &format!("replay: {e}")),
    };
    if !args.cases.is_empty() {
        cases.retain(|c| args.cases.iter().any(|f| c.name.contains(f.as_str())));
        if cases.is_empty() {
            return fail(2, "replay: no case matches --case");
        }
    }
    let mut templates = Vec::new();
    for flag in &args.templates {
        match conf::parse_template_flag(flag) {
            Ok(t) => templates.push(t),
            Err(e) => return fail(2, &format!("replay: {e}")),
        }
    }
    let (tls, runtime) = match client_and_runtime(&args) {
        Ok(pair) => pair,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let target = match ReplayTarget::new(&args.url, tls, &args.user, &args.password).await {
            Ok(t) => t,
            Err(e) => return fail(2, &format!("replay: {e}")),
        };
        let mut target =
            target.with_timeout(std::time::Duration::from_secs(args.timeout_secs.max(1)));
        for (name, id) in &templates {
            target = target.with_template(name, id);
        }
        if let Some(token) = &args.run_token {
            target = match target.with_run_token(token) {
                Ok(t) => t,
                Err(e) => return fail(2, &format!("replay: {e}")),
            };
        }
        println!(
            "replaying {} case(s) from {} against {} (run token {})",
            cases.len(),
            args.dir.display(),
            args.url,
            target.run_token()
        );
        let report = conf::run_each(&cases, &target, |case| print!("{case}")).await;
        println!("{}", report.summary());
        if report.all_passed() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    })
}

/// `bwgate replay --xsi`: the XSI cases, as one user.
fn xsi_cli(args: ReplayArgs) -> ExitCode {
    use super::xsi;
    let mut cases = match xsi::load(&args.dir) {
        Ok(c) => c,
        Err(e) => return fail(2, &format!("replay: {e}")),
    };
    cases.retain(|c| {
        args.cases.is_empty() || args.cases.iter().any(|f| c.name.contains(f.as_str()))
    });
    let Some(rest) = args.url.strip_prefix("https://") else {
        return fail(2, "replay: --url must be https://host:port");
    };
    let (tls, runtime) = match client_and_runtime(&args) {
        Ok(pair) => pair,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let authority = rest.trim_end_matches('/');
        let host = authority
            .rsplit_once(':')
            .map_or(authority, |(h, _)| h)
            .to_string();
        let addr = match tokio::net::lookup_host(authority)
            .await
            .map(|mut a| a.next())
        {
            Ok(Some(a)) => a,
            _ => return fail(2, &format!("replay: cannot resolve {authority}")),
        };
        let client = match crate::client::HttpsClient::new(addr, &host, tls) {
            Ok(c) => c,
            Err(e) => return fail(2, &format!("replay: {e}")),
        };
        let target = xsi::XsiTarget {
            client,
            user: args.user.clone(),
            password: args.password.clone(),
            timeout: std::time::Duration::from_secs(args.timeout_secs.max(1)),
        };
        let bearer = match target.bearer().await {
            Ok(t) => t,
            Err(e) => {
                return fail(
                    1,
                    &format!("replay: no bearer token for {}: {e}", args.user),
                )
            }
        };
        println!(
            "replaying {} XSI case(s) from {} as {}",
            cases.len(),
            args.dir.display(),
            args.user
        );
        let mut failed = 0;
        for case in &cases {
            match target.run(case, &bearer).await {
                Ok(()) => println!("PASS {} - {}", case.name, case.description),
                Err(e) => {
                    failed += 1;
                    println!("FAIL {} - {}\n{e}", case.name, case.description);
                }
            }
        }
        println!("{} passed, {failed} failed", cases.len() - failed);
        if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    })
}

/// The TLS client settings and the runtime a replay runs on.
fn client_and_runtime(
    args: &ReplayArgs,
) -> Result<(rustls::ClientConfig, tokio::runtime::Runtime), ExitCode> {
    let tls = crate::tls::client_config(
        &args.cacert,
        args.cert.as_deref(),
        args.key.as_deref(),
        !args.http1,
    )
    .map_err(|e| fail(2, &format!("replay: {e}")))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(1, &format!("replay: cannot start the runtime: {e}")))?;
    Ok((tls, runtime))
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("bwgate: {message}");
    ExitCode::from(code)
}
