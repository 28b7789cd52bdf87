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
//! OpenSSL work. The cache is process-wide (a memo table, invisible to
//! callers: no result depends on it) and bounded: past
//! [`MAX_ENTRIES`] entries, those not used since the previous sweep are
//! dropped (a second-chance sweep); if every entry is in use, all are.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

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

#[derive(Default)]
struct Cache {
    entries: HashMap<[u8; 32], Entry>,
}

static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);
static MISSES: AtomicU64 = AtomicU64::new(0);

fn cache() -> std::sync::MutexGuard<'static, Cache> {
    CACHE
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Counters of the process-wide certificate check cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Checks answered from the cache.
    pub hits: u64,
    /// Checks that parsed and verified the material (and were stored).
    pub misses: u64,
    /// Entries held now.
    pub entries: usize,
}

/// The cache's counters (cumulative since the process started).
pub fn stats() -> CacheStats {
    CacheStats {
        hits: HITS.load(Ordering::Relaxed),
        misses: MISSES.load(Ordering::Relaxed),
        entries: cache().entries.len(),
    }
}

/// Drop every entry (measurements of cold admission in a warm process).
pub fn clear() {
    cache().entries.clear();
}

/// [`super::check_tls_at`]: from the cache when the same inputs were
/// checked before.
pub(super) fn check_cached(
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
    {
        let mut cache = cache();
        if let Some(entry) = cache.entries.get_mut(&key) {
            entry.used = true;
            HITS.fetch_add(1, Ordering::Relaxed);
            return match &entry.outcome {
                Ok(analysis) => Ok(analysis.finish(now_unix)),
                Err(rejection) => Err(rejection.clone()),
            };
        }
    }
    // Checked without the lock held: admissions on other threads proceed.
    let outcome = analyze(host, tls);
    MISSES.fetch_add(1, Ordering::Relaxed);
    let result = match &outcome {
        Ok(analysis) => Ok(analysis.finish(now_unix)),
        Err(rejection) => Err(rejection.clone()),
    };
    let mut cache = cache();
    if cache.entries.len() >= MAX_ENTRIES {
        cache.entries.retain(|_, entry| entry.used);
        if cache.entries.len() >= MAX_ENTRIES {
            cache.entries.clear();
        }
        for entry in cache.entries.values_mut() {
            entry.used = false;
        }
    }
    cache.entries.insert(
        key,
        Entry {
            outcome,
            used: false,
        },
    );
    result
}

/// SHA-256 of every input of the check, each length-prefixed (fields are
/// hashed as given, so "absent" and "blank" stay distinct inputs). The
/// host and wildcard flag are inputs only when `certificate` is given.
fn key(host: &RouteHost, tls: &ValidatedTls) -> [u8; 32] {
    fn put(hasher: &mut Sha256, bytes: &[u8]) {
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    }
    fn put_opt(hasher: &mut Sha256, field: &Option<String>) {
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
