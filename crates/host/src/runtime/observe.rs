//! What a running HAProxy serves, read over its stats socket and normalised
//! so that two processes can be compared: one updated at runtime and one
//! started fresh from the files those updates were also written to must be
//! equal.
//!
//! Compared:
//! - **servers** (`show servers state`, format version 1, columns found by
//!   their header names): per backend and server name, `srv_id`, address,
//!   port, admin state reduced to ready / drain / maintenance, and the user
//!   weight (`srv_uweight`). Every backend with servers is kept (one
//!   without servers has no line in `show servers state`, so it is absent).
//! - **maps** named by the caller (`show map <file>`): the (key, value)
//!   entries, sorted; duplicates kept (`add map` of a present key adds one).
//! - **certificates** (`show ssl cert`, then `show ssl cert <file>`): per
//!   file name, the leaf's `Serial:` and `SHA1 FingerPrint:`. An open
//!   transaction is listed as `*<file>` and compared like a file.
//! - **crt-list** named by the caller (`show ssl crt-list -n <list>`): its
//!   lines with the `:<line number>` after the certificate dropped and NUL
//!   bytes removed (HAProxy 2.6 prints `[alpn h2\0]`), sorted. HAProxy
//!   appends runtime-added lines at the end, so a file written in another
//!   order serves the same list in another order; SNI selection does not
//!   depend on line order except between overlapping filters, which
//!   routegen does not write.
//! - **CA files** (`show ssl ca-file`, then `show ssl ca-file <file>`): per
//!   name, the certificate count and the sorted SHA1 fingerprints;
//!   `@system-ca` (the system store) is skipped.
//!
//! Not compared: operational state (up/down) and check state, which depend
//! on health-check timing; `srv_iweight` (the weight a server started
//! with: a runtime `set server weight` changes only the user weight); ids
//! of backends (the same files give the same ones); idle timers,
//! counters and anything from `show stat`; certificate status (`Used` /
//! `Unused`), which follows from the crt-list.

use std::collections::BTreeMap;

use super::{RuntimeError, StatsSocket};

/// `srv_admin_state` bits of HAProxy 2.6 (`SRV_ADMF_*`) that mean
/// maintenance: forced (0x01), inherited from a tracked server (0x02), set
/// by `disabled` in the configuration (0x04), set by DNS resolution (0x20).
const ADMIN_MAINT: u32 = 0x01 | 0x02 | 0x04 | 0x20;
/// Bits that mean drain: forced (0x08), inherited (0x10).
const ADMIN_DRAIN: u32 = 0x08 | 0x10;

/// What a running HAProxy serves, as far as routegen changes it at runtime.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Backend name → server name → state.
    pub servers: BTreeMap<String, BTreeMap<String, ServerState>>,
    /// Map file name → sorted (key, value) entries.
    pub maps: BTreeMap<String, Vec<(String, String)>>,
    /// Certificate file name → identity of its leaf certificate.
    pub certs: BTreeMap<String, CertIdentity>,
    /// The normalised, sorted lines of the crt-list asked for.
    pub crt_list: Option<Vec<String>>,
    /// CA file name → its certificates.
    pub ca_files: BTreeMap<String, CaFile>,
}

/// One server as `show servers state` reports it, less what timing decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerState {
    /// `srv_id`: the configured `id`, or the one HAProxy picked.
    pub id: u32,
    /// `srv_addr` as printed (`-` when an FQDN is not resolved yet).
    pub address: String,
    /// `srv_port`.
    pub port: u16,
    /// `srv_admin_state`, reduced.
    pub admin: AdminState,
    /// `srv_uweight`.
    pub weight: u32,
}

/// A server's administrative state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminState {
    /// Neither in maintenance nor draining.
    Ready,
    /// Draining (takes no new sessions except persistent ones).
    Drain,
    /// In maintenance (`disabled`, `set server ... state maint`, or a
    /// server added at runtime and not yet enabled).
    Maint,
}

impl AdminState {
    fn from_bits(bits: u32) -> AdminState {
        if bits & ADMIN_MAINT != 0 {
            AdminState::Maint
        } else if bits & ADMIN_DRAIN != 0 {
            AdminState::Drain
        } else {
            AdminState::Ready
        }
    }
}

/// What identifies a loaded certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertIdentity {
    /// `Serial:` (none for an empty store made by `new ssl cert`).
    pub serial: Option<String>,
    /// `SHA1 FingerPrint:`.
    pub sha1: Option<String>,
}

