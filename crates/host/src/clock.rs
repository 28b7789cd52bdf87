//! The wall clock, read here and passed into the pure core.

/// The system clock in seconds since the Unix epoch (0 if before it). The
/// core's admission takes "now" as an argument (only certificate validity
/// warnings depend on it); callers read it here.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
