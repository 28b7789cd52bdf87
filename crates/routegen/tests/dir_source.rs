//! `dir:` source against real files: every filesystem change pattern a
//! manifest directory sees in practice produces a small number of signals,
//! and irrelevant noise produces none. Every wait is bounded.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

use routegen_core::testkit::RouteBuilder;
use routegen_host::source::dir::{DirChanges, DirWatcher};
use routegen_host::source::files::DirLoader;

const DEBOUNCE: Duration = Duration::from_millis(100);
/// Longest a test waits for an expected signal.
const EXPECT: Duration = Duration::from_secs(4);
/// Quiet time after which "no more signals" is concluded.
const QUIET: Duration = Duration::from_millis(700);

/// The manifest of Route `t/<name>` for `<name>.example.com` to Service
/// `<name>` (the testkit's builder; only the name varies in these tests).
fn route(name: &str) -> String {
    RouteBuilder::new("t", name)
        .host(&format!("{name}.example.com"))
        .to(name, None)
        .to_yaml()
}

fn start(dir: &Path) -> DirWatcher {
    DirWatcher::start(dir, DEBOUNCE).expect("watch starts")
}

/// Wait for one signal; false on timeout.
async fn signalled(w: &mut DirWatcher, within: Duration) -> bool {
    tokio::time::timeout(within, w.changed()).await.is_ok()
}

/// Count signals until none arrives for `QUIET` (bounded to 50 and by a
/// hard deadline).
async fn count_signals(w: &mut DirWatcher, first_within: Duration) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    let mut wait = first_within;
    while n < 50 && Instant::now() < deadline {
        if !signalled(w, wait).await {
            break;
        }
        n += 1;
        wait = QUIET;
    }
    n
}

/// Give the watch a moment so test setup writes are not counted.
async fn settle(w: &mut DirWatcher) {
    let _ = count_signals(w, QUIET).await;
}

/// Route names as `load_paths` sees them, sorted.
fn load(dir: &Path) -> Vec<String> {
    let loaded = routegen_host::source::files::load_paths(&[dir.to_path_buf()], "default").unwrap();
    let mut names: Vec<String> = loaded
        .snapshot
        .routes
        .iter()
        .map(|r| r.metadata.name.clone().unwrap_or_default())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn create_modify_delete() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = start(tmp.path());
    assert!(
        !signalled(&mut w, QUIET).await,
        "no signal without a change"
    );

    fs::write(tmp.path().join("a.yaml"), route("a")).unwrap();
    let n = count_signals(&mut w, EXPECT).await;
    assert!((1..=2).contains(&n), "create: {n} signals");
    assert_eq!(load(tmp.path()), ["a"]);

    fs::write(tmp.path().join("a.yaml"), route("b")).unwrap();
    let n = count_signals(&mut w, EXPECT).await;
    assert!((1..=2).contains(&n), "modify: {n} signals");
    assert_eq!(load(tmp.path()), ["b"]);

    fs::remove_file(tmp.path().join("a.yaml")).unwrap();
    let n = count_signals(&mut w, EXPECT).await;
    assert!((1..=2).contains(&n), "delete: {n} signals");
    assert!(load(tmp.path()).is_empty());
}

#[tokio::test]
async fn json_yml_and_subdirectories() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = start(tmp.path());
    fs::write(tmp.path().join("a.json"), "{}").unwrap();
    assert!(signalled(&mut w, EXPECT).await, "json");
    settle(&mut w).await;

    fs::create_dir(tmp.path().join("sub")).unwrap();
    assert!(signalled(&mut w, EXPECT).await, "new directory");
    settle(&mut w).await;

    fs::write(tmp.path().join("sub/b.yml"), route("b")).unwrap();
    assert!(signalled(&mut w, EXPECT).await, "file in new subdirectory");
    settle(&mut w).await;

    fs::rename(tmp.path().join("sub"), tmp.path().join("sub2")).unwrap();
    assert!(signalled(&mut w, EXPECT).await, "directory renamed");
    settle(&mut w).await;

    fs::remove_file(tmp.path().join("sub2/b.yml")).unwrap();
    fs::remove_dir(tmp.path().join("sub2")).unwrap();
    assert!(signalled(&mut w, EXPECT).await, "directory removed");
}

