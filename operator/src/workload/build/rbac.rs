//! Per service with `params.permissions`: a ServiceAccount, a Role and a RoleBinding, all named
//! after the service, in the lease namespace, as the Go provider makes them
//! (`cluster/kube/builder/{serviceaccount,role,rolebinding,permissions}.go`). The service's pods
//! run as that ServiceAccount with its token mounted (`pod.rs`), and may reach the API server
//! (`network.rs`, `akash-apiserver-<svc>`). A service without permissions gets none of this: the
//! namespace's `default` account, no token, no API server.

use crds::sdl::manifest::ManifestService;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};

use super::Ctx;

/// The resources `read` may name that have rules, and the rules, as the Go provider's registry
/// has them. `deployment`, which the SDL allows too, has none: the Go provider grants nothing
/// for it (the service still gets its ServiceAccount, token and API server reach).
fn read_rules(resource: &str) -> Vec<PolicyRule> {
    let rule = |group: &str, resource: &str, verbs: &[&str]| PolicyRule {
        api_groups: Some(vec![group.to_owned()]),
        resources: Some(vec![resource.to_owned()]),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        ..PolicyRule::default()
    };
    match resource {
        "logs" => vec![
            rule("", "pods", &["get", "list", "watch"]),
            rule("", "pods/log", &["get"]),
            rule("apps", "deployments", &["get", "list", "watch"]),
        ],
        "events" => vec![rule("", "events", &["get", "list", "watch"])],
        _ => Vec::new(),
    }
}

/// Whether the service asked for any permission (the Go provider's `HasAny`: a non-empty
/// `read`, whatever it names).
pub(crate) fn has_permissions(svc: &ManifestService) -> bool {
    svc.params
        .as_ref()
        .and_then(|p| p.permissions.as_ref())
        .is_some_and(|p| !p.read().is_empty())
}

/// The rules of the service's Role: those of each resource named in `read`, once each, in the
/// order named.
pub(crate) fn rules(svc: &ManifestService) -> Vec<PolicyRule> {
    let read = svc
        .params
        .as_ref()
        .and_then(|p| p.permissions.as_ref())
        .map(|p| p.read())
        .unwrap_or_default();
    let mut seen: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for resource in read {
        if seen.contains(&resource.as_str()) {
            continue;
        }
        seen.push(resource);
        out.extend(read_rules(resource));
    }
    out
}

/// The ServiceAccount, Role and RoleBinding of a service with permissions.
pub(crate) fn objects(
    ctx: &Ctx,
    svc: &ManifestService,
) -> Option<(ServiceAccount, Role, RoleBinding)> {
    if !has_permissions(svc) {
        return None;
    }
    let name = svc.name.as_str();
    let meta = || ctx.meta(name, ctx.service_labels(name));
    let account = ServiceAccount {
        metadata: meta(),
        ..ServiceAccount::default()
    };
    let role = Role {
        metadata: meta(),
        rules: Some(rules(svc)),
    };
    let binding = RoleBinding {
        metadata: meta(),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: name.to_owned(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: name.to_owned(),
            namespace: Some(ctx.namespace.clone()),
            ..Subject::default()
        }]),
    };
    Some((account, role, binding))
}
