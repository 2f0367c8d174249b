//! Tokens (JWT) on the gateway's tenant routes, REST and gRPC: what a token of the lease's owner
//! reaches with its scopes, and every way of getting past that refused with nothing done: a
//! stranger's token, an expired one, one signed by another key, a wrong scope, another
//! deployment or provider, a token beside a certificate, a malformed header.

mod gateway_world;

use chain_client::keys::Key;
use gateway_world::*;
use operator::gateway::jwt;
use serde_json::{Value, json};

fn now() -> i64 {
    jwt::now() as i64
}

/// A token of `key`'s account (as `iss`) with `leases`, valid from now for a minute.
fn token(key: &Key, leases: Value) -> String {
    token_as(key, key.address().as_ref(), leases, now() + 60)
}

fn token_as(key: &Key, issuer: &str, leases: Value, exp: i64) -> String {
    jwt::mint(
        key,
        &json!({"iss": issuer, "iat": now(), "nbf": now(), "exp": exp,
                "version": "v1", "leases": leases}),
    )
    .unwrap()
}

async fn get(world: &World, path: &str, bearer: Option<&str>) -> (u16, String) {
    let mut request = http(None).get(world.url(path));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

async fn put_manifest(world: &World, bearer: &str) -> (u16, String) {
    let response = http(None)
        .put(world.url(&format!("/deployment/{DSEQ}/manifest")))
        .bearer_auth(bearer)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&sdl(2).manifest()).unwrap())
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

const STATUS: &str = "/lease/7/1/1/status";

#[tokio::test]
async fn the_owners_token_sends_the_manifest_and_reads_the_lease_as_a_certificate_does() {
    let world = World::start().await;
    let full = token(&world.tenant_key, json!({"access": "full"}));
    let (status, body) = put_manifest(&world, &full).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(world.source.write_count(), 1);
    let (status, body) = get(&world, STATUS, Some(&full)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"services\""), "{body}");
    let (status, body) = get(&world, "/lease/7/1/1/manifest", Some(&full)).await;
    assert_eq!(status, 200, "{body}");
    // A scoped token reaches its scopes, and a route that asks no scope.
    let scoped = token(
        &world.tenant_key,
        json!({"access": "scoped", "scope": ["status"]}),
    );
    assert_eq!(get(&world, STATUS, Some(&scoped)).await.0, 200);
    assert_eq!(
        get(&world, "/lease/7/1/1/service/web/status", Some(&scoped))
            .await
            .0,
        200
    );
    // A granular token for this provider and this lease.
    let granular = token(
        &world.tenant_key,
        json!({"access": "granular", "permissions": [{"provider": world.provider,
            "access": "granular", "deployments": [
                {"scope": ["status"], "dseq": DSEQ, "gseq": 1, "services": ["web"]}]}]}),
    );
    assert_eq!(get(&world, STATUS, Some(&granular)).await.0, 200);
}

#[tokio::test]
async fn tokens_that_do_not_reach_the_lease_are_refused_and_change_nothing() {
    let world = World::start().await;
    let tenant = &world.tenant_key;
    let owner = world.tenant_addr();
    let cases: Vec<(&str, String, u16)> = vec![
        (
            "a stranger's own valid token",
            token(&world.stranger_key, json!({"access": "full"})),
            403,
        ),
        (
            "expired",
            token_as(tenant, &owner, json!({"access": "full"}), now() - 1),
            401,
        ),
        (
            "signed by the stranger, naming the tenant",
            token_as(
                &world.stranger_key,
                &owner,
                json!({"access": "full"}),
                now() + 60,
            ),
            401,
        ),
        (
            "an account with no key on chain",
            token(&Key::random("akash").unwrap(), json!({"access": "full"})),
            401,
        ),
        (
            "the wrong scope",
            token(
                tenant,
                json!({"access": "scoped", "scope": ["logs", "shell"]}),
            ),
            403,
        ),
        (
            "another deployment",
            token(
                tenant,
                json!({"access": "granular", "permissions": [{"provider": world.provider,
                    "access": "granular", "deployments": [
                        {"scope": ["status", "send-manifest"], "dseq": DSEQ + 1, "services": ["web"]}]}]}),
            ),
            403,
        ),
        (
            "another group of the deployment",
            token(
                tenant,
                json!({"access": "granular", "permissions": [{"provider": world.provider,
                    "access": "granular", "deployments": [
                        {"scope": ["status"], "dseq": DSEQ, "gseq": 2, "services": ["web"]}]}]}),
            ),
            403,
        ),
        (
            "another provider",
            token(
                tenant,
                json!({"access": "granular", "permissions": [
                    {"provider": world.stranger_key.address().to_string(), "access": "full"}]}),
            ),
            403,
        ),
        ("garbage", "not.a.token".to_owned(), 401),
    ];
    for (what, bearer, want) in &cases {
        let (status, body) = get(&world, STATUS, Some(bearer)).await;
        assert_eq!(status, *want, "{what}: {body}");
    }
    // Nor does any of them send a manifest (the scoped one lacks send-manifest).
    for (what, bearer, _) in &cases {
        let (status, body) = put_manifest(&world, bearer).await;
        assert!(matches!(status, 401 | 403 | 404), "{what}: {status} {body}");
    }
    assert_eq!(world.source.write_count(), 0, "no manifest was written");
}

