//! `akash-provider sdl to-cr FILE`: an SDL file as a `Manifest` resource for `kubectl apply`.

use std::path::Path;

use crds::resources::{Distribution, Manifest, ManifestSpec, Price, SecretKeyRef};
use crds::sdl::{Sdl, SdlDocument};

/// Settings of the `Manifest` that the SDL file does not hold.
#[derive(Debug, clap::Args)]
pub struct ToCrOptions {
    /// Name of the resource [default: the file name without its extension]
    #[arg(long)]
    name: Option<String>,
    /// Namespace of the resource [default: none, so kubectl's current namespace]
    #[arg(long)]
    namespace: Option<String>,
    /// The Secret (same namespace) whose key `mnemonic` holds the tenant's key
    #[arg(long, default_value = "akash-tenant-key")]
    key_secret: String,
    /// Escrow deposit posted with the deployment, such as 5000000uact
    #[arg(long, default_value = "5000000uact")]
    deposit: String,
    /// Blocks to collect bids for before the cheapest wins
    #[arg(long, default_value_t = 5)]
    wait_blocks: u32,
    /// Send the manifest to one provider and let the others fetch it from their peers
    #[arg(long)]
    seed_one: bool,
}

/// The `Manifest` resource for a valid SDL, as YAML.
pub fn render(sdl: &Sdl, file: &Path, opts: &ToCrOptions) -> Result<String, String> {
    let name = match &opts.name {
        Some(name) => {
            if !is_dns_label(name) {
                return Err(format!(
                    "--name {name:?}: must be a DNS label (lowercase letters, digits and '-', \
                     at most 63 characters, starting and ending with a letter or digit)"
                ));
            }
            name.clone()
        }
        None => name_from_file(file),
    };
    let deposit = parse_coin(&opts.deposit).map_err(|e| format!("--deposit: {e}"))?;
    if opts.wait_blocks == 0 {
        return Err("--wait-blocks: must be at least 1".into());
    }
    let document = apply_safe(sdl)?;
    let mut manifest = Manifest::new(
        &name,
        ManifestSpec {
            sdl: document,
            deposit,
            wait_duration_blocks: opts.wait_blocks,
            key_secret: SecretKeyRef {
                name: opts.key_secret.clone(),
                key: "mnemonic".into(),
            },
            bid_filter: None,
            distribution: if opts.seed_one {
                Distribution::SeedOne
            } else {
                Distribution::SendToAll
            },
            dseq: None,
        },
    );
    manifest.metadata.namespace = opts.namespace.clone();
    serde_yaml::to_string(&manifest).map_err(|e| format!("cannot render the resource: {e}"))
}

/// The document as the API server will keep it. Two things change on the way, and neither may
/// change what is deployed:
/// - `kubectl apply` drops `null` values (for it, null means "delete this field"). A GPU vendor with
///   `null` models means any model, the same as `[{model: "*"}]`; other nulls mean "not set".
/// - The API server keeps maps in key order, not in the file's order. Where the SDK's output
///   depends on that order (placements, storage volumes), the manifest version of the resource
///   differs from the file's; the note on stderr says so, and the tenant controller posts the
///   version of the resource, so the chain and the providers agree.
fn apply_safe(sdl: &Sdl) -> Result<SdlDocument, String> {
    fn walk(value: &mut serde_json::Value, in_vendor: bool) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    if in_vendor && v.is_null() {
                        *v = serde_json::json!([{ "model": "*" }]);
                    } else {
                        walk(v, key == "vendor");
                    }
                }
                map.retain(|_, v| !v.is_null());
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| walk(v, false)),
            _ => {}
        }
    }
    let version_of = |value: &serde_json::Value| -> Result<[u8; 32], String> {
        let document: SdlDocument =
            serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
        Ok(Sdl::from_document(&document)
            .map_err(|e| e.to_string())?
            .manifest_version())
    };
    // serde_json's maps are ordered by key, as the API server's are.
    let key_ordered = serde_json::to_value(sdl.document()).map_err(|e| e.to_string())?;
    let mut stored = key_ordered.clone();
    walk(&mut stored, false);
    let version = version_of(&stored)?;
    if version != version_of(&key_ordered)? {
        return Err(
            "this SDL relies on null values, which `kubectl apply` drops; \
                    the resource would describe a different deployment"
                .into(),
        );
    }
    if version != sdl.manifest_version() {
        eprintln!(
            "note: Kubernetes keeps maps in key order, so this resource's manifest version is {} \
             (the file's, in its own order, is {})",
            hex(&version),
            sdl.manifest_version_hex()
        );
    }
    serde_json::from_value(stored).map_err(|e| e.to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `deploy.yaml` → `deploy`; `My App.yml` → `my-app`; nothing usable → `deployment`.
fn name_from_file(file: &Path) -> String {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let mut name: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    name.truncate(63);
    let name = name.trim_matches('-').to_string();
    if name.is_empty() || file.as_os_str() == "-" {
        "deployment".into()
    } else {
        name
    }
}

fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// `5000000uact` → amount 5000000, denom uact.
fn parse_coin(text: &str) -> Result<Price, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} has no denomination (write e.g. 5000000uact)"))?;
    let (amount, denom) = text.split_at(split);
    if amount.is_empty() {
        return Err(format!("{text:?} has no amount (write e.g. 5000000uact)"));
    }
    if denom != "uakt" && denom != "uact" {
        return Err(format!("denomination {denom:?} is not uakt or uact"));
    }
    let amount = match amount.trim_start_matches('0') {
        "" => "0",
        digits => digits,
    };
    Ok(Price {
        denom: denom.into(),
        amount: amount.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_file_and_are_dns_labels() {
        assert_eq!(name_from_file(Path::new("x/deploy.yaml")), "deploy");
        assert_eq!(name_from_file(Path::new("My App__v2.yml")), "my-app--v2");
        assert_eq!(name_from_file(Path::new("-")), "deployment");
        assert_eq!(name_from_file(Path::new("___.yaml")), "deployment");
        assert!(is_dns_label(&name_from_file(Path::new(&"a".repeat(100)))));
    }

    #[test]
    fn deposits_need_an_amount_and_an_akash_denomination() {
        let coin = parse_coin("5000000uact").unwrap();
        assert_eq!(
            (coin.amount.as_str(), coin.denom.as_str()),
            ("5000000", "uact")
        );
        assert!(parse_coin("uact").unwrap_err().contains("no amount"));
        assert!(parse_coin("500").unwrap_err().contains("no denomination"));
        assert!(
            parse_coin("500usd")
                .unwrap_err()
                .contains("not uakt or uact")
        );
    }
}
