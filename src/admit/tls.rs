//! Step 4 of admission: TLS material (`ExtendedValidationFailed`).

use super::route::{RouteHost, RouteTls};
use super::validation::ValidatedTls;
use super::verdict::Rejection;

/// A Route's TLS settings after the certificate checks, plus warnings.
#[derive(Clone, Debug)]
pub struct TlsCheck {
    pub tls: RouteTls,
    pub warnings: Vec<String>,
}

/// Check one Route's TLS material.
pub fn check_tls(host: &RouteHost, tls: &ValidatedTls) -> Result<TlsCheck, Rejection> {
    let _ = (host, tls);
    unimplemented!("being written")
}
