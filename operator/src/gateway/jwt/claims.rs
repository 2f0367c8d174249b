//! What a tenant's token (AEP-64) grants, checked as the Go provider checks it: the claims'
//! rules (`version` v1, `iat`/`nbf`/`exp`, the `leases` access and its permissions) and which
//! provider, deployment, lease and scope it lets its issuer reach.

use serde::Deserialize;
use serde_json::Value;

/// What a route asks of the caller beyond owning the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    SendManifest,
    GetManifest,
    Logs,
    Shell,
    Events,
    Status,
    Restart,
    HostnameMigrate,
    IpMigrate,
    Attestation,
}

impl Scope {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "send-manifest" => Self::SendManifest,
            "get-manifest" => Self::GetManifest,
            "logs" => Self::Logs,
            "shell" => Self::Shell,
            "events" => Self::Events,
            "status" => Self::Status,
            "restart" => Self::Restart,
            "hostname-migrate" => Self::HostnameMigrate,
            "ip-migrate" => Self::IpMigrate,
            "attestation" => Self::Attestation,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SendManifest => "send-manifest",
            Self::GetManifest => "get-manifest",
            Self::Logs => "logs",
            Self::Shell => "shell",
            Self::Events => "events",
            Self::Status => "status",
            Self::Restart => "restart",
            Self::HostnameMigrate => "hostname-migrate",
            Self::IpMigrate => "ip-migrate",
            Self::Attestation => "attestation",
        }
    }
}

