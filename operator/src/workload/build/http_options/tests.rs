//! `http_options` arriving through the gateway are held to the SDL's limits before they become
//! ingress-nginx annotations.

use crds::sdl::manifest::ManifestHttpOptions;

use super::super::tests::{config, group, lease, leased};
use super::super::{BuildError, build};

/// The `http` fixture with its expose's options changed by `change`, built.
fn with_options(change: impl FnOnce(&mut ManifestHttpOptions)) -> Result<(), BuildError> {
    let mut g = group("http");
    change(&mut g.services[0].expose[0].http_options);
    build(&lease(), &leased(&g), &config()).map(|_| ())
}

fn refused_at(field: &str, change: impl FnOnce(&mut ManifestHttpOptions)) -> BuildError {
    let e = with_options(change).expect_err("refused");
    assert_eq!(
        e.field,
        format!("services[web].expose[0].http_options.{field}"),
        "{e}"
    );
    e
}

#[test]
fn options_beyond_the_sdl_limits_are_refused_with_the_field() {
    refused_at("max_body_size", |o| o.max_body_size = 104_857_601);
    refused_at("max_body_size", |o| o.max_body_size = u64::MAX);
    // 0 would lift nginx's limit altogether.
    refused_at("max_body_size", |o| o.max_body_size = 0);
    refused_at("read_timeout", |o| o.read_timeout = 60_001);
    refused_at("send_timeout", |o| o.send_timeout = u64::MAX);
    let e = refused_at("next_cases[1]", |o| {
        o.next_cases = vec!["error".into(), "http_502".into()];
    });
    assert!(e.reason.contains("\"http_502\""), "{e}");
    refused_at("next_cases", |o| {
        o.next_cases = vec!["off".into(), "error".into()];
    });
}

#[test]
fn an_annotation_injection_through_next_cases_is_refused() {
    // The cases are joined into `proxy-next-upstream`; anything but the SDL's words could carry
    // nginx configuration into the ingress controller.
    let e = refused_at("next_cases[0]", |o| {
        o.next_cases = vec!["error;\n more_set_headers \"X-Injected: 1\"".into()];
    });
    assert!(e.reason.contains("is not one of"), "{e}");
}

#[test]
fn options_at_the_sdl_limits_are_accepted() {
    with_options(|o| {
        o.max_body_size = 104_857_600;
        o.read_timeout = 60_000;
        o.send_timeout = 60_000;
        o.next_tries = 10;
        o.next_timeout = 120_000;
        o.next_cases = vec!["off".into()];
    })
    .expect("at the limits");
    with_options(|o| {
        o.next_cases = [
            "error", "timeout", "500", "502", "503", "504", "403", "404", "429",
        ]
        .map(String::from)
        .to_vec();
    })
    .expect("every case the SDL knows");
}

#[test]
fn every_real_sdl_files_options_pass() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/sdl");
    let mut stack = vec![dir];
    let mut exposes = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("testdata/sdl") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("SDL file");
            let Ok(sdl) = crds::sdl::Sdl::parse(&text) else {
                continue;
            };
            for svc in sdl.manifest().iter().flat_map(|g| &g.services) {
                for (i, expose) in svc.expose.iter().enumerate() {
                    super::check(&expose.http_options, &format!("{}[{i}]", svc.name))
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    exposes += 1;
                }
            }
        }
    }
    assert!(exposes > 150, "only {exposes} exposes checked");
}
