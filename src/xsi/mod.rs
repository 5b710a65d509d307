//! XSI (BroadWorks Xtended Services Interface) documents: the XML of
//! `/com.broadsoft.xsi-actions/v2.0/` and `/com.broadsoft.xsi-events/v2.0/`,
//! namespace `http://schema.broadsoft.com/xsi`.
//!
//! - [`document`]: a bounded, namespace-tolerant reader of any XSI
//!   document into a small [`Element`] tree ([`parse`], [`parse_str`]),
//!   with depth / element / size limits ([`XsiLimits`]) and a typed error
//!   ([`XsiParseError`]); DTDs, undeclared entities, characters XML 1.0
//!   cannot carry and anything not well-formed are refused. The tree
//!   writes itself back as XML ([`Element::to_xml`]): parse → `to_xml` →
//!   parse gives the same tree.
//! - [`profile`]: the user `Profile` an XSP answers to
//!   `GET …/user/{userId}/profile` (what `crate::xsp` signs in with).
//! - [`error_info`]: the `ErrorInfo` body of an XSI error (what an XSP
//!   answers on failure, and what bwgate's XML faces write, see
//!   `crate::http::error::error_info_xml`).
//! - [`actions`]: bwgate's own Xsi-Actions documents (issue 14): the
//!   `Profile`, `Services`, `IntegratedIMP` (and its `PUT` reader),
//!   `Enterprise` directory page, `LoginToken` and `Versions` it answers
//!   with, as trees.
//! - [`events`]: the Xsi-Events documents (channels, subscriptions, event
//!   responses, `Provisioning` events) and their channel-stream chunks.
//! - [`badgerfish`]: any tree as the BadgerFish JSON Xsi-Actions answers
//!   `?format=json` / `Accept: application/json` with.
//!
//! Readers of typed documents take the tree, so every XSI document goes
//! through the same limits and refusals, and match elements by local name
//! (any prefix or namespace, or none), as BroadWorks clients do.

pub mod actions;
pub mod badgerfish;
mod build;
pub mod document;
pub mod error_info;
pub mod events;
pub mod profile;

pub use actions::ProfileView;
pub use badgerfish::to_badgerfish;

pub use document::{
    parse, parse_str, Element, XsiLimits, XsiParseError, XSI_INSTANCE_NAMESPACE, XSI_NAMESPACE,
};
pub use error_info::{ErrorInfo, ErrorInfoError};
pub use profile::{Profile, ProfileError};

#[cfg(test)]
mod tests;
