//! The Secrets Routes name in `spec.tls.externalCertificate`: one
//! field-selected watch per referenced Secret (`metadata.name=<name>` in
//! the Route's namespace), shared by every Route that names it, never a
//! Secret watch of a whole namespace or cluster. A namespace owner grants
//! the router `get`/`list`/`watch` on that one Secret with a Role and
//! RoleBinding (docs/kube.md); `deploy/` grants no Secret access.
//!
//! # Contract
//!
//! * The watched set follows the Routes: after every change of the Route
//!   store the referenced keys are computed again; a new key starts a
//!   watch, a key no Route names any more stops its watch and is forgotten.
//! * Per key: `Pending` until the watch's first list, then `Present` (the
//!   Secret, `data` only) or `Absent`; a 403 makes it `Forbidden` (the
//!   watch keeps retrying with kube's backoff, so a Role created later is
//!   picked up). Other errors keep the last state.
//! * Every state change bumps the source's generation; a pending key holds
//!   change notifications back for at most [`PENDING_GRACE`], so a Route is
//!   not rejected as "not found" merely because its Secret's first list
//!   has not arrived yet.
//! * Secret contents never reach a log line.

use std::collections::{BTreeMap, BTreeSet};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::runtime::reflector::Store;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};
use tokio::task::JoinHandle;

use routegen_core::model::{ObjectKey, Snapshot};

use super::sync::SyncState;
use crate::route::WatchedRoute;

const LOG_TARGET: &str = "routegen_k8s::source";

/// How long a newly referenced Secret may hold change notifications back.
pub(super) const PENDING_GRACE: Duration = Duration::from_secs(10);

/// What is known of one referenced Secret.
#[derive(Clone, Debug)]
enum SecretState {
    Pending,
    Present(Arc<Secret>),
    Absent,
    Forbidden,
}

struct Entry {
    state: Arc<Mutex<SecretState>>,
    task: JoinHandle<()>,
}

/// The watches of referenced Secrets.
pub(super) struct SecretWatches {
    entries: Mutex<BTreeMap<ObjectKey, Entry>>,
}

