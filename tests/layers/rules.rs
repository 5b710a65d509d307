//! The layer rules and today's known violations ("debts").
//!
//! Reading guide: `LAYERS` orders the top-level modules of `src/` from the
//! bottom (`domain`) to the top (`tools`); a module may use only modules in
//! layers BELOW its own, which also rules out cycles. On top of that, the
//! issue-11 rules: only `store` names rusqlite; `domain` imports only
//! `domain`; `store` imports only `domain`, `commands` and `config` (its own
//! typed settings; `config` itself imports only `domain`); faces never
//! import `store` (nor reach it as `app.store`). Test-only code
//! (`#[cfg(test)]`) is not held to the module rules.

/// Bottom first. Modules in one layer must not use each other.
pub const LAYERS: &[&[&str]] = &[
    // Pure types and rules; XML and HTML lexical rules; the bare HTTPS client.
    &["domain", "xml", "html", "client"],
    // Typed configuration; the normalized command JSON.
    &["config", "commands"],
    // Data access; TLS set-up; logging/metrics; the flow-through wire
    // contract (parse, respond).
    &["store", "tls", "telemetry", "flowthrough"],
    // Signed links and XSI tokens; the license core; XSI documents; demo
    // seeding.
    &["links", "tokens", "license", "xsi", "demo"],
    // Email (outbox, composition, mailer); the XSP client.
    &["notify", "xsp"],
    // Activation and organization-approval links and their emails.
    &["activation", "orgs"],
    // The use cases (accept, workers, credentials); Xsi-Events delivery.
    &["provision", "events"],
    // State shared by the faces.
    &["app"],
    // Transport and faces (flow-through, portal, partner, admin).
    &["http"],
    // Start-up: wires everything.
    &["serve"],
    // `bwgate load`, `bench-*`, `replay`: nothing in the service uses them.
    &["tools"],
];

/// Faces: modules that speak a wire format to callers. They reach data
/// through the use cases (`provision`), never through `store`.
pub const FACES: &[&str] = &["http", "flowthrough", "xsi"];

/// Modules `store` may import.
pub const STORE_MAY_IMPORT: &[&str] = &["domain", "commands", "config"];

/// Modules `domain` may import (besides itself).
pub const DOMAIN_MAY_IMPORT: &[&str] = &[];

/// External crates only `store` may name.
pub const STORE_ONLY_CRATES: &[&str] = &[
    "rusqlite",
    "tokio_postgres",
    "deadpool_postgres",
    "tokio_postgres_rustls",
];

/// One known violation: the edge `from` → `to` (every rule it breaks).
/// This list may only shrink: the check fails when a listed edge no
/// longer breaks a rule, and asks for its line to be deleted.
#[derive(Debug, Clone, Copy)]
pub struct Debt {
    pub from: &'static str,
    pub to: &'static str,
    pub why: &'static str,
}

/// Today's violations (issue 11 names the work that removes each): none
/// left. A new one is fixed, not listed here.
pub const DEBTS: &[Debt] = &[];
