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

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use tokio::sync::watch;

/// The kinds watched, for sync tracking and messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Routes = 0,
    Services = 1,
    EndpointSlices = 2,
    Namespaces = 3,
}

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

    pub(super) fn set_error(&self, kind: Kind, error: Option<String>) {
        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        errors[kind as usize] = error;
    }
}
