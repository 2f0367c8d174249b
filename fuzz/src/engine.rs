//! The runner: per target, a fixed number of executions of mutated inputs, each under
//! `catch_unwind` and the counting allocator. An input whose outcome (a short label the target
//! returns, such as the kind of error) was not seen before joins the target's corpus, so later
//! mutations start from inputs that got further: the coverage feedback a stable toolchain allows.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::alloc::peak_during;
use crate::mutate::Rng;

/// One fuzzed input surface.
pub trait Target {
    /// Short name, as the report prints it.
    fn name(&self) -> &'static str;
    /// Real inputs to start from.
    fn seeds(&self) -> Vec<Vec<u8>>;
    /// A new input made from `base`, with `donor` (another corpus entry) to splice from.
    fn mutate(&self, rng: &mut Rng, base: &[u8], donor: &[u8]) -> Vec<u8>;
    /// Runs one input through the code under test; returns a label of what happened.
    fn run(&mut self, input: &[u8]) -> String;
    /// This target's share of the executions, relative to the others (slower targets get less).
    fn weight(&self) -> u64 {
        10
    }
}

/// Allocation allowed to one execution: 64 bytes per input byte plus 64 MiB. Anything above is
/// reported: an input of a few KiB should never make the code hold hundreds of MiB.
pub fn allocation_bound(input_len: usize) -> usize {
    input_len.saturating_mul(64).saturating_add(64 << 20)
}

/// The largest corpus a target keeps (the seeds included).
const MAX_CORPUS: usize = 4_096;
/// Inputs larger than this do not join the corpus (they are still run): large entries would make
/// every mutation of them slow, and the corpus large.
const MAX_CORPUS_INPUT: usize = 64 << 10;
/// How often a long run says where it is (on stderr).
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
/// How many distinct outcome labels a target remembers.
const MAX_LABELS: usize = 100_000;

/// A panic or an over-allocation, with the file its input was saved to.
#[derive(Debug, Clone)]
pub struct Finding {
    pub target: &'static str,
    pub kind: &'static str,
    pub detail: String,
    pub input: PathBuf,
}

/// What one target's run did.
#[derive(Debug, Clone)]
pub struct TargetReport {
    pub name: &'static str,
    pub execs: u64,
    pub seconds: f64,
    pub panics: u64,
    pub over_allocations: u64,
    /// The largest allocation peak of one execution, and that input's length.
    pub max_alloc: usize,
    pub max_alloc_input_len: usize,
    pub outcomes: usize,
    pub corpus: usize,
    pub findings: Vec<Finding>,
}

impl TargetReport {
    pub fn execs_per_second(&self) -> f64 {
        self.execs as f64 / self.seconds.max(1e-9)
    }
}

thread_local! {
    static LAST_PANIC: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Panics are recorded, not printed, while targets run (one line per finding is printed later).
fn quiet_panics() -> Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        let at = info
            .location()
            .map(|l| format!(" at {l}"))
            .unwrap_or_default();
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{message}{at}")));
    }));
    previous
}

/// Runs `target` for `execs` executions from `seed`, saving findings' inputs under `findings_dir`.
pub fn run_target(
    target: &mut dyn Target,
    execs: u64,
    seed: u64,
    findings_dir: &Path,
    progress: bool,
) -> TargetReport {
    let name = target.name();
    let mut rng = Rng::new(seed ^ fnv(name.as_bytes()));
    let seeds = target.seeds();
    assert!(!seeds.is_empty(), "target {name} has no seeds");
    let mut corpus = seeds.clone();
    let mut labels = HashSet::new();
    let mut report = TargetReport {
        name,
        execs: 0,
        seconds: 0.0,
        panics: 0,
        over_allocations: 0,
        max_alloc: 0,
        max_alloc_input_len: 0,
        outcomes: 0,
        corpus: 0,
        findings: Vec::new(),
    };
    let previous_hook = quiet_panics();
    let start = Instant::now();
    let mut next_progress = PROGRESS_EVERY;
    for i in 0..execs {
        if progress && start.elapsed() >= next_progress {
            next_progress += PROGRESS_EVERY;
            eprintln!(
                "  {name}: {i} of {execs} executions, {:.0}/s, corpus {}",
                i as f64 / start.elapsed().as_secs_f64(),
                corpus.len()
            );
        }
        // The seeds first, as they are; then mutations, half of them of an original seed.
        let input = if (i as usize) < seeds.len() {
            seeds[i as usize].clone()
        } else {
            let base = if rng.one_in(2) {
                rng.pick(&seeds)
            } else {
                rng.pick(&corpus)
            };
            let donor = rng.pick(&corpus);
            let mut input = target.mutate(&mut rng, base, donor);
            input.truncate(crate::mutate::MAX_INPUT);
            input
        };
        let (outcome, peak) = peak_during(|| catch_unwind(AssertUnwindSafe(|| target.run(&input))));
        report.execs += 1;
        if peak > report.max_alloc {
            report.max_alloc = peak;
            report.max_alloc_input_len = input.len();
        }
        if peak > allocation_bound(input.len()) {
            report.over_allocations += 1;
            let detail = format!(
                "{peak} bytes allocated for an input of {} bytes",
                input.len()
            );
            report
                .findings
                .push(save(findings_dir, name, "over-allocation", detail, &input));
        }
        match outcome {
            Ok(label) => {
                if labels.len() < MAX_LABELS
                    && labels.insert(label)
                    && corpus.len() < MAX_CORPUS
                    && input.len() <= MAX_CORPUS_INPUT
                {
                    corpus.push(input);
                }
            }
            Err(_) => {
                report.panics += 1;
                let detail = LAST_PANIC
                    .with(|p| p.borrow_mut().take())
                    .unwrap_or_default();
                report
                    .findings
                    .push(save(findings_dir, name, "panic", detail, &input));
            }
        }
    }
    report.seconds = start.elapsed().as_secs_f64();
    std::panic::set_hook(previous_hook);
    report.outcomes = labels.len();
    report.corpus = corpus.len();
    report
}

fn save(
    dir: &Path,
    target: &'static str,
    kind: &'static str,
    detail: String,
    input: &[u8],
) -> Finding {
    let file = dir.join(format!("{target}-{kind}-{:016x}.bin", fnv(input)));
    // Best effort: a finding is reported even when its input cannot be written.
    let _ = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&file, input));
    Finding {
        target,
        kind,
        detail,
        input: file,
    }
}

/// FNV-1a, for file names and per-target seeds.
pub fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A label from an error message: its first line, without quoted text or digits (which would
/// make every input a new outcome), at most 80 characters.
pub fn label(prefix: &str, message: &str) -> String {
    let line = message.lines().next().unwrap_or_default();
    let mut out = String::with_capacity(prefix.len() + 81);
    out.push_str(prefix);
    out.push(':');
    let mut quoted = false;
    for c in line.chars() {
        if c == '"' {
            quoted = !quoted;
            continue;
        }
        if quoted {
            continue;
        }
        out.push(if c.is_ascii_digit() { '#' } else { c });
        if out.len() >= prefix.len() + 80 {
            break;
        }
    }
    out
}
