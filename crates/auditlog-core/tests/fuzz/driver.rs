//! The fuzz loop every target shares: run the committed corpus, then mutate it for a bounded
//! time, and turn the first failure (a panic or a broken assertion) into a report with the
//! seed, the iteration and the input, saved so that it can join the corpus.
//!
//! There is no coverage instrumentation on stable Rust, so the loop keeps a cheap substitute:
//! a target returns an *outcome* for each input (which error, which field, accepted or not),
//! and an input that produces an outcome not seen before joins the pool that later mutations
//! start from. That is enough to walk past the first layer of errors of a parser.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::mutate::Mutator;

/// Seconds each target runs when `AUDITLOG_FUZZ_SECONDS` is not set: short enough that a plain
/// `cargo test` stays fast; CI sets a longer budget.
const DEFAULT_SECONDS: f64 = 2.0;

/// Most inputs the pool holds; seeds count. New outcomes beyond it replace random entries.
const MAX_POOL: usize = 2048;

/// How long the minimizer may spend shrinking a failing input.
const MINIMIZE_FOR: Duration = Duration::from_secs(5);

/// One fuzz target: a name (its corpus directory), the tokens worth inserting into its inputs,
/// and the check that asserts what must hold for any input.
pub struct Target {
    /// The target's name: `tests/fuzz/corpus/<name>/` holds its seeds.
    pub name: &'static str,
    /// Tokens of the target's language (field names, keywords), inserted besides the
    /// tokens every target gets.
    pub dictionary: &'static [&'static [u8]],
    /// Longest input tried; mutants are cut to it.
    pub max_len: usize,
    /// Checks one input; panics (usually through `assert!`) when a property fails, and
    /// otherwise names the outcome, which steers the pool.
    pub check: fn(&[u8]) -> String,
}

/// The budget and seed of a run, from the environment.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// How long to mutate, after the corpus ran.
    pub duration: Duration,
    /// The random seed: the same seed gives the same sequence of inputs.
    pub seed: u64,
}

impl Config {
    /// Reads `AUDITLOG_FUZZ_SECONDS` and `AUDITLOG_FUZZ_SEED`; a seed is drawn from the clock
    /// when none is given (and printed, so the run can be repeated).
    pub fn from_env() -> Config {
        let seconds = match std::env::var("AUDITLOG_FUZZ_SECONDS") {
            Ok(text) => text
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .unwrap_or_else(|| {
                    panic!("AUDITLOG_FUZZ_SECONDS={text:?} is not a number of seconds")
                }),
            Err(_) => DEFAULT_SECONDS,
        };
        let seed = match std::env::var("AUDITLOG_FUZZ_SEED") {
            Ok(text) => text
                .trim()
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("AUDITLOG_FUZZ_SEED={text:?} is not a whole number")),
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0),
        };
        Config {
            duration: Duration::from_secs_f64(seconds),
            seed,
        }
    }
}

/// Runs `target`: every corpus file and every extra seed as it is, then mutants until the
/// time is up. Fails the test with a report at the first input that breaks a property.
pub fn run(target: &Target, extra_seeds: Vec<Vec<u8>>) {
    let config = Config::from_env();
    install_panic_hook();
    eprintln!(
        "fuzz {}: seed {} for {:.1} s (repeat with AUDITLOG_FUZZ_SEED={})",
        target.name,
        config.seed,
        config.duration.as_secs_f64(),
        config.seed
    );

    let mut pool: Vec<Vec<u8>> = Vec::new();
    let mut outcomes = HashSet::new();
    let corpus = load_corpus(target.name);
    let n_corpus = corpus.len();
    let seeds = corpus
        .into_iter()
        .map(|(name, input)| (format!("corpus file {name}"), input))
        .chain(
            extra_seeds
                .into_iter()
                .enumerate()
                .map(|(idx, input)| (format!("built-in seed {idx}"), input)),
        );
    // Seeds run unmutated first: a committed failing input is a regression test from then on.
    for (origin, input) in seeds {
        match attempt(target, &input) {
            Ok(outcome) => {
                outcomes.insert(outcome);
                pool.push(input);
            }
            Err(failure) => fail(target, &config, &origin, input, failure),
        }
    }
    if pool.is_empty() {
        pool.push(Vec::new());
    }

    // Targets get their own stream of the one printed seed.
    let mut rng = StdRng::seed_from_u64(config.seed ^ fnv1a(target.name.as_bytes()));
    let mutator = Mutator::new(target.dictionary, target.max_len);
    let started = Instant::now();
    let mut iteration = 0u64;
    while started.elapsed() < config.duration {
        iteration += 1;
        let input = mutator.mutate(&mut rng, &pool);
        match attempt(target, &input) {
            Ok(outcome) => {
                if !outcomes.contains(&outcome) {
                    outcomes.insert(outcome);
                    if pool.len() < MAX_POOL {
                        pool.push(input);
                    } else {
                        let slot = rand::Rng::gen_range(&mut rng, 0..pool.len());
                        pool[slot] = input;
                    }
                }
            }
            Err(failure) => fail(
                target,
                &config,
                &format!("iteration {iteration}"),
                input,
                failure,
            ),
        }
    }
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    eprintln!(
        "fuzz {}: {iteration} inputs in {seconds:.1} s ({:.0}/s); {n_corpus} corpus files, {} outcomes, pool of {}",
        target.name,
        iteration as f64 / seconds,
        outcomes.len(),
        pool.len()
    );
}

