//! Inventory tests from the YAML fixtures in `operator/tests/fixtures/{inventory,orders}`.

use std::collections::BTreeMap;

use crds::resources::{GpuModel, ReservedUnit, StorageReservation};

use super::fixtures::{group, nodes, pods};
use super::*;

const GI: u64 = 1 << 30;

fn config() -> InventoryConfig {
    InventoryConfig {
        storage_classes: BTreeMap::from([("beta2".to_owned(), 200 * GI)]),
        node_ports: 10,
        leased_ips: 4,
        ..InventoryConfig::default()
    }
}

fn inventory_with(reservations: &[Vec<ReservedUnit>], config: &InventoryConfig) -> Inventory {
    Inventory::from_cluster(
        &nodes("nodes.yaml"),
        &pods("pods.yaml"),
        reservations,
        0,
        config,
    )
}

fn inventory() -> Inventory {
    inventory_with(&[], &config())
}

fn demand(name: &str) -> Vec<ReservedUnit> {
    demand_of(&group(name)).unwrap()
}

fn a100() -> GpuModel {
    GpuModel {
        vendor: "nvidia".into(),
        model: "a100".into(),
    }
}

#[test]
fn unschedulable_not_ready_and_tainted_nodes_are_not_offered() {
    let inv = inventory();
    let offered: Vec<&str> = inv.nodes().iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        offered,
        ["cpu-a", "cpu-b", "gpu-0"],
        "PreferNoSchedule is offered"
    );
    let excluded: Vec<(&str, &str)> = inv
        .excluded()
        .iter()
        .map(|e| (e.name.as_str(), e.reason.as_str()))
        .collect();
    assert_eq!(
        excluded,
        [
            ("cordoned", "unschedulable"),
            ("notready", "not ready"),
            (
                "tainted",
                "tainted node.kubernetes.io/out-of-service:NoExecute"
            ),
        ]
    );
}

#[test]
fn a_node_selector_limits_the_offer() {
    let mut labelled = config();
    labelled.node_selector = [("akash.network".to_owned(), "true".to_owned())].into();
    let inv = inventory_with(&[], &labelled);
    let offered: Vec<&str> = inv.nodes().iter().map(|n| n.name.as_str()).collect();
    assert_eq!(offered, ["cpu-a"]);
    assert!(
        inv.excluded()
            .iter()
            .any(|e| e.name == "gpu-0" && e.reason == "not labelled akash.network=true")
    );
}

#[test]
fn other_pods_subtract_and_lease_pods_are_not_double_counted() {
    let inv = inventory();
    let free: Vec<(u64, u64, u64)> = inv
        .nodes()
        .iter()
        .map(|n| (n.free_cpu(), n.free_memory(), n.free_vendor_gpus("nvidia")))
        .collect();
    // cpu-a: the running system pod (not the finished job); cpu-b: only a lease pod, which its
    // reservation counts; gpu-0: the init container's 3 cpu, the container's 16Gi, 1 GPU.
    assert_eq!(
        free,
        [
            (14_000, 60 * GI, 0),
            (8_000, 32 * GI, 0),
            (29_000, 240 * GI, 3)
        ]
    );
    let t = inv.totals();
    assert_eq!(
        t.cpu_millis,
        Totals {
            allocatable: 56_000,
            reserved: 0,
            used: 5_000,
            available: 51_000
        }
    );
    assert_eq!(t.ephemeral_bytes.used, 10 * GI);
    assert_eq!(
        t.gpus[&a100()],
        Totals {
            allocatable: 4,
            reserved: 0,
            used: 1,
            available: 3
        }
    );
    assert_eq!(
        (t.nodes_offered, t.nodes_excluded, t.overflow_replicas),
        (3, 3, 0)
    );
}

#[test]
fn a_gpu_group_lands_on_the_gpu_node_with_its_model() {
    let inv = inventory();
    let placed = inv.place(&demand("gpu-wildcard.yaml")).unwrap();
    assert_eq!(
        placed[0].allocated_gpu,
        Some(a100()),
        "the wildcard becomes a100"
    );
    assert_eq!(
        placed[0].gpu_models[0].model, "*",
        "the accepted models stay"
    );

    let placed = inv.place(&demand("gpu-a100.yaml")).unwrap();
    assert_eq!(
        placed[0].allocated_gpu,
        Some(a100()),
        "a100 with 80Gi matches"
    );
    assert_eq!(placed[1].allocated_gpu, None, "no GPUs, no model");
    assert_eq!(
        inv.totals().gpus[&a100()].available,
        3,
        "place holds nothing"
    );
}