/// The payload as sent; checked by [`Claims::validate`].
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RawClaims {
    #[serde(default)]
    pub iss: Option<String>,
    #[serde(default)]
    pub iat: Option<Value>,
    #[serde(default)]
    pub nbf: Option<Value>,
    #[serde(default)]
    pub exp: Option<Value>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub leases: Option<RawLeases>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RawLeases {
    #[serde(default)]
    pub access: String,
    #[serde(default)]
    pub scope: Option<Vec<String>>,
    #[serde(default)]
    pub permissions: Option<Vec<RawPermission>>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RawPermission {
    #[serde(default)]
    pub provider: String,
    #[serde(default)]
    pub access: String,
    #[serde(default)]
    pub scope: Option<Vec<String>>,
    #[serde(default)]
    pub deployments: Option<Vec<RawDeployment>>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RawDeployment {
    #[serde(default)]
    pub scope: Vec<String>,
    #[serde(default)]
    pub dseq: u64,
    #[serde(default)]
    pub gseq: u32,
    #[serde(default)]
    pub oseq: u32,
    #[serde(default)]
    pub services: Vec<String>,
}

/// What a caller may do: everything its account owns (mTLS, a `full` token), some scopes of it,
/// or per provider and deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Access {
    Full,
    Scoped(Vec<Scope>),
    Granular(Vec<Permission>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Permission {
    pub provider: String,
    pub access: ProviderAccess,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProviderAccess {
    Full,
    Scoped(Vec<Scope>),
    Deployments(Vec<DeploymentGrant>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeploymentGrant {
    pub scope: Vec<Scope>,
    pub dseq: u64,
    /// 0: any.
    pub gseq: u32,
    /// 0: any.
    pub oseq: u32,
}

/// Validated claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claims {
    pub issuer: String,
    pub expires: i64,
    pub access: Access,
}

/// Why claims are not valid (the token's issuer may learn it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ClaimsError(pub String);

fn bad(text: impl Into<String>) -> ClaimsError {
    ClaimsError(text.into())
}

/// A NumericDate: seconds since the epoch, as a number or a numeric string.
fn seconds(name: &str, value: Option<&Value>) -> Result<f64, ClaimsError> {
    let value = value
        .filter(|v| !v.is_null())
        .ok_or_else(|| bad(format!("claim {name:?} is required")))?;
    let n = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse::<f64>().ok(),
        _ => None,
    };
    n.filter(|n| n.is_finite())
        .ok_or_else(|| bad(format!("claim {name:?} is not a time")))
}

fn scopes(list: &[String], what: &str) -> Result<Vec<Scope>, ClaimsError> {
    if list.is_empty() {
        return Err(bad(format!("{what}: scope must not be empty")));
    }
    let mut out = Vec::with_capacity(list.len());
    for text in list {
        let scope =
            Scope::parse(text).ok_or_else(|| bad(format!("{what}: unknown scope {text:?}")))?;
        if out.contains(&scope) {
            return Err(bad(format!("{what}: scope {text:?} appears twice")));
        }
        out.push(scope);
    }
    Ok(out)
}

impl Claims {
    /// The claims' rules at time `now` (seconds): what the Go provider refuses is refused.
    pub(crate) fn validate(raw: RawClaims, now: f64) -> Result<Self, ClaimsError> {
        let issuer = raw
            .iss
            .filter(|i| !i.is_empty())
            .ok_or_else(|| bad("claim \"iss\" is required"))?;
        seconds("iat", raw.iat.as_ref())?;
        let nbf = seconds("nbf", raw.nbf.as_ref())?;
        let exp = seconds("exp", raw.exp.as_ref())?;
        if now >= exp {
            return Err(bad("the token has expired"));
        }
        if now < nbf {
            return Err(bad("the token is not valid yet"));
        }
        if raw.version.as_deref() != Some("v1") {
            return Err(bad("claim \"version\" must be \"v1\""));
        }
        let leases = raw
            .leases
            .ok_or_else(|| bad("claim \"leases\" is required"))?;
        Ok(Self {
            issuer,
            expires: exp as i64,
            access: access(leases)?,
        })
    }
}

fn access(leases: RawLeases) -> Result<Access, ClaimsError> {
    match leases.access.as_str() {
        "full" => {
            if leases.scope.as_ref().is_some_and(|s| !s.is_empty())
                || leases.permissions.as_ref().is_some_and(|p| !p.is_empty())
            {
                return Err(bad("leases: full access takes no scope or permissions"));
            }
            Ok(Access::Full)
        }
        "scoped" => {
            if leases.permissions.is_some() {
                return Err(bad("leases: scoped access takes no permissions"));
            }
            Ok(Access::Scoped(scopes(
                leases.scope.as_deref().unwrap_or_default(),
                "leases",
            )?))
        }
        "granular" => {
            let permissions = leases.permissions.unwrap_or_default();
            if permissions.is_empty() {
                return Err(bad("leases: granular access needs permissions"));
            }
            let mut out: Vec<Permission> = Vec::with_capacity(permissions.len());
            for p in permissions {
                if p.provider.is_empty() {
                    return Err(bad("leases.permissions: provider is required"));
                }
                if out.iter().any(|o| o.provider == p.provider) {
                    return Err(bad(format!(
                        "leases.permissions: provider {} appears twice",
                        p.provider
                    )));
                }
                out.push(Permission {
                    access: provider_access(&p)?,
                    provider: p.provider,
                });
            }
            Ok(Access::Granular(out))
        }
        "" => Err(bad("leases: access is required")),
        other => Err(bad(format!("leases: unknown access {other:?}"))),
    }
}

fn provider_access(p: &RawPermission) -> Result<ProviderAccess, ClaimsError> {
    let what = format!("leases.permissions[{}]", p.provider);
    match p.access.as_str() {
        "full" => {
            if p.scope.is_some() || p.deployments.is_some() {
                return Err(bad(format!(
                    "{what}: full access takes no scope or deployments"
                )));
            }
            Ok(ProviderAccess::Full)
        }
        "scoped" => {
            if p.deployments.is_some() {
                return Err(bad(format!("{what}: scoped access takes no deployments")));
            }
            Ok(ProviderAccess::Scoped(scopes(
                p.scope.as_deref().unwrap_or_default(),
                &what,
            )?))
        }
        "granular" => {
            if p.scope.is_some() {
                return Err(bad(format!("{what}: granular access takes no scope")));
            }
            let deployments = p.deployments.as_deref().unwrap_or_default();
            if deployments.is_empty() {
                return Err(bad(format!("{what}: granular access needs deployments")));
            }
            let mut out = Vec::with_capacity(deployments.len());
            for d in deployments {
                let scope = scopes(&d.scope, &format!("{what}.deployments"))?;
                if d.dseq == 0 {
                    return Err(bad(format!("{what}.deployments: dseq is required")));
                }
                if d.oseq > 0 && d.gseq == 0 {
                    return Err(bad(format!("{what}.deployments: oseq needs gseq")));
                }
                if d.services.is_empty() {
                    return Err(bad(format!(
                        "{what}.deployments: services must not be empty"
                    )));
                }
                let mut seen = std::collections::HashSet::new();
                if !d.services.iter().all(|s| seen.insert(s)) {
                    return Err(bad(format!("{what}.deployments: a service appears twice")));
                }
                out.push(DeploymentGrant {
                    scope,
                    dseq: d.dseq,
                    gseq: d.gseq,
                    oseq: d.oseq,
                });
            }
            Ok(ProviderAccess::Deployments(out))
        }
        "" => Err(bad(format!("{what}: access is required"))),
        other => Err(bad(format!("{what}: unknown access {other:?}"))),
    }
}

/// What a request is about: a deployment, or one lease of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Deployment { dseq: u64 },
    Lease { dseq: u64, gseq: u32, oseq: u32 },
}

impl DeploymentGrant {
    fn covers(&self, target: Target) -> bool {
        match target {
            Target::Deployment { dseq } => self.dseq == dseq,
            Target::Lease { dseq, gseq, oseq } => {
                self.dseq == dseq
                    && (self.gseq == 0 || self.gseq == gseq)
                    && (self.oseq == 0 || self.oseq == oseq)
            }
        }
    }
}

impl Access {
    /// Whether this access reaches `target` at `provider` with `scope` (`None`: a route that
    /// asks no scope, only the lease).
    pub(crate) fn allows(&self, provider: &str, target: Target, scope: Option<Scope>) -> bool {
        let has = |list: &[Scope]| scope.is_none_or(|s| list.contains(&s));
        match self {
            Self::Full => true,
            Self::Scoped(list) => has(list),
            Self::Granular(permissions) => {
                let Some(p) = permissions.iter().find(|p| p.provider == provider) else {
                    return false;
                };
                match &p.access {
                    ProviderAccess::Full => true,
                    ProviderAccess::Scoped(list) => has(list),
                    ProviderAccess::Deployments(grants) => {
                        grants.iter().any(|g| g.covers(target) && has(&g.scope))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