/// What went wrong with one input.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The panic message.
    message: String,
    /// Where it panicked (`file:line:column`), to tell one defect from another while
    /// minimizing.
    location: String,
    /// The backtrace, when `RUST_BACKTRACE` asks for one.
    backtrace: String,
}

/// Runs the check on one input, turning a panic into a [`Failure`].
fn attempt(target: &Target, input: &[u8]) -> Result<String, Failure> {
    QUIET.with(|quiet| quiet.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(|| (target.check)(input)));
    QUIET.with(|quiet| quiet.set(false));
    result.map_err(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic without a message".to_string());
        let (location, backtrace) = LAST_PANIC
            .with(|last| last.borrow_mut().take())
            .unwrap_or_default();
        Failure {
            message,
            location,
            backtrace,
        }
    })
}

thread_local! {
    /// True while a check runs: its panics are reported by [`fail`], not printed as they happen.
    static QUIET: Cell<bool> = const { Cell::new(false) };
    /// Where the last quiet panic happened, and its backtrace.
    static LAST_PANIC: RefCell<Option<(String, String)>> = const { RefCell::new(None) };
}

/// Installs, once per process, a panic hook that records a check's panic instead of printing
/// it, and leaves every other panic (the test's own failure report) to the default hook.
fn install_panic_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if QUIET.with(Cell::get) {
                let location = info
                    .location()
                    .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                    .unwrap_or_default();
                let backtrace = std::backtrace::Backtrace::capture().to_string();
                LAST_PANIC.with(|last| *last.borrow_mut() = Some((location, backtrace)));
            } else {
                default(info);
            }
        }));
    });
}

/// Shrinks the input, saves both forms and fails the test with everything needed to repeat it.
fn fail(target: &Target, config: &Config, origin: &str, input: Vec<u8>, failure: Failure) -> ! {
    let minimized = minimize(target, &input, &failure);
    let dir = failure_dir(target.name);
    let stem = format!("seed-{}-{}", config.seed, origin.replace(' ', "-"));
    let saved = [("", &input), ("-minimized", &minimized)].map(|(suffix, bytes)| {
        let path = dir.join(format!("{stem}{suffix}"));
        match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, bytes)) {
            Ok(()) => path.display().to_string(),
            Err(e) => format!("(not saved: {e})"),
        }
    });
    panic!(
        "fuzz target {name} failed at {origin} (seed {seed})\n\
         panic at {location}: {message}\n\
         input ({len} bytes): b\"{escaped}\"\n\
         minimized input ({min_len} bytes): b\"{min_escaped}\"\n\
         minimized input as hex: {hex}\n\
         saved as {saved_input}\n\
         and {saved_minimized}\n\
         repeat with AUDITLOG_FUZZ_SEED={seed}; once fixed, copy the minimized input to\n\
         crates/auditlog-core/tests/fuzz/corpus/{name}/ so that every run checks it\n\
         {backtrace}",
        name = target.name,
        seed = config.seed,
        location = failure.location,
        message = failure.message,
        len = input.len(),
        escaped = input.escape_ascii(),
        min_len = minimized.len(),
        min_escaped = minimized.escape_ascii(),
        hex = hex::encode(&minimized),
        saved_input = saved[0],
        saved_minimized = saved[1],
        backtrace = failure.backtrace,
    );
}

/// Deletes ever smaller chunks of a failing input while it still fails at the same place.
fn minimize(target: &Target, input: &[u8], failure: &Failure) -> Vec<u8> {
    let started = Instant::now();
    let mut best = input.to_vec();
    let mut chunk = best.len().next_power_of_two();
    while chunk > 0 && started.elapsed() < MINIMIZE_FOR {
        let mut at = 0;
        while at < best.len() && started.elapsed() < MINIMIZE_FOR {
            let mut candidate = best.clone();
            candidate.drain(at..(at + chunk).min(best.len()));
            match attempt(target, &candidate) {
                Err(again) if again.location == failure.location => best = candidate,
                _ => at += chunk,
            }
        }
        chunk /= 2;
    }
    best
}

/// The committed seeds of a target, sorted by name; a missing directory is an empty corpus.
fn load_corpus(name: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(name);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<(String, Vec<u8>)> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .map(|entry| {
            let path = entry.path();
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            (entry.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    files.sort();
    files
}

/// `tests/fuzz/corpus/<name>` of this crate.
pub fn corpus_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/corpus")
        .join(name)
}

/// Where failing inputs are saved: under the build directory, never in the source tree.
fn failure_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("fuzz-failures")
        .join(name)
}

/// FNV-1a: a stable hash (the standard library's may change between releases).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
