//! TLS termination kinds.

/// TLS termination type (`spec.tls.termination`, lower-cased). Parsed in
/// admission (case-insensitively, with the API server's messages), so it
/// has no `FromStr` here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Termination {
    Edge,
    Passthrough,
    Reencrypt,
}

impl Termination {
    pub fn as_str(self) -> &'static str {
        match self {
            Termination::Edge => "edge",
            Termination::Passthrough => "passthrough",
            Termination::Reencrypt => "reencrypt",
        }
    }
}
