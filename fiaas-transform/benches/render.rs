//! Parse + validate + render of every valid v3 example fixture, the work the daemon does for
//! each deploy before talking to the cluster.
//!
//! `cargo bench -p fiaas-transform --bench render` prints criterion's figures (elements/s, one
//! element per app), then its own mean time per app and allocations per app.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fiaas_config::ClusterConfig;
use fiaas_spec::AppFacts;
use fiaas_transform::{Manifests, RenderOptions, TransformSettings};

/// The system allocator, counting what is asked of it so the bench can report allocations.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

fn count(bytes: usize) {
    // Relaxed is enough: the counters are read only after the measured code has returned on
    // the same thread.
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    BYTES.fetch_add(bytes as u64, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds the contract.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's guarantees about `layout` are passed on as they are.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A growing Vec or String reallocates; counting the new size as requested bytes
        // matches what a fresh allocation of that size would have cost.
        count(new_size);
        // SAFETY: `ptr` came from this allocator (that is, from `System`) with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator (that is, from `System`) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The apps under test: the text of each fixture, rendered under one cluster configuration.
struct Apps {
    texts: Vec<String>,
    facts: AppFacts,
    config: TransformSettings,
}

impl Apps {
    fn load() -> Apps {
        // The flags that switch on every optional part (datadog sidecar, strongbox init
        // container, networking/v1 ingresses), so that fixtures using them render.
        let config = ClusterConfig::from_args(
            [
                "fiaas",
                "--ingress-suffix",
                "svc.test.example.com",
                "--use-networkingv1-ingress",
                "--environment",
                "test",
                "--datadog-container-image",
                "dd:1",
                "--strongbox-init-container-image",
                "sb:1",
            ],
            None,
        )
        .expect("the bench's cluster flags parse")
        .transform;
        let facts = AppFacts {
            name: "bench-app".into(),
            namespace: "default".into(),
            image: "registry.example.com/bench-app:1.0.0".into(),
            deployment_id: "1".into(),
            ..AppFacts::default()
        };
        let dir =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/specs/v3/data/examples");
        let mut paths: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
            .map(|entry| entry.expect("a readable directory entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "yml"))
            .filter(|path| {
                !path
                    .file_name()
                    .is_some_and(|name| name.to_string_lossy().starts_with("invalid_"))
            })
            .collect();
        paths.sort();
        let mut apps = Apps {
            texts: Vec::new(),
            facts,
            config,
        };
        for path in paths {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            // Some valid-looking fixtures are rejected on purpose (upstream tests the errors);
            // timing an early error would flatter the figures, so those are left out.
            match apps.deploy(&text) {
                Ok(_) => apps.texts.push(text),
                Err(e) => eprintln!("skipping {}: {e}", path.display()),
            }
        }
        assert!(!apps.texts.is_empty(), "no v3 example fixture renders");
        apps
    }

    fn deploy(&self, text: &str) -> Result<Manifests, Box<dyn std::error::Error>> {
        let app = fiaas_spec::load(text, &self.facts)?;
        Ok(fiaas_transform::render(
            &app,
            &self.config,
            &RenderOptions::default(),
        )?)
    }

    fn deploy_all(&self) {
        for text in &self.texts {
            black_box(self.deploy(black_box(text)).expect("rendered when loaded"));
        }
    }

    fn len(&self) -> u64 {
        self.texts.len() as u64
    }
}

/// Our own figures next to criterion's: a plain mean per app, and the allocator's counters,
/// which criterion cannot measure.
fn report_per_app(apps: &Apps) {
    // The first round builds what is cached for the process (schema, regexes); a deploy in a
    // running daemon does not pay for that, so it is kept out of both figures.
    apps.deploy_all();

    let before = (
        ALLOCATIONS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    apps.deploy_all();
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before.0;
    let bytes = BYTES.load(Ordering::Relaxed) - before.1;

    let budget = Duration::from_secs(2);
    let start = Instant::now();
    let mut rounds = 0u32;
    while start.elapsed() < budget {
        apps.deploy_all();
        rounds += 1;
    }
    let per_app = start.elapsed() / (rounds * apps.texts.len() as u32);

    println!(
        "{} apps, {rounds} rounds: mean {:.1} µs per app",
        apps.len(),
        per_app.as_secs_f64() * 1e6
    );
    println!(
        "allocations per app: {} (bytes: {})",
        allocations / apps.len(),
        bytes / apps.len()
    );
}

/// `FIAAS_RENDER_ROUNDS=N`: render every app N times after one warm-up round, print nothing
/// more and exit, for an instruction count under `valgrind --tool=callgrind` (see
/// `fiaas-transform/benches/instructions`): the difference between two round counts is the
/// cost of the rounds alone, the same on every machine.
fn rounds_only(apps: &Apps) {
    let Some(rounds) = std::env::var("FIAAS_RENDER_ROUNDS")
        .ok()
        .and_then(|n| n.parse::<u32>().ok())
    else {
        return;
    };
    apps.deploy_all();
    for _ in 0..rounds {
        apps.deploy_all();
    }
    println!("{} apps × {rounds} rounds", apps.len());
    std::process::exit(0);
}

fn render_examples(c: &mut Criterion) {
    let apps = Apps::load();
    rounds_only(&apps);
    // Criterion runs each benchmark once when the binary is run as a test (`cargo test
    // --all-targets`), without `--bench`; the extra timed loop is skipped there too.
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    if has("--bench") && !has("--test") && !has("--list") {
        report_per_app(&apps);
    }

    let mut group = c.benchmark_group("render");
    group.throughput(Throughput::Elements(apps.len()));
    group.bench_function("all v3 examples", |b| b.iter(|| apps.deploy_all()));
    group.finish();
}

criterion_group! {
    name = benches;
    // Small enough for CI, where the bench is also built and run once by the tests.
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = render_examples
}
criterion_main!(benches);