#[tokio::test]
async fn rename_in_and_out() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("a.yaml"), route("a")).unwrap();
    let mut w = start(tmp.path());

    fs::rename(tmp.path().join("a.yaml"), tmp.path().join("b.yaml")).unwrap();
    let n = count_signals(&mut w, EXPECT).await;
    assert!((1..=2).contains(&n), "rename: {n}");

    // Renamed to a name load_paths ignores: still a change (it vanished).
    fs::rename(
        tmp.path().join("b.yaml"),
        tmp.path().join("b.yaml.disabled"),
    )
    .unwrap();
    assert!(
        signalled(&mut w, EXPECT).await,
        "renamed to an ignored name"
    );
    settle(&mut w).await;

    // Moved out of and into the tree.
    fs::write(outside.path().join("c.yaml"), route("c")).unwrap();
    fs::rename(outside.path().join("c.yaml"), tmp.path().join("c.yaml")).unwrap();
    assert!(signalled(&mut w, EXPECT).await, "moved in");
    settle(&mut w).await;
    fs::rename(tmp.path().join("c.yaml"), outside.path().join("c.yaml")).unwrap();
    assert!(signalled(&mut w, EXPECT).await, "moved out");
}

#[tokio::test]
async fn noise_is_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = start(tmp.path());
    fs::write(tmp.path().join("notes.txt"), "x").unwrap();
    fs::write(tmp.path().join("a.yaml~"), "x").unwrap();
    fs::write(tmp.path().join(".a.yaml.swp"), "x").unwrap();
    fs::write(tmp.path().join("4913"), "").unwrap();
    fs::remove_file(tmp.path().join("4913")).unwrap();
    fs::create_dir(tmp.path().join(".git")).unwrap();
    fs::write(tmp.path().join(".git/index.yaml"), "x").unwrap();
    fs::remove_file(tmp.path().join("notes.txt")).unwrap();
    fs::write(tmp.path().join("a.yaml~"), "y").unwrap();
    assert!(!signalled(&mut w, Duration::from_secs(1)).await);
}

#[tokio::test]
async fn reading_is_not_a_change() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("a.yaml"), route("a")).unwrap();
    let mut w = start(tmp.path());
    for _ in 0..3 {
        assert_eq!(load(tmp.path()), ["a"]);
    }
    assert!(!signalled(&mut w, Duration::from_secs(1)).await);
}

#[tokio::test]
async fn editor_save_patterns() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    fs::write(d.join("a.yaml"), route("a")).unwrap();
    let mut w = start(d);

    // Atomic save: write a hidden temp file, rename it over.
    fs::write(d.join(".a.yaml.tmp1234"), route("b")).unwrap();
    fs::rename(d.join(".a.yaml.tmp1234"), d.join("a.yaml")).unwrap();
    let n = count_signals(&mut w, EXPECT).await;
    assert!((1..=2).contains(&n), "atomic save: {n}");
    assert_eq!(load(d), ["b"]);

    // vim (backupcopy=no): probe 4913, swap file, move original to a~,
    // write the new file, drop the backup.
    fs::write(d.join(".a.yaml.swp"), "swap").unwrap();
    fs::write(d.join("4913"), "").unwrap();
    fs::remove_file(d.join("4913")).unwrap();
    fs::rename(d.join("a.yaml"), d.join("a.yaml~")).unwrap();
    fs::write(d.join("a.yaml"), route("c")).unwrap();
    fs::remove_file(d.join("a.yaml~")).unwrap();
    fs::write(d.join(".a.yaml.swp"), "swap2").unwrap();
    fs::remove_file(d.join(".a.yaml.swp")).unwrap();
    let n = count_signals(&mut w, EXPECT).await;
    assert!((1..=2).contains(&n), "vim save: {n}");
    assert_eq!(load(d), ["c"]);

    // Visible temp name (some tools): tmp has no manifest extension.
    fs::write(d.join("a.yaml.part"), route("d")).unwrap();
    fs::rename(d.join("a.yaml.part"), d.join("a.yaml")).unwrap();
    let n = count_signals(&mut w, EXPECT).await;
    assert!((1..=2).contains(&n), "visible temp: {n}");
    assert_eq!(load(d), ["d"]);
}

#[tokio::test]
async fn in_place_writer_holds_the_signal_until_close() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("a.yaml");
    let mut w = start(tmp.path());
    let mut f = fs::File::create(&path).unwrap();
    f.write_all(b"apiVersion: route.openshift.io/v1\n").unwrap();
    f.flush().unwrap();
    // Open for longer than the debounce: no signal while incomplete.
    assert!(
        !signalled(&mut w, DEBOUNCE * 4).await,
        "signalled mid-write"
    );
    f.write_all(route("a").as_bytes()).unwrap();
    drop(f);
    assert!(signalled(&mut w, EXPECT).await, "closed");
}

