//! Route status (SPEC §10): this router's entry of `status.ingress[]`.
//!
//! Two halves, one way: `desired` is pure ([`desired_ingress`],
//! [`needs_patch`], [`merged_ingress`], [`patch_body`]: verdicts and the
//! status an object holds in, our entry and the patch out; no clock, no
//! client, no tokio) and decides what our entry should be and whether the
//! API object must be written; `writer` is the async half
//! ([`StatusWriter`]) that reads the Route store ([`crate::route`]), takes
//! the time and writes. `writer` uses `desired`, never the reverse, and
//! neither uses [`crate::source`].
//!
//! # Contract
//!
//! * One entry per Route, owned by `--router-name`: `host`, `routerName`,
//!   `wildcardPolicy` (`None` when unset, as the API defaults it),
//!   `routerCanonicalHostname` (when set) and one condition `Admitted`
//!   `True`, or `False` with OpenShift's reason and admission's message.
//!   `lastTransitionTime` is kept from the existing entry unless the
//!   condition's status flips.
//! * Written only when our entry differs from what the object holds: the
//!   same verdicts give the same entry, so two replicas with the same
//!   name and configuration agree and do not flap (neither writes what
//!   the other already wrote).
//! * The write is a JSON merge patch (`application/merge-patch+json`) of
//!   the `status` subresource carrying `metadata.resourceVersion` (so the
//!   API server refuses it with `409 Conflict` if the object changed since
//!   it was read) and the whole `status.ingress` array: other routers'
//!   entries as read, in their order, ours replaced or appended. (A merge
//!   patch cannot address one array element; the resourceVersion
//!   precondition is what makes rewriting the array safe.) On 409 the
//!   Route is read again (`get`) and the entry recomputed, with backoff
//!   (50 ms doubling, with jitter), at most [`MAX_ATTEMPTS`] times.
//! * [`StatusWriter::submit`] never blocks: the writer runs in its own task
//!   and keeps only the latest batch of verdicts (a bounded queue of one;
//!   a newer batch replaces a pending one and interrupts one in progress,
//!   so each Route is written with its latest verdict). Failed writes are
//!   retried with backoff (2 s doubling to 30 s, with jitter) until a
//!   newer batch arrives. Both backoffs are `backon`'s.

mod desired;
mod writer;

pub use desired::{
    desired_entry, desired_ingress, merged_ingress, needs_patch, our_entry, patch_body,
    RouteVerdict, StatusConfig, ADMITTED,
};
pub use writer::{now_rfc3339, StatusStats, StatusWriter, FIELD_MANAGER, MAX_ATTEMPTS};
