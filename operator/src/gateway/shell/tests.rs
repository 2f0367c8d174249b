use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Status, StatusCause, StatusDetails};

use super::*;

fn query(pairs: &[(&str, &str)]) -> Result<ShellQuery, Rejection> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    ShellQuery::parse(&map)
}

const FULL: &[(&str, &str)] = &[
    ("cmd0", "sh"),
    ("cmd1", "-c"),
    ("cmd2", "echo hi"),
    ("service", "web"),
    ("podIndex", "0"),
    ("tty", "0"),
    ("stdin", "1"),
];

fn without(name: &str) -> Vec<(&'static str, &'static str)> {
    FULL.iter().copied().filter(|(k, _)| *k != name).collect()
}

fn with(name: &'static str, value: &'static str) -> Vec<(&'static str, &'static str)> {
    let mut pairs = without(name);
    pairs.push((name, value));
    pairs
}

#[test]
fn the_go_providers_parameters_make_a_query() {
    assert_eq!(
        query(FULL).unwrap(),
        ShellQuery {
            command: vec!["sh".into(), "-c".into(), "echo hi".into()],
            service: "web".into(),
            pod_index: 0,
            tty: false,
            stdin: true,
        }
    );
    // The command stops at the first missing index, as the Go provider reads it.
    let mut gap = FULL.to_vec();
    gap.retain(|(k, _)| *k != "cmd1");
    assert_eq!(query(&gap).unwrap().command, vec!["sh".to_owned()]);
    assert_eq!(query(&with("podIndex", "0x2")).unwrap().pod_index, 2);
    assert_eq!(query(&with("podIndex", "010")).unwrap().pod_index, 8);
    assert!(query(&with("tty", "1")).unwrap().tty);
}

#[test]
fn each_missing_parameter_is_named_in_a_400() {
    for name in ["cmd0", "service", "podIndex", "tty", "stdin"] {
        let Err(Rejection::Malformed(text)) = query(&without(name)) else {
            panic!("{name} missing was accepted");
        };
        assert!(text.contains(name), "{name}: {text}");
    }
}

#[test]
fn a_service_that_could_widen_the_pod_selector_is_refused() {
    for bad in ["web,api", "web)", "a=b", "Web", "-web", "web api"] {
        let pairs = {
            let mut p = without("service");
            p.push(("service", bad));
            p
        };
        assert!(
            matches!(query(&pairs), Err(Rejection::Malformed(t)) if t.contains("service")),
            "{bad}"
        );
    }
}

#[test]
fn bad_replica_indexes_and_oversized_commands_are_refused() {
    for bad in ["-1", "x", "2147483648", "+1", ""] {
        assert!(query(&with("podIndex", bad)).is_err(), "{bad}");
    }
    let many: Vec<(String, String)> = (0..=MAX_ARGS)
        .map(|i| (format!("cmd{i}"), "x".to_owned()))
        .chain(
            without("cmd0")
                .into_iter()
                .filter(|(k, _)| !k.starts_with("cmd"))
                .map(|(k, v)| (k.to_owned(), v.to_owned())),
        )
        .collect();
    let map: HashMap<String, String> = many.into_iter().collect();
    assert!(
        matches!(ShellQuery::parse(&map), Err(Rejection::Malformed(t)) if t.contains("arguments"))
    );
    let long = "y".repeat(MAX_ARG_BYTES + 1);
    let mut map: HashMap<String, String> = without("cmd0")
        .into_iter()
        .filter(|(k, _)| !k.starts_with("cmd"))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    map.insert("cmd0".into(), long);
    assert!(
        matches!(ShellQuery::parse(&map), Err(Rejection::Malformed(t)) if t.contains("longer"))
    );
}

fn pod(name: &str, phase: &str, ready: bool) -> Pod {
    Pod {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        status: Some(PodStatus {
            phase: Some(phase.into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn replicas_are_numbered_by_pod_name_and_must_be_ready() {
    let pods = || {
        vec![
            pod("web-c", "Running", true),
            pod("web-a", "Running", true),
            pod("web-b", "Running", false),
        ]
    };
    assert_eq!(pick_pod(pods(), 0).unwrap().name_any(), "web-a");
    assert_eq!(pick_pod(pods(), 2).unwrap().name_any(), "web-c");
    let not_ready = pick_pod(pods(), 1).unwrap_err();
    assert!(
        matches!(&not_ready, ExecError::ForTenant(t) if t.contains("not ready")),
        "{not_ready}"
    );
    let out = pick_pod(pods(), 3).unwrap_err();
    assert!(
        matches!(&out, ExecError::ForTenant(t) if t.contains("[0, 2]")),
        "{out}"
    );
    assert!(matches!(pick_pod(vec![], 0), Err(ExecError::ForTenant(_))));
    let done = pick_pod(vec![pod("job", "Succeeded", false)], 0).unwrap_err();
    assert!(done.to_string().contains("completed"), "{done}");
}

#[test]
fn the_exit_code_comes_from_the_exec_status() {
    let success = Status {
        status: Some("Success".into()),
        ..Default::default()
    };
    assert_eq!(exit_code(&success), Ok(0));
    let failed = Status {
        status: Some("Failure".into()),
        reason: Some("NonZeroExitCode".into()),
        message: Some("command terminated with non-zero exit code".into()),
        details: Some(StatusDetails {
            causes: Some(vec![StatusCause {
                reason: Some("ExitCode".into()),
                message: Some("7".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(exit_code(&failed), Ok(7));
    let broken = Status {
        status: Some("Failure".into()),
        message: Some("container not found".into()),
        ..Default::default()
    };
    assert_eq!(exit_code(&broken), Err("container not found".into()));
}

#[test]
fn the_result_message_is_what_go_clients_decode() {
    let Message::Binary(bytes) = result_frame(3, "") else {
        panic!()
    };
    assert_eq!(&bytes[..], b"\x66{\"exit_code\":3}\n");
    let Message::Binary(bytes) = result_frame(0, "no such service") else {
        panic!()
    };
    assert_eq!(bytes[0], RESULT);
    let decoded: ShellResult = serde_json::from_slice(&bytes[1..]).unwrap();
    assert_eq!(decoded.message, "no such service");
}
