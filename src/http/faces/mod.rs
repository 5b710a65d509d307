//! Faces: what each kind of caller sees. Each translates its wire format
//! into domain calls and answers through `http::transport`'s renderers.
//! The flow-through API (AS provisioning), the portal pages (activation,
//! self-activation sign-in, org approval), the partner admin API and
//! pages, and the operator API on the ops listener.

pub mod admin;
pub mod broadworks_credentials;
pub mod flowthrough;
pub mod license_core;
pub mod org_licenses;
pub mod partner;
pub mod portal;
pub mod xsi;
