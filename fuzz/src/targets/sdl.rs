//! SDL YAML as a tenant writes it: parse, validate, groups, manifest and version (crds), then what
//! the provider and the tenant controller derive from them: on-chain groups, the inventory's
//! demand, the order's price, the workloads built from each manifest group.

use std::hint::black_box;
use std::sync::Arc;

use crds::resources::LeaseRef;
use crds::sdl::Sdl;
use operator::workload::build::{WorkloadConfig, build};

use crate::engine::{Target, label};
use crate::mutate::{self, Rng};
use crate::world::World;

pub struct SdlTarget {
    world: Arc<World>,
    config: WorkloadConfig,
}

impl SdlTarget {
    pub fn new(world: Arc<World>) -> Self {
        Self {
            world,
            config: WorkloadConfig::default(),
        }
    }
}

/// A document whose aliases expand a millionfold, and one nested deeply: what a YAML reader
/// must refuse without exhausting memory or the stack.
const HOSTILE: &[&str] = &[
    "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n",
    "version: \"2.0\"\nservices: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
];

impl Target for SdlTarget {
    fn name(&self) -> &'static str {
        "sdl"
    }

    fn weight(&self) -> u64 {
        3
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        let mut seeds: Vec<Vec<u8>> = self
            .world
            .sdl_texts
            .iter()
            .map(|t| t.clone().into_bytes())
            .collect();
        seeds.extend(HOSTILE.iter().map(|t| t.as_bytes().to_vec()));
        seeds
    }

    fn mutate(&self, rng: &mut Rng, base: &[u8], donor: &[u8]) -> Vec<u8> {
        if rng.one_in(2) {
            let tree = std::str::from_utf8(base)
                .ok()
                .and_then(|t| serde_yaml::from_str::<serde_yaml::Value>(t).ok());
            let donor_tree = std::str::from_utf8(donor)
                .ok()
                .and_then(|t| serde_yaml::from_str(t).ok());
            if let Some(mut tree) = tree {
                mutate::yaml(
                    rng,
                    &mut tree,
                    donor_tree.as_ref().unwrap_or(&serde_yaml::Value::Null),
                );
                if let Ok(text) = serde_yaml::to_string(&tree) {
                    return text.into_bytes();
                }
            }
        }
        let mut out = base.to_vec();
        mutate::bytes(rng, &mut out, donor);
        out
    }

    fn run(&mut self, input: &[u8]) -> String {
        let Ok(text) = std::str::from_utf8(input) else {
            return "not utf-8".into();
        };
        let sdl = match Sdl::parse(text) {
            Ok(sdl) => sdl,
            Err(e) => return label("invalid", &e.to_string()),
        };
        black_box(sdl.manifest_json());
        black_box(sdl.manifest_version_hex());
        // The tenant controller validates the document again from its custom resource.
        let again = Sdl::from_document(sdl.document()).map(|_| ());
        let mut out = crate::targets::outcome("again", &again);
        match operator::chain_groups::to_chain(sdl.groups()) {
            Err(e) => out.push_str(&label(" chain", &e.to_string())),
            Ok(groups) => {
                for g in &groups {
                    let demand = operator::inventory::demand_of(g);
                    out.push_str(&crate::targets::outcome(" demand", &demand));
                    let price = operator::bidding::pricing::order_max_price(g);
                    out.push_str(&crate::targets::outcome(" price", &price));
                }
            }
        }
        let lease = LeaseRef {
            owner: self.world.tenant().into(),
            dseq: 7,
            gseq: 1,
            oseq: 1,
            provider: self.world.provider().into(),
        };
        for group in sdl.manifest() {
            // As an older provider stored it: no lease units, so the quota follows the services.
            let stored = crds::resources::LeaseManifest {
                version: crds::sdl::version::hex(&sdl.manifest_version()),
                group: group.clone(),
                leased: Vec::new(),
                hostnames: None,
                ip_endpoints: None,
                ip_addresses: Default::default(),
                secret_name: None,
            };
            let built = build(&lease, &stored, &self.config);
            out.push_str(&crate::targets::outcome(" build", &built));
        }
        out
    }
}