#[test]
fn gpu_models_and_counts_that_are_not_there() {
    let inv = inventory();
    let err = inv.place(&demand("gpu-h100.yaml")).unwrap_err();
    assert_eq!(err.to_string(), "gpu nvidia/h100: none offered");
    assert_eq!(err.label(), "gpu");

    let mut pcie = demand("gpu-h100.yaml");
    pcie[0].gpu_models = vec![GpuModel {
        vendor: "nvidia".into(),
        model: "a100/interface/pcie".into(),
    }];
    let err = inv.place(&pcie).unwrap_err();
    assert_eq!(
        err.to_string(),
        "gpu nvidia/a100/interface/pcie: none offered"
    );

    let mut four = demand("gpu-wildcard.yaml");
    four[0].count = 1;
    four[0].gpus = 4;
    let err = inv.place(&four).unwrap_err();
    assert_eq!(
        err.to_string(),
        "gpu: 1 replica of 4 × nvidia/* does not fit; the most free on one node is 3"
    );
}

#[test]
fn a_group_too_big_for_any_single_node_is_refused() {
    let inv = inventory();
    let big = demand("too-big.yaml");
    let need: u64 = big.iter().map(|u| u.cpu_millis * u64::from(u.count)).sum();
    assert!(
        inv.totals().cpu_millis.available >= need,
        "the total would fit"
    );
    let err = inv.place(&big).unwrap_err();
    assert_eq!(
        err,
        Misfit::Cpu {
            replicas: 1,
            need: 20_000,
            largest: 14_000
        }
    );
    assert_eq!(
        err.to_string(),
        "cpu: 1 replica of 20000m does not fit; the largest free node has 14000m"
    );
    assert_eq!(err.label(), "cpu");
}

#[test]
fn overcommit_raises_capacity() {
    let mut config = config();
    config.overcommit_pct.cpu = 50;
    let inv = inventory_with(&[], &config);
    assert_eq!(inv.totals().cpu_millis.allocatable, 84_000);
    inv.place(&demand("too-big.yaml")).unwrap();
}

#[test]
fn reservations_subtract() {
    let reservation = vec![
        ReservedUnit {
            count: 1,
            cpu_millis: 3_000,
            memory_bytes: 8 * GI,
            gpus: 3,
            allocated_gpu: Some(a100()),
            ..ReservedUnit::default()
        },
        ReservedUnit {
            count: 2,
            cpu_millis: 10_000,
            memory_bytes: GI,
            node_ports: 2,
            persistent_storage: vec![StorageReservation {
                class: "beta2".into(),
                bytes: 50 * GI,
            }],
            ..ReservedUnit::default()
        },
    ];
    let inv = inventory_with(&[reservation], &config());
    assert!(inv.overflow().is_empty());
    let t = inv.totals();
    assert_eq!(t.cpu_millis.reserved, 23_000);
    assert_eq!(t.cpu_millis.available, 51_000 - 23_000);
    assert_eq!(t.gpus[&a100()].reserved, 3);
    assert_eq!(t.gpus[&a100()].available, 0);
    assert_eq!(t.storage["beta2"].available, 100 * GI);
    assert_eq!(t.node_ports.available, 8);
    let err = inv.place(&demand("gpu-wildcard.yaml")).unwrap_err();
    assert_eq!(err.label(), "gpu");
}

#[test]
fn a_reservation_that_no_longer_fits_overflows_without_underflow() {
    let gone = vec![
        ReservedUnit {
            count: 3,
            cpu_millis: 20_000,
            memory_bytes: GI,
            ..ReservedUnit::default()
        },
        ReservedUnit {
            count: 1,
            cpu_millis: 100,
            memory_bytes: GI,
            gpus: 8,
            allocated_gpu: Some(GpuModel {
                vendor: "nvidia".into(),
                model: "h100".into(),
            }),
            persistent_storage: vec![StorageReservation {
                class: "beta2".into(),
                bytes: 500 * GI,
            }],
            node_ports: 50,
            ..ReservedUnit::default()
        },
    ];
    let inv = inventory_with(&[vec![], gone], &config());
    let overflow: Vec<(usize, usize, u32, &str)> = inv
        .overflow()
        .iter()
        .map(|o| (o.reservation, o.unit, o.replicas, o.reason.label()))
        .collect();
    assert_eq!(overflow, [(1, 1, 1, "gpu"), (1, 0, 2, "cpu")]);
    let t = inv.totals();
    assert_eq!(t.overflow_replicas, 3);
    assert_eq!(t.storage["beta2"].available, 0);
    assert_eq!(t.node_ports.available, 0);
    assert!(t.cpu_millis.available <= t.cpu_millis.allocatable);
    assert_eq!(t.gpus[&a100()].available, 3, "nothing taken from the a100s");
    let err = inv.place(&demand("persistent.yaml")).unwrap_err();
    assert_eq!(err.to_string(), "storage beta2: 100Gi needed, 0 free");
}

