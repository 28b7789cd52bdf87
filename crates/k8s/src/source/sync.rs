//! What the watcher tasks share with the source and its listeners: which
//! kinds have completed their first list, their last errors, and the
//! change counter ([`SyncState`]).
//!
//! # Contract
//!
//! * `synced[kind]` only ever turns true (a relist swaps a complete list
//!   in); `all_synced` turns true once every kind is synced.
//! * `generation` increases by one per relevant change
//!   ([`SyncState::bump`]); listeners compare it with what they saw last.
//! * `counts[kind]` only grow ([`KindCounts`]); they feed
//!   [`WatchStats`], which `/metrics` reads at each scrape.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

/// The kinds watched, for sync tracking and messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Routes = 0,
    Services = 1,
    EndpointSlices = 2,
    Namespaces = 3,
}

/// Every kind, in the order of `SyncState`'s arrays.
pub(super) const KINDS: [Kind; 4] = [
    Kind::Routes,
    Kind::Services,
    Kind::EndpointSlices,
    Kind::Namespaces,
];

impl Kind {
    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Routes => "routes",
            Kind::Services => "services",
            Kind::EndpointSlices => "endpointslices",
            Kind::Namespaces => "namespaces",
        }
    }
}

/// Sync flags and the change counter, shared by the watcher tasks.
#[derive(Debug)]
pub(super) struct SyncState {
    pub(super) generation: watch::Sender<u64>,
    /// Per kind: first list complete. Kinds not watched start true.
    pub(super) synced: [AtomicBool; 4],
    pub(super) all_synced: AtomicBool,
    /// Per kind: the last watcher error since the last good event.
    pub(super) errors: Mutex<[Option<String>; 4]>,
    /// Referenced Secrets whose first answer has not arrived yet (see
    /// `secrets.rs`): change notifications wait for them.
    pub(super) pending_secrets: AtomicUsize,
    /// Per kind: what its watcher has seen so far.
    pub(super) counts: [KindCounts; 4],
}

/// What one watcher has seen (only ever grows; read by [`SyncState::stats`]).
#[derive(Debug, Default)]
pub(super) struct KindCounts {
    /// Objects added or changed (`Apply`), relevant or not.
    pub(super) applied: AtomicU64,
    /// Objects deleted.
    pub(super) deleted: AtomicU64,
    /// Complete lists swapped in (`InitDone`): the first, then each relist.
    pub(super) lists: AtomicU64,
    /// Errors of the watch (each retried with kube's backoff).
    pub(super) errors: AtomicU64,
    /// When the last complete list was swapped in, ms since the Unix epoch
    /// (0: none yet).
    pub(super) last_list_ms: AtomicU64,
}

/// One watched kind, as its watcher counted it (see
/// [`KubeSource::watch_stats`](super::KubeSource::watch_stats)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchStats {
    /// `routes`, `services`, `endpointslices` or `namespaces`.
    pub kind: &'static str,
    /// Its first list is complete.
    pub synced: bool,
    /// Objects added or changed.
    pub applied: u64,
    /// Objects deleted.
    pub deleted: u64,
    /// Complete lists: the first, then one per relist (a watch restarted
    /// from scratch, e.g. after `410 Gone`).
    pub lists: u64,
    /// Watch errors (each retried with backoff).
    pub errors: u64,
    /// When the last complete list was swapped in.
    pub last_list: Option<SystemTime>,
}

impl SyncState {
    pub(super) fn bump(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    pub(super) fn mark_synced(&self, kind: Kind) {
        self.synced[kind as usize].store(true, Ordering::SeqCst);
        if self.synced.iter().all(|s| s.load(Ordering::SeqCst)) {
            self.all_synced.store(true, Ordering::SeqCst);
        }
    }

    /// A complete list of `kind` was swapped in (counted, timed).
    pub(super) fn listed(&self, kind: Kind) {
        let counts = &self.counts[kind as usize];
        counts.lists.fetch_add(1, Ordering::Relaxed);
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        counts.last_list_ms.store(ms, Ordering::Relaxed);
        self.mark_synced(kind);
    }

    /// What the watcher of `kind` has seen so far.
    pub(super) fn stats(&self, kind: Kind) -> WatchStats {
        let c = &self.counts[kind as usize];
        let ms = c.last_list_ms.load(Ordering::Relaxed);
        WatchStats {
            kind: kind.name(),
            synced: self.synced[kind as usize].load(Ordering::SeqCst),
            applied: c.applied.load(Ordering::Relaxed),
            deleted: c.deleted.load(Ordering::Relaxed),
            lists: c.lists.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            last_list: (ms > 0).then(|| UNIX_EPOCH + Duration::from_millis(ms)),
        }
    }

    pub(super) fn set_error(&self, kind: Kind, error: Option<String>) {
        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        errors[kind as usize] = error;
    }
}
