use serde_json::json;

use super::*;

const NOW: f64 = 1_800_000_000.0;
const ISSUER: &str = "akash1qufa3xzrf34qvwyejkhvnc4psf49fftaw0asmh";
const PROVIDER: &str = "akash1provider";

fn claims(leases: Value) -> Value {
    json!({
        "iss": ISSUER,
        "iat": NOW as i64,
        "nbf": NOW as i64,
        "exp": NOW as i64 + 3600,
        "version": "v1",
        "leases": leases,
    })
}

fn validate(value: Value) -> Result<Claims, ClaimsError> {
    Claims::validate(serde_json::from_value(value).expect("claims shape"), NOW)
}

#[test]
fn the_access_kinds_the_go_provider_accepts_are_accepted() {
    let accepted = [
        json!({"access": "full"}),
        json!({"access": "scoped", "scope": ["send-manifest"]}),
        json!({"access": "scoped", "scope": ["attestation"]}),
        json!({"access": "granular", "permissions": [{"provider": PROVIDER, "access": "full"}]}),
        json!({"access": "granular", "permissions": [
            {"provider": PROVIDER, "access": "scoped", "scope": ["logs", "shell"]}]}),
        json!({"access": "granular", "permissions": [{"provider": PROVIDER, "access": "granular",
            "deployments": [{"scope": ["send-manifest"], "dseq": 1, "services": ["web"]}]}]}),
    ];
    for leases in accepted {
        assert!(validate(claims(leases.clone())).is_ok(), "{leases}");
    }
}

#[test]
fn each_rule_the_go_provider_checks_refuses_its_breach() {
    let refused = [
        ("unknown access", json!({"access": "all"})),
        ("no access", json!({})),
        ("scoped without scope", json!({"access": "scoped"})),
        ("scoped, empty", json!({"access": "scoped", "scope": []})),
        (
            "duplicate scope",
            json!({"access": "scoped", "scope": ["logs", "logs"]}),
        ),
        (
            "unknown scope",
            json!({"access": "scoped", "scope": ["root"]}),
        ),
        (
            "scoped with permissions",
            json!({"access": "scoped", "scope": ["logs"], "permissions": []}),
        ),
        (
            "granular without permissions",
            json!({"access": "granular"}),
        ),
        (
            "provider without access",
            json!({"access": "granular", "permissions": [{"provider": PROVIDER}]}),
        ),
        (
            "no provider",
            json!({"access": "granular", "permissions": [{"access": "full"}]}),
        ),
        (
            "duplicate provider",
            json!({"access": "granular", "permissions": [
            {"provider": PROVIDER, "access": "full"}, {"provider": PROVIDER, "access": "full"}]}),
        ),
        (
            "provider scoped without scope",
            json!({"access": "granular", "permissions": [
            {"provider": PROVIDER, "access": "scoped"}]}),
        ),
        (
            "granular entry with scope",
            json!({"access": "granular", "permissions": [
            {"provider": PROVIDER, "access": "granular", "scope": ["logs"],
             "deployments": [{"scope": ["logs"], "dseq": 1, "services": ["web"]}]}]}),
        ),
        (
            "deployment without scope",
            json!({"access": "granular", "permissions": [
            {"provider": PROVIDER, "access": "granular", "deployments": [{"dseq": 1, "services": ["web"]}]}]}),
        ),
        (
            "deployment without dseq",
            json!({"access": "granular", "permissions": [
            {"provider": PROVIDER, "access": "granular", "deployments": [{"scope": ["logs"], "services": ["web"]}]}]}),
        ),
        (
            "deployment without services",
            json!({"access": "granular", "permissions": [
            {"provider": PROVIDER, "access": "granular", "deployments": [{"scope": ["logs"], "dseq": 1}]}]}),
        ),
        (
            "duplicate service",
            json!({"access": "granular", "permissions": [
            {"provider": PROVIDER, "access": "granular", "deployments": [
                {"scope": ["logs"], "dseq": 1, "services": ["web", "web"]}]}]}),
        ),
        (
            "oseq without gseq",
            json!({"access": "granular", "permissions": [
            {"provider": PROVIDER, "access": "granular", "deployments": [
                {"scope": ["logs"], "dseq": 1, "oseq": 1, "services": ["web"]}]}]}),
        ),
    ];
    for (what, leases) in refused {
        assert!(validate(claims(leases)).is_err(), "{what} was accepted");
    }
}