/// A CA file's certificates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaFile {
    /// The count `show ssl ca-file` prints.
    pub certificates: usize,
    /// SHA1 fingerprints of the certificates, sorted.
    pub sha1: Vec<String>,
}

/// Reads servers, the `maps` named, certificates, the crt-list named and CA
/// files from `sock`.
///
/// Errors: I/O errors of the socket; [`RuntimeError::Refused`] when HAProxy
/// does not know a map or crt-list; [`RuntimeError::Parse`] when an answer
/// has an unexpected shape (e.g. a `show servers state` version other than
/// 1).
pub fn observe(
    sock: &mut StatsSocket,
    maps: &[&str],
    crt_list: Option<&str>,
) -> Result<Observed, RuntimeError> {
    let mut observed = Observed {
        servers: parse_servers_state(&sock.command("show servers state")?)?,
        ..Observed::default()
    };
    for &map in maps {
        let command = format!("show map {map}");
        let answer = sock.command(&command)?;
        observed
            .maps
            .insert(map.to_string(), parse_map(command, answer)?);
    }
    for name in list_names(&sock.command("show ssl cert")?) {
        let answer = sock.command(&format!("show ssl cert {name}"))?;
        observed.certs.insert(name, parse_cert_identity(&answer));
    }
    if let Some(list) = crt_list {
        let command = format!("show ssl crt-list -n {list}");
        let answer = sock.command(&command)?;
        observed.crt_list = Some(parse_crt_list(command, answer)?);
    }
    for name in list_names(&sock.command("show ssl ca-file")?) {
        let (name, certificates) = parse_ca_file_entry(&name)?;
        if name == "@system-ca" {
            continue;
        }
        let answer = sock.command(&format!("show ssl ca-file {name}"))?;
        let mut sha1 = fingerprints(&answer)
            .map(str::to_string)
            .collect::<Vec<_>>();
        sha1.sort();
        observed
            .ca_files
            .insert(name.to_string(), CaFile { certificates, sha1 });
    }
    Ok(observed)
}

/// `show servers state`: a version line, a `# `-header naming the columns,
/// one line per server.
fn parse_servers_state(
    answer: &str,
) -> Result<BTreeMap<String, BTreeMap<String, ServerState>>, RuntimeError> {
    let parse_err = |reason: String| RuntimeError::Parse {
        command: "show servers state".into(),
        reason,
    };
    let mut lines = answer.lines().filter(|l| !l.trim().is_empty());
    match lines.next().map(str::trim) {
        Some("1") => {}
        other => {
            return Err(parse_err(format!(
                "expected format version 1, got {other:?}"
            )))
        }
    }
    let header: Vec<&str> = match lines.next().and_then(|l| l.strip_prefix('#')) {
        Some(h) => h.split_whitespace().collect(),
        None => return Err(parse_err("no `#` header line".into())),
    };
    let column = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| parse_err(format!("no column `{name}`")))
    };
    let [backend, server, id, addr, port, admin, weight] = [
        "be_name",
        "srv_name",
        "srv_id",
        "srv_addr",
        "srv_port",
        "srv_admin_state",
        "srv_uweight",
    ]
    .map(column);
    let (backend, server, id, addr, port, admin, weight) =
        (backend?, server?, id?, addr?, port?, admin?, weight?);

    let mut servers: BTreeMap<String, BTreeMap<String, ServerState>> = BTreeMap::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() != header.len() {
            return Err(parse_err(format!(
                "{} fields where the header has {}: {line:?}",
                fields.len(),
                header.len()
            )));
        }
        let number = |i: usize| {
            fields[i]
                .parse::<u32>()
                .map_err(|_| parse_err(format!("`{}` is not a number in {line:?}", fields[i])))
        };
        let state = ServerState {
            id: number(id)?,
            address: fields[addr].to_string(),
            port: u16::try_from(number(port)?)
                .map_err(|_| parse_err(format!("port out of range in {line:?}")))?,
            admin: AdminState::from_bits(number(admin)?),
            weight: number(weight)?,
        };
        servers
            .entry(fields[backend].to_string())
            .or_default()
            .insert(fields[server].to_string(), state);
    }
    Ok(servers)
}

