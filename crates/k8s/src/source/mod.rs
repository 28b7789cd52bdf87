//! The Kubernetes API source (`--source kube`): Routes, Services,
//! EndpointSlices and (with `--namespace-selector`) Namespaces, watched with
//! kube-rs [`watcher`]s feeding [`reflector`] stores (Routes, Namespaces)
//! or caches of the model's compact types (Services, EndpointSlices:
//! `drive::Cache`, converted as objects arrive, so the full objects are
//! never held).
//!
//! # Contract
//!
//! * **One watcher per kind**, each a `watcher(..).default_backoff()`
//!   stream driven into its store by its own task: paginated initial list
//!   (`limit`/`continue`), then a watch from the list's `resourceVersion`
//!   with bookmarks; a watch that ends is resumed from the last
//!   `resourceVersion` seen; `410 Gone` (an expired `resourceVersion`)
//!   makes the watcher list again; any error is retried with kube's default
//!   exponential backoff (0.8 s doubling to 30 s, with jitter). None of this
//!   is hand-rolled.
//! * **Atomic lists.** A (re)list is buffered (by the reflector, or by the
//!   cache alike) and swapped into its store whole at `InitDone`, so a snapshot never holds half of a
//!   list: the initial Routes are decided together (admission sorts by
//!   age), never Route by Route.
//! * **Synced.** [`KubeSource::is_synced`] turns true once *every* watcher
//!   has completed its first list, and stays true (a later relist swaps a
//!   complete list in; until then the previous one is served).
//!   [`Changes::changed`] resolves only after that.
//! * **Change notifications.** Every event that can change what routegen
//!   renders bumps a generation counter; [`Changes::changed`] resolves once
//!   per burst (coalescing; optional `debounce`), is cancel-safe, and never
//!   loses a change. Events that cannot change the output are not
//!   signalled: a Route whose status alone changed (our own status writes
//!   included), any edit of a Service (only its presence is kept), an
//!   EndpointSlice edit of fields the model does not keep (the cache keeps
//!   the object it holds), a Namespace that still matches the selector.
//! * **API server gone.** The stores keep the last objects they had:
//!   [`KubeSource::snapshot`] keeps returning the last good state while
//!   the watchers retry, and they resume (or relist) when it comes back.
//! * **Selectors.** `--route-selector` and `--route-field-selector` go into
//!   the Route list/watch. `--namespace-selector` is a label selector on the
//!   Namespace watch; a Route is in the snapshot while its namespace is in
//!   that store, so a namespace whose labels stop (or start) matching drops
//!   (or adds) its Routes. `--namespace` restricts every watch to one
//!   namespace.
//! * **Secrets of external certificates.** Each Secret a Route names in
//!   `spec.tls.externalCertificate` gets its own field-selected watch
//!   (`metadata.name=<name>` in the Route's namespace), shared by the Routes
//!   naming it and stopped when none does (`secrets`); a 403 is reported to
//!   admission, which rejects only the Routes naming that Secret.
//! * **Lenient Routes.** A Route that does not decode is kept by name and
//!   rejected by admission (see [`route`]), instead of failing the list.
//!
//! # Layout
//!
//! * `config`: the flags ([`KubeArgs`]), what they resolve to
//!   ([`KubeSourceConfig`]) and the API [`client`].
//! * `watch`: the running source ([`KubeSource`]) and its listener
//!   ([`Changes`]); `drive` (one watcher task) and `sync` (what the tasks
//!   share) below it.
//! * `run`: [`KubeRun`] bundles the source, its change listener and the
//!   status writer ([`crate::status`]) for the run loop. It is the only
//!   part of the source that uses the status writer; the status writer
//!   uses nothing of the source (it reads the Route store through
//!   [`crate::route`]), so the dependency goes one way:
//!   `route` ← `status` ← `source`.
//!
//! [`watcher`]: kube::runtime::watcher()
//! [`reflector`]: kube::runtime::reflector()

mod config;
mod drive;
mod run;
mod secrets;
mod sync;
mod watch;

pub use crate::route::{self, WatchedRoute};
pub use config::{
    client, in_cluster, ClientError, KubeArgs, KubeSourceConfig, HELP_HEADING_SOURCE,
    HELP_HEADING_STATUS,
};
pub use run::KubeRun;
pub use sync::WatchStats;
pub use watch::{Changes, KubeSource};