#[test]
fn persistent_storage_by_class() {
    let inv = inventory();
    let placed = inv.place(&demand("persistent.yaml")).unwrap();
    assert_eq!(placed, demand("persistent.yaml"));

    let mut small = config();
    small.storage_classes.insert("beta2".into(), 80 * GI);
    let err = inventory_with(&[], &small)
        .place(&demand("persistent.yaml"))
        .unwrap_err();
    assert_eq!(err.to_string(), "storage beta2: 100Gi needed, 80Gi free");
    assert_eq!(err.label(), "storage");

    let mut beta9 = demand("persistent.yaml");
    beta9[0].persistent_storage[0].class = "beta9".into();
    let err = inv.place(&beta9).unwrap_err();
    assert_eq!(err.to_string(), "unknown storage class \"beta9\"");
    assert_eq!(err.label(), "storage_class");

    let mut unlabelled = config();
    unlabelled.storage_classes.insert("beta3".into(), 800 * GI);
    let mut beta3 = demand("persistent.yaml");
    beta3[0].persistent_storage[0].class = "beta3".into();
    let err = inventory_with(&[], &unlabelled).place(&beta3).unwrap_err();
    assert_eq!(err, Misfit::StorageClassOnNoNode("beta3".into()));
}

#[test]
fn node_ports_and_leased_ips_are_cluster_wide() {
    let mut few = config();
    few.node_ports = 5;
    let inv = Inventory::from_cluster(&nodes("nodes.yaml"), &pods("pods.yaml"), &[], 3, &few);
    let err = inv.place(&demand("persistent.yaml")).unwrap_err();
    assert_eq!(err.to_string(), "node ports: 3 needed, 2 free");
    assert_eq!(err.label(), "node_ports");

    let mut no_ips = config();
    no_ips.leased_ips = 0;
    let err = inventory_with(&[], &no_ips)
        .place(&demand("gpu-a100.yaml"))
        .unwrap_err();
    assert_eq!(err, Misfit::Ips { need: 2, free: 0 });
    assert_eq!(err.label(), "ips");
}

#[test]
fn reserve_holds_what_it_placed() {
    let mut inv = inventory();
    inv.reserve(&demand("gpu-wildcard.yaml")).unwrap();
    assert_eq!(inv.totals().gpus[&a100()].available, 1);
    let err = inv.reserve(&demand("gpu-wildcard.yaml")).unwrap_err();
    assert_eq!(err.label(), "gpu");
    assert_eq!(
        inv.totals().gpus[&a100()].available,
        1,
        "a misfit holds nothing"
    );
}

fn unit(count: u32, cpu_millis: u64, memory_bytes: u64) -> ReservedUnit {
    ReservedUnit {
        count,
        cpu_millis,
        memory_bytes,
        ..ReservedUnit::default()
    }
}

fn reserved_cpu(inv: &Inventory) -> Vec<(String, u64)> {
    inv.nodes()
        .iter()
        .map(|n| (n.name.clone(), n.reserved.cpu_millis))
        .collect()
}

#[test]
fn a_won_leases_replicas_are_held_where_its_pods_run_and_the_rest_first_fit() {
    let lease = vec![unit(2, 2_000, 4 * GI)];
    // Without knowing the lease's pods: both replicas first-fit on cpu-a.
    let blind = inventory_with(std::slice::from_ref(&lease), &config());
    assert_eq!(
        reserved_cpu(&blind),
        [
            ("cpu-a".into(), 4_000),
            ("cpu-b".into(), 0),
            ("gpu-0".into(), 0)
        ]
    );
    // Its one running pod (lease-ns, on cpu-b) holds its replica there; the other first-fit.
    let seen = Inventory::from_cluster_with_leases(
        &nodes("nodes.yaml"),
        &pods("pods.yaml"),
        &[lease],
        &[Some("lease-ns".to_owned())],
        0,
        &config(),
    );
    assert_eq!(
        reserved_cpu(&seen),
        [
            ("cpu-a".into(), 2_000),
            ("cpu-b".into(), 2_000),
            ("gpu-0".into(), 0)
        ]
    );
    // The totals are the same either way.
    assert_eq!(blind.totals().cpu_millis, seen.totals().cpu_millis);
    // With only another lease's namespace known, lease-ns's pod is not this provider's (on a
    // shared cluster, another provider's): it counts by its requests, like any pod.
    let other = Inventory::from_cluster_with_leases(
        &nodes("nodes.yaml"),
        &pods("pods.yaml"),
        &[vec![unit(1, 2_000, 4 * GI)]],
        &[Some("another-ns".to_owned())],
        0,
        &config(),
    );
    assert_eq!(reserved_cpu(&other)[0], ("cpu-a".into(), 2_000));
    let cpu_b = |inv: &Inventory| inv.nodes()[1].free_cpu();
    assert_eq!(cpu_b(&other), 8_000 - 4_000);
    assert_eq!(
        cpu_b(&seen),
        8_000 - 2_000,
        "its own pod is not counted twice"
    );
}