#[tokio::test]
async fn configmap_data_swap() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // kubelet layout: ..<ts>/file, ..data -> ..<ts>, file -> ..data/file
    fs::create_dir(d.join("..2026_01_01_00_00_00.1")).unwrap();
    fs::write(d.join("..2026_01_01_00_00_00.1/routes.yaml"), route("old")).unwrap();
    symlink("..2026_01_01_00_00_00.1", d.join("..data")).unwrap();
    symlink("..data/routes.yaml", d.join("routes.yaml")).unwrap();
    assert_eq!(load(d), ["old"]);
    let mut w = start(d);
    assert!(!signalled(&mut w, QUIET).await);

    // Update: new timestamped dir, ..data_tmp link, rename over ..data,
    // remove the old dir.
    fs::create_dir(d.join("..2026_01_01_00_01_00.2")).unwrap();
    fs::write(d.join("..2026_01_01_00_01_00.2/routes.yaml"), route("new")).unwrap();
    symlink("..2026_01_01_00_01_00.2", d.join("..data_tmp")).unwrap();
    fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
    fs::remove_dir_all(d.join("..2026_01_01_00_00_00.1")).unwrap();
    let n = count_signals(&mut w, EXPECT).await;
    assert!((1..=3).contains(&n), "configmap swap: {n}");
    assert_eq!(load(d), ["new"]);

    // A swap alone (prepared earlier, outside the debounce window) still
    // signals: only `..data` changes.
    fs::create_dir(d.join("..2026_01_01_00_02_00.3")).unwrap();
    fs::write(
        d.join("..2026_01_01_00_02_00.3/routes.yaml"),
        route("newer"),
    )
    .unwrap();
    settle(&mut w).await;
    symlink("..2026_01_01_00_02_00.3", d.join("..data_tmp")).unwrap();
    fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
    assert!(signalled(&mut w, EXPECT).await, "bare ..data swap");
    assert_eq!(load(d), ["newer"]);
}

#[tokio::test]
async fn burst_of_writes_coalesces() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = start(tmp.path());
    for i in 0..100 {
        fs::write(
            tmp.path().join(format!("r{}.yaml", i % 10)),
            route(&format!("r{i}")),
        )
        .unwrap();
    }
    let n = count_signals(&mut w, EXPECT).await;
    assert!((1..=3).contains(&n), "100 writes gave {n} signals");
}

#[tokio::test]
async fn constant_stream_still_signals_within_max_delay() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("a.yaml");
    let mut w = DirWatcher::start_with(tmp.path(), DEBOUNCE, Duration::from_millis(500)).unwrap();
    let writer = std::thread::spawn(move || {
        // A write every 30 ms for 1.5 s: never quiet for the debounce.
        for i in 0..50 {
            fs::write(&path, route(&format!("r{i}"))).unwrap();
            std::thread::sleep(Duration::from_millis(30));
        }
    });
    let started = Instant::now();
    assert!(
        signalled(&mut w, Duration::from_secs(3)).await,
        "no signal under a constant stream"
    );
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "{:?}",
        started.elapsed()
    );
    writer.join().unwrap();
}

#[tokio::test]
async fn directory_created_later_and_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("manifests");
    let mut w = start(&d);
    assert!(!signalled(&mut w, Duration::from_millis(300)).await);

    fs::create_dir(&d).unwrap();
    fs::write(d.join("a.yaml"), route("a")).unwrap();
    assert!(signalled(&mut w, EXPECT).await, "directory appeared");
    settle(&mut w).await;
    fs::write(d.join("b.yaml"), route("b")).unwrap();
    assert!(
        signalled(&mut w, EXPECT).await,
        "watching the new directory"
    );
    settle(&mut w).await;

    // Replaced wholesale: delete and recreate.
    fs::remove_dir_all(&d).unwrap();
    assert!(signalled(&mut w, EXPECT).await, "directory removed");
    fs::create_dir(&d).unwrap();
    fs::write(d.join("c.yaml"), route("c")).unwrap();
    assert!(signalled(&mut w, EXPECT).await, "directory recreated");
    settle(&mut w).await;
    fs::write(d.join("d.yaml"), route("d")).unwrap();
    assert!(
        signalled(&mut w, EXPECT).await,
        "watching the recreated directory"
    );
    assert_eq!(load(&d), ["c", "d"]);
}

#[tokio::test]
async fn a_file_is_not_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("a.yaml");
    fs::write(&f, "").unwrap();
    let err = DirWatcher::start(&f, DEBOUNCE).unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
}

#[tokio::test]
async fn changes_while_nobody_waits_are_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = start(tmp.path());
    fs::write(tmp.path().join("a.yaml"), route("a")).unwrap();
    // Busy elsewhere (an apply) for longer than the debounce.
    tokio::time::sleep(DEBOUNCE * 3).await;
    assert!(
        signalled(&mut w, Duration::from_millis(200)).await,
        "pending change lost"
    );
    // Cancelled waits lose nothing either.
    fs::write(tmp.path().join("b.yaml"), route("b")).unwrap();
    let _ = tokio::time::timeout(Duration::from_millis(10), w.changed()).await;
    assert!(
        signalled(&mut w, EXPECT).await,
        "change lost by a cancelled wait"
    );
}

