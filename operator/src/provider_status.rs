//! What `/status` and gRPC `GetStatus` say about the provider, in the shapes of the Go provider
//! (chain-sdk `provider/client.ProviderStatus`, `inventory/v1.InventoryMetrics` and the
//! `akash.provider.v1.Status` message): every node's allocatable and available resources, what
//! is left per storage class, what each lease holds (active) and each open bid has reserved
//! (pending), and how many orders the bid engine is handling.
//!
//! The bid engine makes a [`StatusReport`] from the same inventory it bids with, each time it
//! refreshes its inventory metrics; the gateway serves the latest one. Building it is pure.

use std::collections::BTreeMap;

use chain_client::akash::inventory::v1 as inv;
use chain_client::akash::provider::v1 as prov;
use chain_client::k8s::io::apimachinery::pkg::api::resource::Quantity;
use crds::resources::{Bid, BidPhase, ReservedUnit};
use serde::Serialize;

use crate::inventory::Inventory;

/// A node's or a total's amounts: millicores, GPUs, bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ResourcesMetric {
    pub cpu: u64,
    pub gpu: u64,
    pub memory: u64,
    pub storage_ephemeral: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeMetrics {
    pub name: String,
    pub allocatable: ResourcesMetric,
    pub available: ResourcesMetric,
}

/// What one lease or bid holds; persistent storage by class.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MetricTotal {
    pub cpu: u64,
    pub gpu: u64,
    pub memory: u64,
    pub storage_ephemeral: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub storage: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StorageStatus {
    pub class: String,
    /// Bytes left to lease.
    pub size: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Available {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeMetrics>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub storage: Vec<StorageStatus>,
}

/// `cluster.inventory` of `/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InventoryReport {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub active: Vec<MetricTotal>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<MetricTotal>,
    pub available: Available,
}

/// The provider's state as `/status` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusReport {
    pub inventory: InventoryReport,
    /// Orders the bid engine is handling: bids reserved or open, not yet won or lost.
    pub orders: u32,
}

/// The report of `inventory` (which counts `bids`' reservations) and `bids`.
pub(crate) fn report<'a>(
    inventory: &Inventory,
    bids: impl IntoIterator<Item = &'a Bid>,
) -> StatusReport {
    let nodes = inventory
        .nodes()
        .iter()
        .map(|n| NodeMetrics {
            name: n.name.clone(),
            allocatable: ResourcesMetric {
                cpu: n.allocatable.cpu_millis,
                gpu: n.gpus.iter().map(|g| g.count).sum(),
                memory: n.allocatable.memory_bytes,
                storage_ephemeral: n.allocatable.ephemeral_bytes,
            },
            available: ResourcesMetric {
                cpu: n.free_cpu(),
                gpu: (0..n.gpus.len()).map(|i| n.free_pool(i)).sum(),
                memory: n.free_memory(),
                storage_ephemeral: n.free_ephemeral(),
            },
        })
        .collect();
    let storage = inventory
        .storage()
        .iter()
        .map(|(class, pool)| StorageStatus {
            class: class.clone(),
            size: i64::try_from(pool.free()).unwrap_or(i64::MAX),
        })
        .collect();
    let (mut active, mut pending, mut orders) = (Vec::new(), Vec::new(), 0);
    for bid in bids {
        let phase = bid
            .status
            .as_ref()
            .and_then(|s| s.phase)
            .unwrap_or(BidPhase::Reserved);
        match phase {
            BidPhase::Won => active.push(total(&bid.spec.resources)),
            BidPhase::Reserved | BidPhase::Open => {
                pending.push(total(&bid.spec.resources));
                orders += 1;
            }
            BidPhase::Closed => {}
        }
    }
    StatusReport {
        inventory: InventoryReport {
            active,
            pending,
            available: Available { nodes, storage },
        },
        orders,
    }
}

/// What `units` hold in all, replicas counted.
pub(crate) fn total(units: &[ReservedUnit]) -> MetricTotal {
    let mut t = MetricTotal::default();
    for u in units {
        let n = u64::from(u.count);
        t.cpu += u.cpu_millis * n;
        t.memory += u.memory_bytes * n;
        t.storage_ephemeral += u.ephemeral_storage_bytes * n;
        t.gpu += u64::from(u.gpus) * n;
        for volume in &u.persistent_storage {
            *t.storage.entry(volume.class.clone()).or_default() += volume.bytes * n;
        }
    }
    t
}