impl Drop for SecretWatches {
    fn drop(&mut self) {
        for entry in lock(&self.entries).values() {
            entry.task.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The Secrets `routes` name: `spec.tls.externalCertificate.name` in the
/// Route's namespace.
pub(super) fn referenced(routes: &Store<WatchedRoute>) -> BTreeSet<ObjectKey> {
    routes
        .state()
        .iter()
        .filter_map(|r| {
            let route = r.decoded.as_ref().ok()?;
            let name = route
                .spec
                .tls
                .as_ref()?
                .external_certificate
                .as_ref()?
                .get("name")?
                .as_str()?;
            let ns = route.metadata.namespace.as_deref()?;
            (!name.is_empty()).then(|| ObjectKey::new(ns, name))
        })
        .collect()
}

impl SecretWatches {
    pub(super) fn new() -> SecretWatches {
        SecretWatches {
            entries: Mutex::new(BTreeMap::new()),
        }
    }

    /// Start watches for new keys of `wanted`, stop those of keys not in it.
    pub(super) fn reconcile(
        &self,
        wanted: &BTreeSet<ObjectKey>,
        client: &Client,
        state: &Arc<SyncState>,
    ) {
        let mut entries = lock(&self.entries);
        let before = entries.len();
        entries.retain(|key, entry| {
            let keep = wanted.contains(key);
            if !keep {
                entry.task.abort();
                // Leaving `Pending` happens once, under the slot's lock
                // (here, in the watch or in its grace timer).
                let mut slot = lock(&entry.state);
                if matches!(*slot, SecretState::Pending) {
                    *slot = SecretState::Absent;
                    state.pending_secrets.fetch_sub(1, Ordering::SeqCst);
                }
                drop(slot);
                tracing::info!(target: LOG_TARGET, secret = %key, "no Route names this Secret any more: watch stopped");
            }
            keep
        });
        let mut changed = entries.len() != before;
        for key in wanted {
            if entries.contains_key(key) {
                continue;
            }
            let secret_state = Arc::new(Mutex::new(SecretState::Pending));
            state.pending_secrets.fetch_add(1, Ordering::SeqCst);
            let task = tokio::spawn(watch_one(
                Api::namespaced(client.clone(), &key.namespace),
                key.clone(),
                secret_state.clone(),
                state.clone(),
            ));
            tracing::info!(target: LOG_TARGET, secret = %key, "a Route names this Secret: watching it (fieldSelector metadata.name)");
            entries.insert(
                key.clone(),
                Entry {
                    state: secret_state,
                    task,
                },
            );
            changed = true;
        }
        drop(entries);
        if changed {
            state.bump();
        }
    }

    /// Put what is known into `snapshot` (`secrets`, `forbidden_secrets`).
    pub(super) fn fill(&self, snapshot: &mut Snapshot) {
        for (key, entry) in lock(&self.entries).iter() {
            match &*lock(&entry.state) {
                SecretState::Present(secret) => snapshot.secrets.push(secret.clone()),
                SecretState::Forbidden => snapshot.forbidden_secrets.push(key.clone()),
                SecretState::Pending | SecretState::Absent => {}
            }
        }
    }
}

/// The next item of a stream.
async fn next_item<S>(mut stream: Pin<&mut S>) -> Option<S::Item>
where
    S: WatchStreamExt + ?Sized,
{
    std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await
}

/// Only what admission reads of a Secret: metadata names, type, data.
fn trimmed(secret: Secret) -> Arc<Secret> {
    let mut out = Secret {
        type_: secret.type_,
        data: secret.data,
        ..Secret::default()
    };
    out.metadata.name = secret.metadata.name;
    out.metadata.namespace = secret.metadata.namespace;
    if let Some(string_data) = secret.string_data {
        let data = out.data.get_or_insert_with(Default::default);
        for (k, v) in string_data {
            data.insert(k, k8s_openapi::ByteString(v.into_bytes()));
        }
    }
    Arc::new(out)
}

/// Watch one Secret by name; keep `slot` current.
async fn watch_one(
    api: Api<Secret>,
    key: ObjectKey,
    slot: Arc<Mutex<SecretState>>,
    state: Arc<SyncState>,
) {
    let set = |new: SecretState| {
        let mut current = lock(&slot);
        let was_pending = matches!(*current, SecretState::Pending);
        let same = match (&*current, &new) {
            (SecretState::Present(a), SecretState::Present(b)) => a == b,
            (SecretState::Absent, SecretState::Absent)
            | (SecretState::Forbidden, SecretState::Forbidden) => true,
            _ => false,
        };
        if !same {
            *current = new;
            drop(current);
            if was_pending {
                state.pending_secrets.fetch_sub(1, Ordering::SeqCst);
            }
            state.bump();
        }
    };
    // A Secret whose first answer is slow stops holding changes back.
    let grace = {
        let slot = slot.clone();
        let state = state.clone();
        tokio::spawn(async move {
            tokio::time::sleep(PENDING_GRACE).await;
            let mut current = lock(&slot);
            if matches!(*current, SecretState::Pending) {
                *current = SecretState::Absent;
                drop(current);
                state.pending_secrets.fetch_sub(1, Ordering::SeqCst);
                state.bump();
            }
        })
    };
    let config = watcher::Config::default().fields(&format!("metadata.name={}", key.name));
    let stream = watcher::watcher(api, config).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut listing: Option<Arc<Secret>> = None;
    let mut current: Option<Arc<Secret>> = None;
    while let Some(item) = next_item(stream.as_mut()).await {
        match item {
            Ok(Event::Init) => listing = None,
            Ok(Event::InitApply(secret)) => listing = Some(trimmed(secret)),
            Ok(Event::InitDone) => {
                current = listing.take();
                set(match &current {
                    Some(secret) => SecretState::Present(secret.clone()),
                    None => SecretState::Absent,
                });
            }
            Ok(Event::Apply(secret)) => {
                current = Some(trimmed(secret));
                set(SecretState::Present(current.clone().expect("just set")));
            }
            Ok(Event::Delete(_)) => {
                current = None;
                set(SecretState::Absent);
            }
            Err(error) => {
                if is_forbidden(&error) {
                    tracing::warn!(target: LOG_TARGET, secret = %key, "403: the router may not read this Secret (a Role and RoleBinding in its namespace must grant get, list and watch on it)");
                    set(SecretState::Forbidden);
                } else {
                    tracing::warn!(target: LOG_TARGET, secret = %key, error = %error, "Secret watch failed; retrying with backoff");
                }
            }
        }
    }
    let _ = current;
    grace.abort();
}

fn is_forbidden(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => s.code == 403,
        watcher::Error::WatchError(s) => s.code == 403,
        _ => false,
    }
}
