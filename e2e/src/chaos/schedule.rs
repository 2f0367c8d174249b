//! Who is killed when: a seeded schedule, the same for the same seed.

use std::time::Duration;

use super::SoakConfig;

/// A process the driver kills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Victim {
    Provider(usize),
    TenantController,
    Devnet,
    ApiServer,
    Etcd,
}

impl Victim {
    pub const ALL: [Victim; 6] = [
        Victim::Provider(0),
        Victim::Provider(1),
        Victim::TenantController,
        Victim::Devnet,
        Victim::ApiServer,
        Victim::Etcd,
    ];

    pub fn name(self) -> String {
        match self {
            Victim::Provider(i) => format!("provider {i}"),
            Victim::TenantController => "tenant controller".into(),
            Victim::Devnet => "devnet".into(),
            Victim::ApiServer => "kube-apiserver".into(),
            Victim::Etcd => "etcd".into(),
        }
    }
}

/// One planned kill.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Kill {
    pub victim: Victim,
    /// The pause before it.
    pub after: Duration,
    /// How long the process stays down.
    pub down: Duration,
}

/// splitmix64: small, fast and the same everywhere, so a seed means the same schedule.
#[derive(Debug, Clone)]
pub struct SeededRng(u64);

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A duration in `[low, high]`, to the millisecond.
    pub fn between(&mut self, (low, high): (Duration, Duration)) -> Duration {
        let span = high.saturating_sub(low).as_millis() as u64;
        low + Duration::from_millis(self.next_u64() % (span + 1))
    }
}

/// The kill schedule of `seed`: rounds of every victim in a shuffled order, so that each kind of
/// process is killed as often as the others and a short run still kills each one.
pub fn schedule(seed: u64, kills: usize, config: &SoakConfig) -> Vec<Kill> {
    let mut rng = SeededRng::new(seed);
    let mut out = Vec::with_capacity(kills);
    while out.len() < kills {
        let mut round = Victim::ALL.to_vec();
        for i in (1..round.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            round.swap(i, j);
        }
        for victim in round {
            if out.len() == kills {
                break;
            }
            out.push(Kill {
                victim,
                after: rng.between(config.pause),
                down: rng.between(config.down),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn config() -> SoakConfig {
        SoakConfig {
            seed: 7,
            baseline: 0,
            deployments: 1,
            concurrency: 1,
            min_kills: 6,
            pause: (Duration::from_secs(1), Duration::from_secs(3)),
            down: (Duration::from_millis(100), Duration::from_millis(900)),
        }
    }

    #[test]
    fn a_seed_gives_the_same_schedule_and_every_round_kills_each_process_once() {
        let a = schedule(7, 24, &config());
        assert_eq!(a, schedule(7, 24, &config()));
        assert_ne!(a, schedule(8, 24, &config()));
        for round in a.chunks(Victim::ALL.len()) {
            let victims: BTreeSet<Victim> = round.iter().map(|k| k.victim).collect();
            assert_eq!(victims.len(), Victim::ALL.len(), "{round:?}");
        }
        for k in &a {
            assert!((Duration::from_secs(1)..=Duration::from_secs(3)).contains(&k.after));
            assert!((Duration::from_millis(100)..=Duration::from_millis(900)).contains(&k.down));
        }
    }
}
