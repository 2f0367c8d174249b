//! SDL 2.0 / 2.1: the model, parsing and validation, and what the official Akash TypeScript SDK
//! (`@akashnetwork/chain-sdk`) derives from a document: the on-chain deployment groups, the provider
//! manifest and the manifest version.
//!
//! ```
//! let text = r#"
//! version: "2.0"
//! services:
//!   web:
//!     image: nginx
//!     expose:
//!       - port: 80
//!         to:
//!           - global: true
//! profiles:
//!   compute:
//!     web:
//!       resources:
//!         cpu: { units: 0.5 }
//!         memory: { size: 512Mi }
//!         storage: { size: 1Gi }
//!   placement:
//!     dc:
//!       pricing:
//!         web: { denom: uact, amount: 1000 }
//! deployment:
//!   web:
//!     dc: { profile: web, count: 1 }
//! "#;
//! let sdl = crds::sdl::Sdl::parse(text).unwrap();
//! assert_eq!(sdl.groups()[0].resources[0].resource.cpu.units.val, "500");
//! assert_eq!(sdl.manifest_version_hex().len(), 64);
//! ```
//!
//! Where the reference SDK fails on a document (also where it fails with a JavaScript error while
//! building groups or the manifest), [`Sdl::parse`] rejects it with a message naming the field.

mod endpoints;
pub mod error;
pub mod groups;
mod js;
pub mod manifest;
pub mod model;
pub mod names;
mod parse;
mod rules;
mod schema;
mod schema_compute;
mod schema_service;
pub mod units;
pub mod version;

pub use error::{SdlError, SdlIssue};
pub use groups::GroupSpec;
pub use manifest::ManifestGroup;
pub use model::SdlDocument;
pub use schema_compute::STORAGE_CLASSES;

use error::Report;
use serde_yaml::Value;

/// A valid SDL document with its groups and manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Sdl {
    document: SdlDocument,
    groups: Vec<GroupSpec>,
    manifest: Vec<ManifestGroup>,
}

impl Sdl {
    /// Parses and validates SDL text (YAML).
    pub fn parse(text: &str) -> Result<Self, SdlError> {
        Self::from_value(parse::read_yaml(text).map_err(SdlError::Yaml)?)
    }

    /// Validates a document built in code (or read from a custom resource).
    pub fn from_document(document: &SdlDocument) -> Result<Self, SdlError> {
        let value = serde_yaml::to_value(document)
            .map_err(|e| SdlError::Invalid(vec![SdlIssue::new("", e.to_string())]))?;
        Self::from_value(value)
    }

    fn from_value(value: Value) -> Result<Self, SdlError> {
        let mut report = Report::default();
        schema::check_document(&value, &mut report);
        finish(&mut report)?;
        let document: SdlDocument = serde_yaml::from_value(value).map_err(|e| {
            SdlError::Invalid(vec![SdlIssue::new("", format!("not an SDL document: {e}"))])
        })?;
        rules::check(&document, &mut report);
        finish(&mut report)?;
        let groups = groups::build(&document).map_err(|i| SdlError::Invalid(vec![i]))?;
        let manifest =
            manifest::build(&document, &groups).map_err(|i| SdlError::Invalid(vec![i]))?;
        Ok(Self {
            document,
            groups,
            manifest,
        })
    }

    /// The document as written.
    pub fn document(&self) -> &SdlDocument {
        &self.document
    }

    /// The on-chain deployment groups, sorted by name.
    pub fn groups(&self) -> &[GroupSpec] {
        &self.groups
    }

    /// The provider manifest, one group per placement.
    pub fn manifest(&self) -> &[ManifestGroup] {
        &self.manifest
    }

    /// The canonical JSON of the manifest, the text that is hashed.
    pub fn manifest_json(&self) -> String {
        version::manifest_json(&self.manifest)
    }

    /// The manifest version (deployment hash), SHA-256 of [`Sdl::manifest_json`].
    pub fn manifest_version(&self) -> [u8; 32] {
        version::manifest_version(&self.manifest)
    }

    /// The manifest version in lowercase hex.
    pub fn manifest_version_hex(&self) -> String {
        version::hex(&self.manifest_version())
    }
}

/// Fails with the collected issues, each reported once, in the order found.
fn finish(report: &mut Report) -> Result<(), SdlError> {
    if report.list.is_empty() {
        return Ok(());
    }
    let mut seen = std::collections::HashSet::new();
    let issues = std::mem::take(&mut report.list)
        .into_iter()
        .filter(|i| seen.insert(i.clone()))
        .collect();
    Err(SdlError::Invalid(issues))
}
