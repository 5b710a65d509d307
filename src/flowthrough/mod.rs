//! The flow-through wire contract, version 1 (`schemas/flowthrough-v1.xsd`):
//! the XML document a BroadWorks AS posts to
//! `/uc-one/v1/provisioning/{provisioningId}` and the answer it gets.
//!
//! ```text
//! <ProvisioningRequest xmlns="urn:bwgate:flowthrough:1" requestId="…">
//!   <AddUser> <userId/> <serviceProviderId/> <groupId/> <firstName/> … </AddUser>
//!   <ModifyUser>…</ModifyUser> <DeleteUser>…</DeleteUser>
//!   <RequestActivationCode>…</RequestActivationCode>
//! </ProvisioningRequest>
//! ```
//!
//! - [`parse_request`] decodes the body (UTF-8 with or without BOM,
//!   ISO-8859-1, US-ASCII), parses it in one streaming pass and validates
//!   each operation into a [`crate::domain::subscriber::Operation`].
//!   Whole-document problems are a [`DocumentError`]; a bad operation only
//!   fails itself ([`ParsedOperation::result`]).
//! - Tolerant where it is safe: any namespace or prefix (or none), fields
//!   in any order, unknown elements skipped and listed in
//!   [`ParsedRequest::unknown_elements`], comments and processing
//!   instructions ignored, field text trimmed.
//! - Strict where it matters: no DTD, no entity other than the five
//!   predefined ones (nothing is ever expanded or fetched), depth / element
//!   / operation limits enforced while streaming.
//! - [`render_response`] writes `<ProvisioningResponse>`.
//! - [`ParsePool`] runs the parse of a large document on a blocking
//!   thread, a bounded number at once.

pub mod charset;
pub mod offload;
pub mod parse;
pub mod response;

#[cfg(test)]
mod tests;

pub use offload::{OffloadError, ParsePool};
pub use parse::{
    parse_request, parse_str, DocumentError, ParseLimits, ParsedOperation, ParsedRequest,
};
pub use response::{render_response, ResultLine};

/// Namespace of flow-through documents (accepted but not required on input).
pub const NAMESPACE: &str = "urn:bwgate:flowthrough:1";

/// Counter the HTTP face increments by `unknown_elements.len()`.
pub const UNKNOWN_ELEMENTS_METRIC: &str = "bwgate_flowthrough_unknown_elements_total";