/// Route `t/<name>` for `host`.
fn route_at(name: &str, host: &str) -> String {
    RouteBuilder::new("t", name)
        .host(host)
        .to(name, None)
        .to_yaml()
}

/// Every burst until none arrives for `QUIET`, merged (bounded).
async fn changes_until_quiet(w: &mut DirWatcher) -> DirChanges {
    let mut all = DirChanges::none();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut wait = EXPECT;
    while Instant::now() < deadline {
        match tokio::time::timeout(wait, w.changed()).await {
            Ok(Some(changes)) => all.merge(changes),
            _ => break,
        }
        wait = QUIET;
    }
    all
}

fn write(d: &Path, name: &str, text: String) {
    fs::write(d.join(name), text).unwrap();
}

fn rename(d: &Path, from: &str, to: &str) {
    fs::rename(d.join(from), d.join(to)).unwrap();
}

/// What a burst says changed is enough to read: after every pattern, a
/// loader told only the bursts' changes gives what a one-shot load of the
/// directory gives, and the common edits (in place, renamed into place,
/// created, removed, moved) name just their files, so the loader patches
/// its last result.
#[tokio::test]
async fn what_a_burst_names_is_enough_to_read() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    fs::write(d.join("a.yaml"), route("a")).unwrap();
    fs::write(d.join("b.yaml"), route("b")).unwrap();
    let mut w = start(d);
    let mut loader = DirLoader::new(vec![d.to_path_buf()], "default");
    loader.load().unwrap();
    // (what, the change, the files the bursts name (`None`: Unknown),
    // whether the loader patches)
    type Step = (
        &'static str,
        fn(&Path),
        Option<&'static [&'static str]>,
        bool,
    );
    let steps: [Step; 12] = [
        (
            "written in place",
            |d| write(d, "a.yaml", route_at("a", "a2.example.com")),
            Some(&["a.yaml"]),
            true,
        ),
        (
            "renamed into place from a hidden temporary file",
            |d| {
                write(d, ".b.yaml.tmp", route_at("b", "b2.example.com"));
                rename(d, ".b.yaml.tmp", "b.yaml");
            },
            Some(&["b.yaml"]),
            true,
        ),
        (
            "a new file",
            |d| write(d, "c.yaml", route("c")),
            Some(&["c.yaml"]),
            true,
        ),
        (
            "a file removed",
            |d| fs::remove_file(d.join("c.yaml")).unwrap(),
            Some(&["c.yaml"]),
            true,
        ),
        (
            "a subdirectory with a file",
            |d| {
                fs::create_dir(d.join("sub")).unwrap();
                write(d, "sub/d.yaml", route("d"));
            },
            None,
            false,
        ),
        (
            "a file renamed",
            |d| rename(d, "a.yaml", "e.yaml"),
            Some(&["a.yaml", "e.yaml"]),
            true,
        ),
        (
            "a file moved into a subdirectory",
            |d| rename(d, "b.yaml", "sub/b.yaml"),
            Some(&["b.yaml", "sub/b.yaml"]),
            true,
        ),
        (
            "a directory renamed",
            |d| rename(d, "sub", "sub2"),
            None,
            false,
        ),
        (
            "a directory named like a manifest, with a file",
            |d| {
                fs::create_dir(d.join("dir.yaml")).unwrap();
                write(d, "dir.yaml/f.yaml", route("f"));
            },
            None,
            false,
        ),
        // Named like a file: the loader sees it listed none there.
        (
            "… renamed away",
            |d| rename(d, "dir.yaml", ".hidden"),
            Some(&["dir.yaml"]),
            false,
        ),
        (
            "written in place in a subdirectory",
            |d| write(d, "sub2/d.yaml", route_at("d", "d2.example.com")),
            Some(&["sub2/d.yaml"]),
            true,
        ),
        (
            "noise and an edit",
            |d| {
                write(d, "notes.txt", "x".into());
                write(d, ".e.yaml.swp", "x".into());
                write(d, "e.yaml", route_at("a", "a3.example.com"));
            },
            Some(&["e.yaml"]),
            true,
        ),
    ];
    for (what, change, named, patched) in steps {
        change(d);
        let changes = changes_until_quiet(&mut w).await;
        let expected = match named {
            Some(names) => DirChanges::Files(names.iter().map(|n| d.join(n)).collect()),
            None => DirChanges::Unknown,
        };
        assert_eq!(changes, expected, "{what}");
        let loaded = loader.load_changed(&changes).unwrap();
        assert_eq!(loader.patched(), patched, "{what}");
        let fresh =
            routegen_host::source::files::load_paths(&[d.to_path_buf()], "default").unwrap();
        assert_eq!(
            format!("{:?}", loaded.snapshot),
            format!("{:?}", fresh.snapshot),
            "{what}"
        );
        assert_eq!(loaded.warnings, fresh.warnings, "{what}");
    }
}