#[tokio::test]
async fn a_token_with_a_certificate_and_malformed_headers_are_400() {
    let world = World::start().await;
    let full = token(&world.tenant_key, json!({"access": "full"}));
    let response = http(Some(&world.tenant))
        .get(world.url(STATUS))
        .bearer_auth(&full)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    for header in ["Basic abc", "Bearer", &format!("Bearer {full} extra")] {
        let response = http(None)
            .get(world.url(STATUS))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{header}");
    }
}

#[tokio::test]
async fn grpc_calls_take_the_token_from_the_authorization_metadata() {
    use chain_client::akash::market::v1::LeaseId;
    use chain_client::akash::provider::lease::v1::ServiceStatusRequest;
    use chain_client::akash::provider::lease::v1::lease_rpc_client::LeaseRpcClient;

    let world = World::start().await;
    let (status, body) = world
        .put(
            Some(&world.tenant),
            serde_json::to_vec(&sdl(2).manifest()).unwrap(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut client = LeaseRpcClient::new(grpc_channel_as(&world, None).await);
    let request = |bearer: &str| {
        let mut request = tonic::Request::new(ServiceStatusRequest {
            lease_id: Some(LeaseId {
                owner: world.tenant_addr(),
                dseq: DSEQ,
                gseq: 1,
                oseq: 1,
                provider: world.provider.clone(),
                bseq: 0,
            }),
            services: vec![],
        });
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {bearer}").parse().unwrap());
        request
    };
    let full = token(&world.tenant_key, json!({"access": "full"}));
    let answer = client
        .service_status(request(&full))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.services.len(), 1);
    let logs_only = token(
        &world.tenant_key,
        json!({"access": "scoped", "scope": ["logs"]}),
    );
    let refused = client
        .service_status(request(&logs_only))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    let expired = token_as(
        &world.tenant_key,
        &world.tenant_addr(),
        json!({"access": "full"}),
        now() - 1,
    );
    let refused = client.service_status(request(&expired)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
}

#[tokio::test]
async fn every_tenant_route_refuses_a_wrong_scope_and_a_strangers_token() {
    let world = World::start().await;
    let wrong_scope = token(
        &world.tenant_key,
        json!({"access": "scoped", "scope": ["send-manifest"]}),
    );
    let stranger = token(&world.stranger_key, json!({"access": "full"}));
    let plain = ["/lease/7/1/1/status", "/lease/7/1/1/manifest"];
    let sockets = [
        "/lease/7/1/1/logs?follow=true",
        "/lease/7/1/1/kubeevents",
        "/lease/7/1/1/shell?cmd0=true&service=web&podIndex=0&tty=0&stdin=0",
    ];
    for bearer in [&wrong_scope, &stranger] {
        for path in plain {
            let (status, body) = get(&world, path, Some(bearer)).await;
            assert_eq!(status, 403, "{path}: {body}");
        }
        for path in sockets {
            let refused = world
                .websocket_with(None, Some(bearer), path)
                .await
                .map(|_| ())
                .unwrap_err();
            assert_eq!(refused.0, 403, "{path}: {refused:?}");
        }
    }
    // Migrations need their own scopes (`hostname-migrate`, `ip-migrate`).
    for (path, list) in [
        ("/hostname/migrate", "hostnames_to_migrate"),
        ("/endpoint/migrate", "endpoints_to_migrate"),
    ] {
        let response = http(None)
            .post(world.url(path))
            .bearer_auth(&wrong_scope)
            .json(&json!({list: ["x"], "destination_dseq": 7, "destination_gseq": 1}))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status().as_u16(), 403, "{path}");
    }
    // Service status asks no scope (as in the Go provider), only the lease: the stranger is
    // still refused.
    let (status, _) = get(&world, "/lease/7/1/1/service/web/status", Some(&stranger)).await;
    assert_eq!(status, 403);
}
