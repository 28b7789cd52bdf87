//! `routegen-bench memory`: what the heap holds per object kind and per
//! stage after a cold pass over the benchmark fleet (issue 20 item 2).
//!
//! The bench's global allocator counts live heap bytes and their peak
//! when this subcommand runs (`COUNTING`, set before anything else in
//! `main`). The figures are heap bytes as the program asked for them
//! (`Layout::size`), not resident pages: the allocator's own overhead
//! and fragmentation are in the RSS figures of `run` and `sidecar`, not
//! here. Each part is measured by dropping it and reading how much the
//! live count fell, in an order where nothing dropped later still shares
//! what was dropped before: the output tree's map, then the engine (its
//! memos and the file contents they share with the tree), then each list
//! of the snapshot.

use std::alloc::{GlobalAlloc, Layout};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering::Relaxed};
use std::time::Instant;

use anyhow::bail;
use routegen_host::source::files;

/// Whether the allocator counts (only for this subcommand: two atomic
/// operations per allocation would weigh on every other figure).
pub static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

/// mimalloc, counting live bytes and their peak while [`COUNTING`] is set.
pub struct CountingMimalloc;

impl CountingMimalloc {
    fn add(delta: isize) {
        if COUNTING.load(Relaxed) {
            let now = LIVE.fetch_add(delta, Relaxed) + delta;
            if delta > 0 {
                PEAK.fetch_max(now, Relaxed);
            }
        }
    }
}

// SAFETY: every call is forwarded to mimalloc unchanged; the counters
// only observe sizes.
unsafe impl GlobalAlloc for CountingMimalloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { mimalloc::MiMalloc.alloc(layout) };
        if !p.is_null() {
            Self::add(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) };
        if !p.is_null() {
            Self::add(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) };
        Self::add(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            Self::add(new_size as isize - layout.size() as isize);
        }
        p
    }
}

fn live() -> isize {
    LIVE.load(Relaxed)
}

/// Restart the peak at the live count.
fn reset_peak() {
    PEAK.store(live(), Relaxed);
}

fn peak() -> isize {
    PEAK.load(Relaxed)
}

/// One row of the report: a part, how many objects it holds, its bytes.
struct Part {
    name: &'static str,
    count: usize,
    bytes: isize,
}

/// Bytes freed by dropping `value`.
fn size_of_drop<T>(value: T) -> isize {
    let before = live();
    drop(value);
    before - live()
}

/// Load the fleet in `file`, run one cold pass, and take the parts apart.
pub fn run(
    file: &Path,
    routes: usize,
    default_cert: &Path,
    run_dir: &Path,
) -> anyhow::Result<String> {
    if !COUNTING.load(Relaxed) {
        bail!("the allocator is not counting (run as `routegen-bench memory`)");
    }
    let base = live();
    reset_peak();
    let t = Instant::now();
    let loaded = files::load_paths(std::slice::from_ref(&file.to_path_buf()), "default")?;
    let load_time = t.elapsed().as_secs_f64();
    let load_peak = peak() - base;
    if !loaded.warnings.is_empty() {
        bail!("loading the fleet warned: {}", loaded.warnings[0]);
    }
    let mut snapshot = loaded.snapshot;
    let after_load = live() - base;

    let [http, https] = super::free_ports()?;
    let mut pipeline =
        super::Pipeline::new(default_cert, http, https, run_dir.display().to_string())?;
    reset_peak();
    let (tree, _, _) = pipeline.pass(&snapshot)?;
    let pass_peak = peak() - base;
    let after_pass = live() - base;
    let files = tree.len();
    let file_bytes: usize = tree.values().map(|f| f.contents.len()).sum();

    let counts = [
        snapshot.routes.len(),
        snapshot.services.len(),
        snapshot.endpoint_slices.len(),
    ];
    let endpoints: usize = snapshot
        .endpoint_slices
        .iter()
        .map(|s| s.endpoints.len())
        .sum();
    let mut parts = vec![Part {
        name: "output tree: the map (paths, entries)",
        count: files,
        bytes: size_of_drop(tree),
    }];
    // The bench's hash memo first: it shares the files' contents with the
    // render memo, which then frees them.
    parts.push(Part {
        name: "hash memo (sha256 per file, as the applier keeps)",
        count: files,
        bytes: size_of_drop(std::mem::take(&mut pipeline.hashes)),
    });
    let (admit, plan, render) = pipeline.engine.into_memos();
    parts.push(Part {
        name: "render memo: sections' texts and the files' contents",
        count: files,
        bytes: size_of_drop(render),
    });
    parts.push(Part {
        name: "plan memo",
        count: counts[0],
        bytes: size_of_drop(plan),
    });
    parts.push(Part {
        name: "admission memo (verdicts)",
        count: counts[0],
        bytes: size_of_drop(admit),
    });
    parts.push(Part {
        name: "pipeline settings, templates and the certificate-check cache",
        count: 1,
        bytes: size_of_drop(pipeline.config),
    });
    parts.push(Part {
        name: "Routes",
        count: counts[0],
        bytes: size_of_drop(std::mem::take(&mut snapshot.routes)),
    });
    parts.push(Part {
        name: "Services",
        count: counts[1],
        bytes: size_of_drop(std::mem::take(&mut snapshot.services)),
    });
    parts.push(Part {
        name: "EndpointSlices",
        count: counts[2],
        bytes: size_of_drop(std::mem::take(&mut snapshot.endpoint_slices)),
    });
    parts.push(Part {
        name: "rest of the snapshot",
        count: 1,
        bytes: size_of_drop(snapshot),
    });

    let mib = |b: isize| super::mib(b as f64);
    let mut out = format!(
        "{routes} Routes: {} Services, {} EndpointSlices with {endpoints} endpoints; \
         tree {files} files, {}.\n\n",
        counts[1],
        counts[2],
        mib(file_bytes as isize)
    );
    out.push_str(&format!(
        "- load: {:.2} s, heap peak {}, held after {}\n- cold pass: heap peak {}, held after {}\n\n",
        load_time,
        mib(load_peak),
        mib(after_load),
        mib(pass_peak),
        mib(after_pass),
    ));
    out.push_str("| part | objects | heap bytes | per object |\n|---|---:|---:|---:|\n");
    for part in &parts {
        let per = if part.count > 1 {
            format!("{} B", part.bytes / part.count as isize)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "| {} | {} | {} | {per} |\n",
            part.name,
            part.count,
            mib(part.bytes)
        ));
    }
    let accounted: isize = parts.iter().map(|p| p.bytes).sum();
    out.push_str(&format!(
        "| (not accounted for) | | {} | |\n",
        mib(after_pass - accounted)
    ));
    Ok(out)
}