#[test]
fn times_version_and_issuer_are_required_and_checked() {
    for missing in ["iss", "iat", "nbf", "exp", "version", "leases"] {
        let mut value = claims(json!({"access": "full"}));
        value.as_object_mut().unwrap().remove(missing);
        let e = validate(value).unwrap_err();
        assert!(e.0.contains(missing), "{missing}: {e}");
    }
    let mut expired = claims(json!({"access": "full"}));
    expired["exp"] = json!(NOW as i64);
    assert!(validate(expired).unwrap_err().0.contains("expired"));
    let mut early = claims(json!({"access": "full"}));
    early["nbf"] = json!(NOW as i64 + 86_400);
    assert!(validate(early).unwrap_err().0.contains("not valid yet"));
    let mut v2 = claims(json!({"access": "full"}));
    v2["version"] = json!("v2");
    assert!(validate(v2).is_err());
    // Go decodes numeric strings as NumericDate too.
    let mut quoted = claims(json!({"access": "full"}));
    quoted["exp"] = json!(format!("{}", NOW as i64 + 60));
    assert!(validate(quoted).is_ok());
}

fn access(leases: Value) -> Access {
    validate(claims(leases)).unwrap().access
}

const LEASE: Target = Target::Lease {
    dseq: 7,
    gseq: 2,
    oseq: 1,
};

#[test]
fn a_scoped_token_reaches_only_its_scopes() {
    let a = access(json!({"access": "scoped", "scope": ["status", "logs"]}));
    assert!(a.allows(PROVIDER, LEASE, Some(Scope::Logs)));
    assert!(a.allows(PROVIDER, LEASE, Some(Scope::Status)));
    assert!(!a.allows(PROVIDER, LEASE, Some(Scope::Shell)));
    assert!(!a.allows(PROVIDER, LEASE, Some(Scope::SendManifest)));
    // A route that asks no scope (service status) needs only the lease.
    assert!(a.allows(PROVIDER, LEASE, None));
    assert!(access(json!({"access": "full"})).allows(PROVIDER, LEASE, Some(Scope::Shell)));
}

#[test]
fn a_granular_token_reaches_only_its_provider_deployment_and_lease() {
    let a = access(json!({"access": "granular", "permissions": [
        {"provider": PROVIDER, "access": "granular", "deployments": [
            {"scope": ["shell"], "dseq": 7, "gseq": 2, "services": ["web"]},
            {"scope": ["send-manifest"], "dseq": 7, "services": ["web"]}]},
        {"provider": "akash1other", "access": "full"}]}));
    assert!(a.allows(PROVIDER, LEASE, Some(Scope::Shell)));
    // Another group, another deployment, another scope, another provider: no.
    let other_group = Target::Lease {
        dseq: 7,
        gseq: 3,
        oseq: 1,
    };
    assert!(!a.allows(PROVIDER, other_group, Some(Scope::Shell)));
    let other_deployment = Target::Lease {
        dseq: 8,
        gseq: 2,
        oseq: 1,
    };
    assert!(!a.allows(PROVIDER, other_deployment, Some(Scope::Shell)));
    assert!(!a.allows(PROVIDER, LEASE, Some(Scope::Logs)));
    assert!(!a.allows("akash1third", LEASE, Some(Scope::Shell)));
    assert!(a.allows("akash1other", other_deployment, Some(Scope::Logs)));
    // A deployment's manifest: gseq/oseq do not narrow it.
    assert!(a.allows(
        PROVIDER,
        Target::Deployment { dseq: 7 },
        Some(Scope::SendManifest)
    ));
    assert!(!a.allows(
        PROVIDER,
        Target::Deployment { dseq: 8 },
        Some(Scope::SendManifest)
    ));
}
