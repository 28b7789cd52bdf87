//! HAProxy's own output, folded for the log: a worker stopping after a
//! reload prints one `Proxy <name> stopped (cumulated conns: FE: a, BE: b).`
//! warning per frontend and backend (10,000 lines for a 10,000-Route
//! tree); they are folded into one line per worker with the counts summed.
//! Every other line passes through unchanged.

/// Most lines [`summarize`] keeps.
pub const SUMMARY_LINES: usize = 5;

/// HAProxy's recent output (`lines`, oldest first) summarised for one log
/// line or error message: its last [`SUMMARY_LINES`] `[ALERT]` lines (the
/// reasons it stops), else its last lines, and how many more there were.
/// Every line was already logged as HAProxy printed it.
pub fn summarize(lines: &[String]) -> String {
    let alerts: Vec<&String> = lines.iter().filter(|l| l.contains("[ALERT]")).collect();
    let chosen: Vec<&String> = if alerts.is_empty() {
        lines.iter().collect()
    } else {
        alerts
    };
    let kept = &chosen[chosen.len().saturating_sub(SUMMARY_LINES)..];
    let mut text = kept
        .iter()
        .map(|l| l.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    if kept.len() < lines.len() {
        text.push_str(&format!(
            "\n({} of {} lines; every line was logged as HAProxy printed it)",
            kept.len(),
            lines.len()
        ));
    }
    text
}

/// One `Proxy … stopped` line, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ProxyStopped {
    worker: String,
    frontend_conns: u64,
    backend_conns: u64,
}

/// `[WARNING]  (7204) : Proxy b1 stopped (cumulated conns: FE: 0, BE: 3).`
fn parse_proxy_stopped(line: &str) -> Option<ProxyStopped> {
    let rest = line.strip_prefix("[WARNING]")?.trim_start();
    let (worker, rest) = rest.strip_prefix('(')?.split_once(')')?;
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix("Proxy ")?;
    let (_, counts) = rest.rsplit_once(" stopped (cumulated conns: FE: ")?;
    let (fe, be) = counts.strip_suffix(").")?.split_once(", BE: ")?;
    Some(ProxyStopped {
        worker: worker.to_string(),
        frontend_conns: fe.parse().ok()?,
        backend_conns: be.parse().ok()?,
    })
}

/// The stop lines of one worker seen so far.
#[derive(Debug)]
struct Pending {
    worker: String,
    proxies: usize,
    frontend_conns: u64,
    backend_conns: u64,
}

impl Pending {
    fn summary(&self) -> String {
        format!(
            "old worker ({}) stopped its {} proxies (cumulated connections: frontends {}, backends {})",
            self.worker, self.proxies, self.frontend_conns, self.backend_conns
        )
    }
}

/// What to log for a line of HAProxy output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shown {
    /// A summary of folded stop lines (info).
    Summary(String),
    /// A line as HAProxy wrote it.
    Line(String),
}

/// Folds runs of `Proxy … stopped` lines of one worker into one summary.
/// Feed every line to [`push`](Self::push); call [`flush`](Self::flush)
/// when the output pauses or ends, so a summary is never held back.
#[derive(Debug, Default)]
pub struct OutputFolder {
    pending: Option<Pending>,
}

impl OutputFolder {
    /// The lines to show now for `line` (none while a run is folded).
    pub fn push(&mut self, line: &str) -> Vec<Shown> {
        let mut shown = Vec::new();
        match parse_proxy_stopped(line) {
            Some(stop) => {
                if self
                    .pending
                    .as_ref()
                    .is_some_and(|p| p.worker != stop.worker)
                {
                    shown.extend(self.flush());
                }
                let pending = self.pending.get_or_insert(Pending {
                    worker: stop.worker,
                    proxies: 0,
                    frontend_conns: 0,
                    backend_conns: 0,
                });
                pending.proxies += 1;
                pending.frontend_conns += stop.frontend_conns;
                pending.backend_conns += stop.backend_conns;
            }
            None => {
                shown.extend(self.flush());
                shown.push(Shown::Line(line.to_string()));
            }
        }
        shown
    }

