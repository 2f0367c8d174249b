//! Script pricing: an external program reads the order as JSON on stdin and prints a price, with
//! the Go provider's input (`bidengine/shellscript.go` `dataForScript`) and environment
//! (`AKASH_OWNER`, `AKASH_DENOM`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chain_client::akash::base::resources::v1beta4::{Endpoint, endpoint};
use chain_client::akash::deployment::v1beta4::GroupSpec;
use crds::resources::ReservedUnit;
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use super::{Price, PricingError};
use crate::inventory::{ATTR_CLASS, GpuSpec};

/// Scripts running at once, as `--bid-price-script-process-limit`.
#[cfg(test)]
pub(crate) const DEFAULT_PROCESS_LIMIT: usize = 32;
/// How long a script may run, as `--bid-price-script-process-timeout`.
#[cfg(test)]
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The `price_precision` the Go provider tells the script.
const PRICE_PRECISION: u32 = 6;

/// The script's standard input, field for field the Go provider's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScriptInput {
    pub resources: Vec<ScriptUnit>,
    /// The order's maximum price.
    pub price: ScriptCoin,
    pub price_precision: u32,
    pub confidential_compute: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScriptUnit {
    /// Bytes (the unit's memory, without `ram` volumes, which are in `storage`).
    pub memory: u64,
    /// Millicores.
    pub cpu: u64,
    pub gpu: ScriptGpu,
    pub storage: Vec<ScriptVolume>,
    pub count: u32,
    /// All endpoints of the unit, including shared HTTP, as the Go provider counts them.
    pub endpoint_quantity: usize,
    pub ip_lease_quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScriptGpu {
    pub units: u64,
    pub attributes: ScriptGpuAttributes,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScriptGpuAttributes {
    /// By vendor: the model allocated.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub vendor: BTreeMap<String, ScriptGpuModel>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScriptGpuModel {
    pub model: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ram: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScriptVolume {
    /// The volume's class attribute, else `ephemeral`.
    pub class: String,
    pub size: u64,
}

/// A `DecCoin` as Go's JSON writes it: the amount with all 18 places.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScriptCoin {
    pub denom: String,
    pub amount: String,
}

fn int(value: Option<&chain_client::akash::base::resources::v1beta4::ResourceValue>) -> u64 {
    value
        .and_then(|v| std::str::from_utf8(&v.val).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Distinct leased-IP endpoints of one unit, as the Go provider counts them for the script.
fn leased_ips(endpoints: &[Endpoint]) -> u32 {
    let kind = endpoint::Kind::LeasedIp as i32;
    let distinct: std::collections::BTreeSet<u32> = endpoints
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.sequence_number)
        .collect();
    u32::try_from(distinct.len()).unwrap_or(u32::MAX)
}

impl ScriptInput {
    /// The input for `group`, with the GPU models `placed` chose (the allocated resources).
    pub fn new(group: &GroupSpec, placed: &[ReservedUnit], denom: &str, max: Price) -> Self {
        let resources = group
            .resources
            .iter()
            .zip(placed)
            .map(|(unit, placed)| {
                let r = unit.resource.clone().unwrap_or_default();
                let mut vendor = BTreeMap::new();
                if let Some(model) = placed.allocated_gpu.as_ref().filter(|_| placed.gpus > 0) {
                    // The constraints of the accepted spec that the allocated model satisfies.
                    let spec = placed.gpu_models.iter().map(GpuSpec::of).find(|s| {
                        s.vendor == model.vendor && (s.model == model.model || s.model == "*")
                    });
                    vendor.insert(
                        model.vendor.clone(),
                        ScriptGpuModel {
                            model: model.model.clone(),
                            ram: spec.as_ref().and_then(|s| s.ram.clone()),
                            interface: spec.and_then(|s| s.interface),
                        },
                    );
                }
                ScriptUnit {
                    memory: int(r.memory.as_ref().and_then(|m| m.quantity.as_ref())),
                    cpu: int(r.cpu.as_ref().and_then(|c| c.units.as_ref())),
                    gpu: ScriptGpu {
                        units: u64::from(placed.gpus),
                        attributes: ScriptGpuAttributes { vendor },
                    },
                    storage: r
                        .storage
                        .iter()
                        .map(|s| ScriptVolume {
                            class: s
                                .attributes
                                .iter()
                                .find(|a| a.key == ATTR_CLASS && !a.value.is_empty())
                                .map_or_else(|| "ephemeral".to_owned(), |a| a.value.clone()),
                            size: int(s.quantity.as_ref()),
                        })
                        .collect(),
                    count: unit.count,
                    endpoint_quantity: r.endpoints.len(),
                    ip_lease_quantity: leased_ips(&r.endpoints),
                }
            })
            .collect();
        ScriptInput {
            resources,
            price: ScriptCoin {
                denom: denom.to_owned(),
                amount: max.to_fixed(),
            },
            price_precision: PRICE_PRECISION,
            confidential_compute: false,
        }
    }
}

/// Runs a pricing program: at most `process_limit` at once, each killed after `timeout`.
#[derive(Debug, Clone)]
pub struct ScriptPricing {
    path: PathBuf,
    timeout: Duration,
    limit: Arc<Semaphore>,
}

impl ScriptPricing {
    /// A script at `path` (executable), with a timeout and a limit of concurrent processes (at
    /// least 1).
    pub fn new(path: PathBuf, timeout: Duration, process_limit: usize) -> ScriptPricing {
        ScriptPricing {
            path,
            timeout,
            limit: Arc::new(Semaphore::new(process_limit.max(1))),
        }
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Runs the script with `input` on stdin and parses what it prints.
    pub async fn run(
        &self,
        input: &ScriptInput,
        owner: &str,
        denom: &str,
    ) -> Result<Price, PricingError> {
        let path = self.path.display().to_string();
        let stdin = serde_json::to_vec(input).map_err(|e| PricingError::ScriptSpawn {
            path: path.clone(),
            error: e.to_string(),
        })?;
        let _permit = self
            .limit
            .acquire()
            .await
            .map_err(|e| PricingError::ScriptSpawn {
                path: path.clone(),
                error: e.to_string(),
            })?;
        let mut child = self
            .spawn(owner, denom)
            .await
            .map_err(|e| PricingError::ScriptSpawn {
                path: path.clone(),
                error: e.to_string(),
            })?;
        let writer = child.stdin.take();
        let run = async move {
            let write = async move {
                if let Some(mut w) = writer {
                    // A script that does not read its input closes the pipe: not an error.
                    let _ = w.write_all(&stdin).await;
                }
            };
            let ((), output) = tokio::join!(write, child.wait_with_output());
            output
        };
        // On timeout the future, and with it the child, is dropped: kill_on_drop kills it.
        let output = tokio::time::timeout(self.timeout, run)
            .await
            .map_err(|_| PricingError::ScriptTimeout {
                path: path.clone(),
                timeout: self.timeout,
            })?
            .map_err(|e| PricingError::ScriptSpawn {
                path: path.clone(),
                error: e.to_string(),
            })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(PricingError::ScriptFailed {
                path,
                status: output.status.to_string(),
                stderr: stderr.lines().next().unwrap_or("").trim().to_owned(),
            });
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let text = stdout.trim();
        let price = Price::parse(text).map_err(|_| PricingError::ScriptOutput {
            path,
            output: text.chars().take(100).collect(),
        })?;
        if price.is_zero() {
            return Err(PricingError::Zero);
        }
        Ok(price)
    }

    async fn spawn(&self, owner: &str, denom: &str) -> std::io::Result<tokio::process::Child> {
        let mut attempts = 0;
        loop {
            let result = tokio::process::Command::new(&self.path)
                .env("AKASH_OWNER", owner)
                .env("AKASH_DENOM", denom)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn();
            match result {
                // ETXTBSY: the file was just written and another process forked meanwhile.
                Err(e) if e.raw_os_error() == Some(26) && attempts < 5 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
#[path = "script_tests.rs"]
mod tests;