fn sum(totals: &[MetricTotal]) -> MetricTotal {
    let mut all = MetricTotal::default();
    for t in totals {
        all.cpu += t.cpu;
        all.gpu += t.gpu;
        all.memory += t.memory;
        all.storage_ephemeral += t.storage_ephemeral;
        for (class, bytes) in &t.storage {
            *all.storage.entry(class.clone()).or_default() += bytes;
        }
    }
    all
}

/// A Kubernetes quantity as the inventory protobuf carries it.
fn quantity(value: u64) -> Option<Quantity> {
    Some(Quantity {
        string: Some(value.to_string()),
    })
}

fn pair(allocatable: u64, available: u64) -> Option<inv::ResourcePair> {
    Some(inv::ResourcePair {
        allocatable: quantity(allocatable),
        allocated: quantity(allocatable.saturating_sub(available)),
        attributes: Vec::new(),
        capacity: quantity(allocatable),
    })
}

fn cpu_quantity(millis: u64) -> Option<Quantity> {
    Some(Quantity {
        string: Some(format!("{millis}m")),
    })
}

impl StatusReport {
    /// `cluster.inventory` of gRPC `GetStatus`.
    pub fn inventory_proto(&self) -> prov::Inventory {
        let nodes = self
            .inventory
            .available
            .nodes
            .iter()
            .map(|n| inv::Node {
                name: n.name.clone(),
                resources: Some(inv::NodeResources {
                    cpu: Some(inv::Cpu {
                        quantity: Some(inv::ResourcePair {
                            allocatable: cpu_quantity(n.allocatable.cpu),
                            allocated: cpu_quantity(
                                n.allocatable.cpu.saturating_sub(n.available.cpu),
                            ),
                            attributes: Vec::new(),
                            capacity: cpu_quantity(n.allocatable.cpu),
                        }),
                        info: Vec::new(),
                    }),
                    memory: Some(inv::Memory {
                        quantity: pair(n.allocatable.memory, n.available.memory),
                        info: Vec::new(),
                    }),
                    gpu: Some(inv::Gpu {
                        quantity: pair(n.allocatable.gpu, n.available.gpu),
                        info: Vec::new(),
                    }),
                    ephemeral_storage: pair(
                        n.allocatable.storage_ephemeral,
                        n.available.storage_ephemeral,
                    ),
                    volumes_attached: None,
                    volumes_mounted: None,
                }),
                capabilities: None,
            })
            .collect();
        let storage = self
            .inventory
            .available
            .storage
            .iter()
            .map(|s| inv::Storage {
                quantity: Some(inv::ResourcePair {
                    allocatable: quantity(u64::try_from(s.size).unwrap_or_default()),
                    allocated: quantity(0),
                    attributes: Vec::new(),
                    capacity: quantity(u64::try_from(s.size).unwrap_or_default()),
                }),
                info: Some(inv::StorageInfo {
                    class: s.class.clone(),
                    iops: String::new(),
                }),
            })
            .collect();
        let metric = |totals: &[MetricTotal]| {
            let all = sum(totals);
            Some(prov::ReservationsMetric {
                count: totals.len() as u32,
                resources: Some(prov::ResourcesMetric {
                    cpu: cpu_quantity(all.cpu),
                    memory: quantity(all.memory),
                    gpu: quantity(all.gpu),
                    ephemeral_storage: quantity(all.storage_ephemeral),
                    storage: all
                        .storage
                        .iter()
                        .map(|(class, bytes)| (class.clone(), quantity(*bytes).unwrap_or_default()))
                        .collect(),
                }),
            })
        };
        prov::Inventory {
            cluster: Some(inv::Cluster { nodes, storage }),
            reservations: Some(prov::Reservations {
                pending: metric(&self.inventory.pending),
                active: metric(&self.inventory.active),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crds::resources::{BidSpec, BidStatus, OrderRef, Price, StorageReservation};

    use super::*;
    use crate::inventory::InventoryConfig;
    use crate::inventory::fixtures::{nodes, pods};

    const GI: u64 = 1 << 30;

    fn unit(cpu_millis: u64, count: u32) -> ReservedUnit {
        ReservedUnit {
            count,
            cpu_millis,
            memory_bytes: GI,
            ephemeral_storage_bytes: 2 * GI,
            persistent_storage: vec![StorageReservation {
                class: "beta2".into(),
                bytes: 10 * GI,
            }],
            ..ReservedUnit::default()
        }
    }

    fn bid(dseq: u64, phase: BidPhase, units: Vec<ReservedUnit>) -> Bid {
        let order = OrderRef {
            owner: "akash1tenant".into(),
            dseq,
            gseq: 1,
            oseq: 1,
        };
        let mut bid = Bid::new(
            &order.object_name(),
            BidSpec {
                order_id: order,
                price: Price {
                    denom: "uact".into(),
                    amount: "1".into(),
                },
                resources: units,
            },
        );
        bid.status = Some(BidStatus {
            phase: Some(phase),
            ..BidStatus::default()
        });
        bid
    }

    #[test]
    fn the_report_counts_nodes_storage_leases_and_the_bids_in_hand() {
        let config = InventoryConfig {
            storage_classes: BTreeMap::from([("beta2".to_owned(), 200 * GI)]),
            ..InventoryConfig::default()
        };
        let bids = [
            bid(1, BidPhase::Won, vec![unit(500, 2)]),
            bid(2, BidPhase::Open, vec![unit(250, 1)]),
            bid(3, BidPhase::Reserved, vec![unit(100, 1)]),
            bid(4, BidPhase::Closed, vec![unit(4000, 1)]),
        ];
        let live: Vec<Vec<ReservedUnit>> =
            bids[..3].iter().map(|b| b.spec.resources.clone()).collect();
        let empty =
            Inventory::from_cluster(&nodes("nodes.yaml"), &pods("pods.yaml"), &[], 0, &config);
        let held =
            Inventory::from_cluster(&nodes("nodes.yaml"), &pods("pods.yaml"), &live, 0, &config);
        let report = report(&held, &bids);

        assert_eq!(
            report.orders, 2,
            "open and reserved bids, not won or closed"
        );
        assert_eq!(report.inventory.active, vec![total(&[unit(500, 2)])]);
        assert_eq!(report.inventory.active[0].cpu, 1000);
        assert_eq!(report.inventory.active[0].storage["beta2"], 20 * GI);
        assert_eq!(report.inventory.pending.len(), 2);

        // Every offered node, and the reservations taken from what is available.
        let names: Vec<&str> = report
            .inventory
            .available
            .nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect();
        let offered: Vec<&str> = held.nodes().iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, offered);
        let free_cpu = |r: &StatusReport| -> u64 {
            r.inventory
                .available
                .nodes
                .iter()
                .map(|n| n.available.cpu)
                .sum()
        };
        let before = super::report(&empty, &[]);
        assert_eq!(free_cpu(&before) - free_cpu(&report), 1000 + 250 + 100);
        for n in &report.inventory.available.nodes {
            assert!(n.available.cpu <= n.allocatable.cpu, "{n:?}");
            assert!(n.available.memory <= n.allocatable.memory, "{n:?}");
        }
        assert_eq!(
            report.inventory.available.storage,
            vec![StorageStatus {
                class: "beta2".into(),
                size: (200 - 20 - 10 - 10) as i64 * GI as i64,
            }]
        );

        // The JSON the Go provider's clients read.
        let json = serde_json::to_value(&report.inventory).unwrap();
        assert_eq!(json["active"][0]["cpu"], 1000);
        assert_eq!(json["available"]["storage"][0]["class"], "beta2");
        assert!(json["available"]["nodes"][0]["allocatable"]["storage_ephemeral"].is_u64());

        // And the protobuf of GetStatus.
        let proto = report.inventory_proto();
        let reservations = proto.reservations.unwrap();
        assert_eq!(reservations.active.unwrap().count, 1);
        assert_eq!(reservations.pending.unwrap().count, 2);
        assert_eq!(proto.cluster.unwrap().nodes.len(), names.len());
    }
}
