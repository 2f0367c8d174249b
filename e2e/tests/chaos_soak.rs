//! The chaos soak at a small size (the `chaos_soak` bench runs it at 100 lease lifecycles): a few
//! deployments on two providers while every kind of process is SIGKILLed at least once, then
//! every invariant checked. `CHAOS_SEED` repeats a run's kill schedule.

use std::time::Duration;

use e2e::chaos::{SoakConfig, Victim, soak};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_soak_kills_every_process_and_every_invariant_holds() -> anyhow::Result<()> {
    let config = SoakConfig {
        seed: e2e::chaos::seed_from_env(),
        baseline: 1,
        // Two at a time, so that the kills fall while deployments live.
        deployments: 6,
        concurrency: 2,
        min_kills: Victim::ALL.len(),
        pause: (Duration::from_secs(1), Duration::from_secs(3)),
        down: (Duration::from_millis(100), Duration::from_millis(1500)),
    };
    let report = soak(&config).await?;
    let table = report.table();
    println!("{table}");
    for victim in Victim::ALL {
        assert!(
            report.kills.get(&victim.name()).is_some_and(|n| *n > 0),
            "{} was never killed:\n{table}",
            victim.name()
        );
    }
    assert_eq!(report.lifecycles.len(), config.deployments);
    assert!(report.invariants.all_hold(), "{table}");
    Ok(())
}
