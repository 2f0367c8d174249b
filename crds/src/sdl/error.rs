//! Errors of SDL parsing and validation, each naming the offending field by its path.

use std::fmt;

/// One problem in an SDL document: the path of the field (`services.web.expose[0].port`) and what is
/// wrong with it, in plain words.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SdlIssue {
    pub path: String,
    pub message: String,
}

impl SdlIssue {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Why an SDL document was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdlError {
    /// The text is not YAML.
    #[error("the SDL is not valid YAML: {0}")]
    Yaml(String),
    /// The YAML is not a valid SDL; every problem found is listed.
    #[error("{}", Issues(.0))]
    Invalid(Vec<SdlIssue>),
}

impl SdlError {
    /// The problems found (one, for a YAML error, with an empty path).
    pub fn issues(&self) -> Vec<SdlIssue> {
        match self {
            SdlError::Yaml(message) => vec![SdlIssue::new("", message.clone())],
            SdlError::Invalid(issues) => issues.clone(),
        }
    }
}

struct Issues<'a>(&'a [SdlIssue]);

impl fmt::Display for Issues<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "{n} problem{} in the SDL:",
            if n == 1 { "" } else { "s" }
        )?;
        for issue in self.0 {
            write!(f, "\n  {issue}")?;
        }
        Ok(())
    }
}

/// A field path being built while walking the document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath(String);

impl FieldPath {
    pub fn root() -> Self {
        Self(String::new())
    }

    /// The path of a named child.
    pub fn key(&self, name: &str) -> Self {
        if self.0.is_empty() {
            Self(name.to_string())
        } else {
            Self(format!("{}.{name}", self.0))
        }
    }

    /// The path of a list item.
    pub fn index(&self, i: usize) -> Self {
        Self(format!("{}[{i}]", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("(document)")
        } else {
            f.write_str(&self.0)
        }
    }
}

/// Collects issues while validating.
#[derive(Debug, Default)]
pub struct Report {
    pub list: Vec<SdlIssue>,
}

impl Report {
    pub fn push(&mut self, path: &FieldPath, message: impl Into<String>) {
        self.list.push(SdlIssue::new(path.to_string(), message));
    }
}
