//! Fixtures for the tests of this crate and the crates above it (feature
//! `testkit`).

use crate::output::{OutputFile, OutputTree};

/// A private key block (not a real key: only its armour matters to
/// redaction).
pub const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\nsecretsecret\n-----END PRIVATE KEY-----\n";
/// A certificate block (armour only).
pub const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n";

/// A small tree: `haproxy.cfg`, `maps/http.map` (public) and
/// `certs/ns:web.pem` ([`KEY`] + [`CERT`], secret).
pub fn sample_tree() -> OutputTree {
    let mut t = OutputTree::new();
    t.insert(
        "haproxy.cfg".into(),
        OutputFile::public("global\n  maxconn 10\n"),
    );
    t.insert(
        "maps/http.map".into(),
        OutputFile::public("a.example.com be_http:a:a\n"),
    );
    t.insert(
        "certs/ns:web.pem".into(),
        OutputFile::secret(format!("{KEY}{CERT}")),
    );
    t
}
