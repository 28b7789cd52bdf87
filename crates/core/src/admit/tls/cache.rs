//! Results of the certificate checks, kept by content hash.
//!
//! Parsing and verifying a Route's PEM material is by far the most
//! expensive part of admission, and on every pass but the first the
//! material is the same. The check is a pure function of its inputs (the
//! host, wildcard flag, termination, insecure policy and the four PEM
//! fields) apart from the expiry warnings, which depend on "now": so the
//! cache keeps the clock-independent [`Analysis`] (or the rejection) under
//! the SHA-256 of those inputs, and the warnings are worded for the "now"
//! of each call. Results are the same with and without the cache (tested
//! over every case of `tests.rs`).
//!
//! Only checks with PEM material are cached: without any, the check does no
//! OpenSSL work. The cache belongs to its caller (the render engine keeps
//! one per configuration; no process-global state): results never depend
//! on it, only their cost does. It is bounded: past [`MAX_ENTRIES`]
//! entries, those not used since the previous sweep are dropped (a
//! second-chance sweep); if every entry is in use, all are.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use openssl::sha::Sha256;

use super::{analyze, present, Analysis, TlsCheck};
use crate::admit::route::RouteHost;
use crate::admit::validation::ValidatedTls;
use crate::admit::verdict::Rejection;

/// Most entries kept (an entry holds the normalized PEM of one Route, a
/// few KiB).
pub const MAX_ENTRIES: usize = 1 << 17;

type Outcome = Result<Analysis, Rejection>;

struct Entry {
    outcome: Outcome,
    used: bool,
}

/// Results of [`super::check_tls_at`] kept by the SHA-256 of their inputs.
/// Shared by reference between threads (admission checks Routes in
/// parallel); checks run without the lock held.
#[derive(Default)]
pub struct TlsCheckCache {
    entries: Mutex<HashMap<[u8; 32], Entry>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl fmt::Debug for TlsCheckCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsCheckCache")
            .field("stats", &self.stats())
            .finish()
    }
}

/// Counters of a [`TlsCheckCache`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Checks answered from the cache.
    pub hits: u64,
    /// Checks that parsed and verified the material (and were stored).
    pub misses: u64,
    /// Entries held now.
    pub entries: usize,
}

impl TlsCheckCache {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The counters (cumulative since the cache was made).
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.entries().len(),
        }
    }

    /// Drop every entry (measurements of cold admission in a warm process).
    pub fn clear(&self) {
        self.entries().clear();
    }

    /// [`super::check_tls_at`], from the cache when the same inputs were
    /// checked before.
    pub fn check(
        &self,
        host: &RouteHost,
        tls: &ValidatedTls,
        now_unix: i64,
    ) -> Result<TlsCheck, Rejection> {
        let has_material = [
            &tls.certificate,
            &tls.key,
            &tls.ca_certificate,
            &tls.destination_ca_certificate,
        ]
        .into_iter()
        .any(|field| present(field).is_some());
        if !has_material {
            return analyze(host, tls).map(|analysis| analysis.finish(now_unix));
        }
        let key = key(host, tls);
        if let Some(entry) = self.entries().get_mut(&key) {
            entry.used = true;
            self.hits.fetch_add(1, Ordering::Relaxed);
            return match &entry.outcome {
                Ok(analysis) => Ok(analysis.finish(now_unix)),
                Err(rejection) => Err(rejection.clone()),
            };
        }
        // Checked without the lock held: admissions on other threads proceed.
        let outcome = analyze(host, tls);
        self.misses.fetch_add(1, Ordering::Relaxed);
        let result = match &outcome {
            Ok(analysis) => Ok(analysis.finish(now_unix)),
            Err(rejection) => Err(rejection.clone()),
        };
        let mut entries = self.entries();
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, entry| entry.used);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            for entry in entries.values_mut() {
                entry.used = false;
            }
        }
        entries.insert(
            key,
            Entry {
                outcome,
                used: false,
            },
        );
        result
    }
}

/// SHA-256 of every input of the check, each length-prefixed (fields are
/// hashed as given, so "absent" and "blank" stay distinct inputs). The
/// host and wildcard flag are inputs only when `certificate` is given.
fn key(host: &RouteHost, tls: &ValidatedTls) -> [u8; 32] {
    fn put(hasher: &mut Sha256, bytes: &[u8]) {
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    }
    fn put_opt(hasher: &mut Sha256, field: &Option<std::sync::Arc<str>>) {
        match field {
            None => hasher.update(&[0]),
            Some(text) => {
                hasher.update(&[1]);
                put(hasher, text.as_bytes());
            }
        }
    }
    let mut hasher = Sha256::new();
    put(&mut hasher, b"routegen tls check v1");
    // The host only matters for a certificate of the Route's own (the
    // coverage warning): Routes that share a destination CA and bring no
    // certificate share one entry.
    if tls.certificate.is_some() {
        hasher.update(&[1]);
        put(&mut hasher, host.host.as_bytes());
        hasher.update(&[u8::from(host.wildcard)]);
    } else {
        hasher.update(&[0]);
    }
    put(&mut hasher, tls.termination.as_str().as_bytes());
    put(&mut hasher, format!("{:?}", tls.insecure_policy).as_bytes());
    put_opt(&mut hasher, &tls.certificate);
    put_opt(&mut hasher, &tls.key);
    put_opt(&mut hasher, &tls.ca_certificate);
    put_opt(&mut hasher, &tls.destination_ca_certificate);
    hasher.finish()
}