    /// Whether a run of stop lines is being folded.
    pub fn is_folding(&self) -> bool {
        self.pending.is_some()
    }

    /// The summary of the run being folded, if any.
    pub fn flush(&mut self) -> Option<Shown> {
        self.pending.take().map(|p| Shown::Summary(p.summary()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(folder: &mut OutputFolder, input: &[&str]) -> Vec<Shown> {
        let mut out: Vec<Shown> = input.iter().flat_map(|l| folder.push(l)).collect();
        out.extend(folder.flush());
        out
    }

    #[test]
    fn a_summary_keeps_the_alerts_or_the_last_lines() {
        let many: Vec<String> = (0..200)
            .map(|i| format!("[WARNING]  (1) : line {i}"))
            .collect();
        let mut with_alert = many.clone();
        with_alert.insert(
            50,
            "[ALERT]    (1) : [haproxy.main()] Cannot raise FD limit to 39917, limit is 20000."
                .into(),
        );
        let s = summarize(&with_alert);
        assert!(
            s.starts_with("[ALERT]    (1) : [haproxy.main()] Cannot raise FD limit"),
            "{s}"
        );
        assert!(
            s.ends_with("(1 of 201 lines; every line was logged as HAProxy printed it)"),
            "{s}"
        );
        let s = summarize(&many);
        assert_eq!(s.lines().count(), SUMMARY_LINES + 1, "{s}");
        assert!(s.starts_with("[WARNING]  (1) : line 195"), "{s}");
        let few: Vec<String> = vec!["[NOTICE] a".into(), "[NOTICE] b".into()];
        assert_eq!(summarize(&few), "[NOTICE] a\n[NOTICE] b");
    }

    #[test]
    fn stop_lines_of_one_worker_become_one_summary() {
        let mut folder = OutputFolder::default();
        // As HAProxy 2.6 prints a reload (seen with a three-proxy config).
        let got = lines(
            &mut folder,
            &[
                "[NOTICE]   (7201) : Reloading HAProxy",
                "[WARNING]  (7204) : Proxy f stopped (cumulated conns: FE: 5, BE: 0).",
                "[WARNING]  (7204) : Proxy b1 stopped (cumulated conns: FE: 0, BE: 3).",
                "[WARNING]  (7204) : Proxy <HTTPCLIENT> stopped (cumulated conns: FE: 0, BE: 0).",
                "[NOTICE]   (7201) : New worker (7212) forked",
                "[WARNING]  (7301) : Proxy f stopped (cumulated conns: FE: 1, BE: 0).",
                "[WARNING]  (7302) : Proxy f stopped (cumulated conns: FE: 2, BE: 0).",
            ],
        );
        assert_eq!(
            got,
            vec![
                Shown::Line("[NOTICE]   (7201) : Reloading HAProxy".into()),
                Shown::Summary(
                    "old worker (7204) stopped its 3 proxies (cumulated connections: frontends 5, backends 3)".into()
                ),
                Shown::Line("[NOTICE]   (7201) : New worker (7212) forked".into()),
                Shown::Summary(
                    "old worker (7301) stopped its 1 proxies (cumulated connections: frontends 1, backends 0)".into()
                ),
                Shown::Summary(
                    "old worker (7302) stopped its 1 proxies (cumulated connections: frontends 2, backends 0)".into()
                ),
            ]
        );
        assert!(!folder.is_folding());
    }

    #[test]
    fn other_warnings_and_odd_stop_lines_pass_through() {
        let mut folder = OutputFolder::default();
        for line in [
            "[WARNING]  (7201) : Former worker (7204) exited with code 0 (Exit)",
            "[WARNING]  (7204) : Proxy f stopped (cumulated conns: FE: x, BE: 0).",
            "Proxy f stopped (cumulated conns: FE: 0, BE: 0).",
            "[ALERT]    (7201) : Proxy f stopped (cumulated conns: FE: 0, BE: 0).",
        ] {
            assert_eq!(folder.push(line), vec![Shown::Line(line.into())]);
        }
    }
}
