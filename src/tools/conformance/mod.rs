//! The flow-through conformance suite and its runner (`bwgate replay`).
//!
//! A conformance directory (`tests/conformance/`, format in its
//! `README.md`) holds one sub-directory per case, `NNN-short-name/`, with
//! numbered steps `01-request.xml` + `01-expected.xml`, `02-…`, sent in
//! order, and an optional `case.toml` saying how to send each step
//! (template, auth, method, content type, expected HTTP status, repeat,
//! padding, …).
//!
//! - [`load_cases`] reads and checks a directory; every problem names the
//!   file it is in.
//! - [`render`] turns a step's bytes into what is sent: `{{run}}` (a token
//!   unique per run, so cases repeat against a stateful server) and `{{i}}`
//!   (inside repeats) are substituted on bytes, so ISO-8859-1 requests stay
//!   Latin-1.
//! - [`matcher`] compares only stable fields: the HTTP status; for a
//!   `ProvisioningResponse` the `requestId` and, per `result` in order,
//!   `operation`, `userId`, `status` (expected alternatives `a|b`) and the
//!   `errorCode` of a nested `error`; for an `ErrorInfo` the `errorCode`.
//!   Error texts and tracking ids are never compared.
//! - [`run`] replays cases against a [`ReplayTarget`] (any bwgate server,
//!   over bwgate's own mTLS client) and returns a [`Report`]; [`cli`] is
//!   the `bwgate replay` command around it.

pub mod case;
mod cli;
pub mod matcher;
pub mod render;
pub mod runner;
pub mod xsi;

use std::path::PathBuf;

pub use case::{load_cases, Auth, Case, Step, StepSpec, CASE_FILE};
pub use cli::{cli, ReplayArgs};
pub use matcher::{compare, normalize, Document, Expected, Mismatch, NormalizeError, ResultLine};
pub use render::{new_run_token, RenderError};
pub use runner::{
    parse_template_flag, run, run_each, CaseReport, Problem, ReplayTarget, Report, StepFailure,
    DEFAULT_TEMPLATES, WRONG_PASSWORD,
};

/// Why a conformance directory cannot be loaded or a target cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConformanceError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A case directory or step file that does not follow the format.
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("{}: {source}", path.display())]
    CaseToml {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("{}: {source}", path.display())]
    Render {
        path: PathBuf,
        #[source]
        source: RenderError,
    },
    #[error("{}: {source}", path.display())]
    Expected {
        path: PathBuf,
        #[source]
        source: NormalizeError,
    },
    #[error("{}: no case directories (NNN-short-name) found", path.display())]
    NoCases { path: PathBuf },
    #[error("invalid base URL {url:?}: {message}")]
    Url { url: String, message: String },
    #[error("--template {0:?}: expected NAME=ID with a non-empty name and id")]
    TemplateFlag(String),
    #[error("run token {0:?}: expected 1-20 lower-case letters or digits")]
    RunToken(String),
    #[error("resolving {host}: {message}")]
    Resolve { host: String, message: String },
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
}