/// `show map <file>`: `<pointer> <key> <value>` lines; anything else is
/// HAProxy's error.
fn parse_map(command: String, answer: String) -> Result<Vec<(String, String)>, RuntimeError> {
    let mut entries = Vec::new();
    for line in answer.lines().filter(|l| !l.is_empty()) {
        let mut parts = line.splitn(3, ' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(ptr), Some(key), value) if ptr.starts_with("0x") => {
                entries.push((key.to_string(), value.unwrap_or("").to_string()));
            }
            _ => return Err(RuntimeError::Refused { command, answer }),
        }
    }
    entries.sort();
    Ok(entries)
}

/// The names of `show ssl cert` / `show ssl ca-file`: every line that is
/// not a `#` section header (`# transaction`, `# filename`).
fn list_names(answer: &str) -> Vec<String> {
    answer
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// The first `Serial:` and `SHA1 FingerPrint:` of `show ssl cert <file>`
/// (the leaf; chain certificates are listed after it without these).
fn parse_cert_identity(answer: &str) -> CertIdentity {
    let field = |name: &str| {
        answer
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
    };
    CertIdentity {
        serial: field("Serial:"),
        sha1: field("SHA1 FingerPrint:"),
    }
}

fn fingerprints(answer: &str) -> impl Iterator<Item = &str> {
    answer
        .lines()
        .filter_map(|l| l.strip_prefix("SHA1 FingerPrint:"))
        .map(str::trim)
}

/// `show ssl crt-list -n <list>`: a `# <list>` line, then
/// `<cert>:<line> [<ssl options>] <sni filters>` lines.
fn parse_crt_list(command: String, answer: String) -> Result<Vec<String>, RuntimeError> {
    let mut lines = answer.lines().filter(|l| !l.trim().is_empty());
    if !lines.next().is_some_and(|first| first.starts_with('#')) {
        return Err(RuntimeError::Refused { command, answer });
    }
    let mut normalised: Vec<String> = lines
        .map(|line| {
            let line = line.replace('\0', "");
            let mut words = line.split_whitespace();
            let cert = words.next().map(strip_line_number).unwrap_or_default();
            std::iter::once(cert)
                .chain(words)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    normalised.sort();
    Ok(normalised)
}

/// `certs/a.pem:12` → `certs/a.pem`.
fn strip_line_number(cert: &str) -> &str {
    match cert.rsplit_once(':') {
        Some((name, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => cert,
    }
}

/// `<name> - <N> certificate(s)`.
fn parse_ca_file_entry(line: &str) -> Result<(&str, usize), RuntimeError> {
    let parsed = line.rsplit_once(" - ").and_then(|(name, rest)| {
        let count = rest.split_whitespace().next()?.parse().ok()?;
        Some((name, count))
    });
    parsed.ok_or_else(|| RuntimeError::Parse {
        command: "show ssl ca-file".into(),
        reason: format!("unexpected line {line:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATE: &str = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n3 be_a 1 s1 127.0.0.1 2 0 20 10 17 1 0 2 0 0 0 1 - 19001 - 0 0 - - 0\n3 be_a 2 s2 127.0.0.1 0 5 1 1 17 1 0 0 8 0 0 1 - 19002 - 0 0 - - 0\n";

    #[test]
    fn servers_state_columns_are_found_by_name() {
        let servers = parse_servers_state(STATE).unwrap();
        let s1 = &servers["be_a"]["s1"];
        assert_eq!(
            (s1.id, s1.port, s1.weight, s1.admin),
            (1, 19001, 20, AdminState::Ready)
        );
        assert_eq!(servers["be_a"]["s2"].admin, AdminState::Maint);
        assert!(parse_servers_state(&STATE.replacen('1', "2", 1)).is_err());
    }

    #[test]
    fn crt_list_lines_lose_line_numbers_and_nuls() {
        let answer = "# l.txt\ncerts/w.pem:2 [alpn h2\0] w.example.com\ncerts/a.pem:1\n";
        let lines = parse_crt_list("c".into(), answer.into()).unwrap();
        assert_eq!(
            lines,
            ["certs/a.pem", "certs/w.pem [alpn h2] w.example.com"]
        );
    }

    #[test]
    fn map_errors_are_refusals() {
        let answer = "Unknown map identifier. Please use #<id> or <file>.\n".to_string();
        assert!(matches!(
            parse_map("c".into(), answer),
            Err(RuntimeError::Refused { .. })
        ));
        let entries = parse_map(
            "c".into(),
            "0x1 b.example.com be b\n0x2 a.example.com x\n".into(),
        )
        .unwrap();
        assert_eq!(entries[0], ("a.example.com".into(), "x".into()));
        assert_eq!(entries[1].1, "be b");
    }
}
