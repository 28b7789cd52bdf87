//! The standard process metrics (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_virtual_memory_bytes`,
//! `process_open_fds`, `process_max_fds`, `process_start_time_seconds`,
//! `process_threads`), read from `/proc/self` at each scrape, with the
//! names and meanings of Prometheus' client libraries.
//!
//! Hand-read because no maintained collector works with this
//! `prometheus-client` (0.26): `kubert-prometheus-process`, the one built
//! for it, requires 0.23. Linux only: elsewhere (or without `/proc`) the
//! families are left out.

use std::fs;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

/// The process, as `/proc/self` shows it.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct ProcessStats {
    /// User and system CPU time.
    pub(super) cpu_seconds: f64,
    pub(super) resident_bytes: u64,
    pub(super) virtual_bytes: u64,
    pub(super) threads: u64,
    /// Unix time.
    pub(super) start_time_seconds: f64,
    pub(super) open_fds: Option<u64>,
    /// The soft `nofile` limit (`ulimit -n`); `None` when unlimited.
    pub(super) max_fds: Option<u64>,
}

/// What the kernel counts in: clock ticks per second and the page size.
#[derive(Clone, Copy, Debug)]
pub(super) struct Units {
    pub(super) ticks_per_second: f64,
    pub(super) page_size: u64,
    /// `btime` of `/proc/stat`: when the machine booted, Unix seconds.
    pub(super) boot_time: f64,
}

impl ProcessStats {
    /// Read `/proc/self` now; `None` where it cannot be read.
    pub(super) fn read() -> Option<ProcessStats> {
        let stat = fs::read_to_string("/proc/self/stat").ok()?;
        let units = Units::read()?;
        let mut stats = parse_stat(&stat, units)?;
        stats.open_fds = fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as u64);
        stats.max_fds = fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|l| parse_max_open_files(&l));
        Some(stats)
    }
}

impl Units {
    fn read() -> Option<Units> {
        use nix::unistd::{sysconf, SysconfVar};
        let ticks = sysconf(SysconfVar::CLK_TCK).ok()??;
        let page = sysconf(SysconfVar::PAGE_SIZE).ok()??;
        let boot_time = fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("btime ")?.trim().parse::<f64>().ok())?;
        Some(Units {
            ticks_per_second: ticks as f64,
            page_size: u64::try_from(page).ok()?,
            boot_time,
        })
    }
}

/// `/proc/self/stat` (proc(5)): the fields after the command name, which
/// is in parentheses and may hold spaces and parentheses itself.
pub(super) fn parse_stat(stat: &str, units: Units) -> Option<ProcessStats> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // `fields[0]` is field 3 (state) of proc(5).
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    let ticks = |n: usize| field(n).map(|t| t as f64 / units.ticks_per_second);
    Some(ProcessStats {
        cpu_seconds: ticks(14)? + ticks(15)?,
        threads: field(20)?,
        start_time_seconds: units.boot_time + ticks(22)?,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)?.saturating_mul(units.page_size),
        open_fds: None,
        max_fds: None,
    })
}

/// The soft limit of `Max open files` in `/proc/self/limits`.
pub(super) fn parse_max_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Encodes [`ProcessStats::read`] at each scrape.
#[derive(Debug)]
pub(super) struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(p) = ProcessStats::read() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(p.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu",
            "Total user and system CPU time spent in seconds",
            Some(&Unit::Seconds),
            cpu.metric_type(),
        )?)?;
        let gauges: [(&str, &str, Option<Unit>, Option<f64>); 6] = [
            (
                "process_resident_memory",
                "Resident memory size in bytes",
                Some(Unit::Bytes),
                Some(p.resident_bytes as f64),
            ),
            (
                "process_virtual_memory",
                "Virtual memory size in bytes",
                Some(Unit::Bytes),
                Some(p.virtual_bytes as f64),
            ),
            (
                "process_start_time",
                "Start time of the process since the Unix epoch in seconds",
                Some(Unit::Seconds),
                Some(p.start_time_seconds),
            ),
            (
                "process_threads",
                "Number of OS threads in the process",
                None,
                Some(p.threads as f64),
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                None,
                p.open_fds.map(|n| n as f64),
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors (the soft limit)",
                None,
                p.max_fds.map(|n| n as f64),
            ),
        ];
        for (name, help, unit, value) in gauges {
            let Some(value) = value else { continue };
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(
                name,
                help,
                unit.as_ref(),
                gauge.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNITS: Units = Units {
        ticks_per_second: 100.0,
        page_size: 4096,
        boot_time: 1_700_000_000.0,
    };

    #[test]
    fn stat_fields_after_a_name_with_spaces_and_parentheses() {
        let stat = "4242 (rout (e) gen) S 1 4242 4242 0 -1 4194560 9000 0 0 0 250 75 0 0 20 0 7 0 12345 987654321 2560 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let p = parse_stat(stat, UNITS).unwrap();
        assert_eq!(p.cpu_seconds, 3.25);
        assert_eq!(p.threads, 7);
        assert_eq!(p.start_time_seconds, 1_700_000_123.45);
        assert_eq!(p.virtual_bytes, 987_654_321);
        assert_eq!(p.resident_bytes, 2560 * 4096);
        assert_eq!(parse_stat("4242 (cut", UNITS), None);
    }

    #[test]
    fn max_open_files_is_the_soft_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \nMax cpu time              unlimited            unlimited            seconds   \nMax open files            1024                 524288               files     \n";
        assert_eq!(parse_max_open_files(limits), Some(1024));
        assert_eq!(
            parse_max_open_files("Max open files unlimited unlimited files"),
            None
        );
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn this_process_reads_sanely() {
        let p = ProcessStats::read().expect("/proc/self");
        assert!(p.resident_bytes > 1 << 20, "{p:?}");
        assert!(p.threads >= 1, "{p:?}");
        assert!(p.open_fds.is_some_and(|n| n >= 3), "{p:?}");
        assert!(p.max_fds.is_some_and(|n| n >= p.open_fds.unwrap()), "{p:?}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            p.start_time_seconds <= now + 1.0 && p.start_time_seconds > now - 86_400.0 * 365.0,
            "{p:?}"
        );
    }
}
