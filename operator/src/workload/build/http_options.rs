//! The ingress settings of an expose (`http_options`), checked as the SDL checks them: a manifest
//! sent to the gateway was never parsed from SDL, and these become ingress-nginx annotations.

use crds::sdl::manifest::{
    HTTP_NEXT_CASES, MAX_HTTP_BODY_SIZE, MAX_HTTP_TIMEOUT_MS, ManifestHttpOptions,
};

use super::validate::BuildError;

/// The ingress settings of an expose, within what the SDL allows (they become ingress-nginx
/// annotations): a body size of 1 byte to 100 MiB (0 would lift nginx's limit, and no SDK sends
/// it: both put the 1 MiB default in its place), timeouts up to 60 s, and retry cases from the
/// SDL's list only, `off` alone.
pub(crate) fn check(o: &ManifestHttpOptions, field: &str) -> Result<(), BuildError> {
    if o.max_body_size == 0 || o.max_body_size > MAX_HTTP_BODY_SIZE {
        return Err(BuildError::new(
            format!("{field}.max_body_size"),
            format!(
                "{} is not between 1 and {MAX_HTTP_BODY_SIZE} bytes",
                o.max_body_size
            ),
        ));
    }
    for (name, value) in [
        ("read_timeout", o.read_timeout),
        ("send_timeout", o.send_timeout),
    ] {
        if value > MAX_HTTP_TIMEOUT_MS {
            return Err(BuildError::new(
                format!("{field}.{name}"),
                format!("{value} ms is above the limit of {MAX_HTTP_TIMEOUT_MS} ms"),
            ));
        }
    }
    for (i, case) in o.next_cases.iter().enumerate() {
        if !HTTP_NEXT_CASES.contains(&case.as_str()) {
            return Err(BuildError::new(
                format!("{field}.next_cases[{i}]"),
                format!("{case:?} is not one of {}", HTTP_NEXT_CASES.join(", ")),
            ));
        }
    }
    if o.next_cases.len() > 1 && o.next_cases.iter().any(|c| c == "off") {
        return Err(BuildError::new(
            format!("{field}.next_cases"),
            "\"off\" turns retries off and must be the only entry",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
