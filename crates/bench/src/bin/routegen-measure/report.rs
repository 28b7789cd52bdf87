//! The Markdown table: both modes side by side, the targets of issue 15
//! and the peers' published figures (BENCHMARKS.md,
//! `../shared/research/reload-free.md` §4).

use std::fmt::Write as _;
use std::time::Duration;

use super::{Applied, Args, Figures, ModeResult};

fn percentile(lat: &[Duration], p: f64) -> Option<Duration> {
    if lat.is_empty() {
        return None;
    }
    let mut sorted = lat.to_vec();
    sorted.sort();
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1e3;
    if v < 10.0 {
        format!("{v:.1} ms")
    } else if v < 10_000.0 {
        format!("{v:.0} ms")
    } else {
        format!("{:.1} s", v / 1e3)
    }
}

fn median(mut v: Vec<u64>) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    Some(v[v.len() / 2])
}

fn p50_p99(lat: &[Duration], minus: Duration) -> String {
    match (percentile(lat, 50.0), percentile(lat, 99.0)) {
        (Some(a), Some(b)) => format!(
            "{} / {}",
            ms(a.saturating_sub(minus)),
            ms(b.saturating_sub(minus))
        ),
        _ => "–".into(),
    }
}

fn count(f: &Figures) -> String {
    if f.lat.len() == f.planned {
        format!("{}", f.lat.len())
    } else {
        format!("{} of {}", f.lat.len(), f.planned)
    }
}

/// `duration_ms` median (load / render / validation medians) of the
/// applied lines.
fn pass(applied: &[Applied]) -> String {
    let m = |f: fn(&Applied) -> u64| {
        median(applied.iter().map(f).collect())
            .map(|v| v.to_string())
            .unwrap_or_else(|| "–".into())
    };
    if applied.is_empty() {
        return "–".into();
    }
    format!(
        "{} ms ({} / {} / {})",
        m(|a| a.duration_ms),
        m(|a| a.load_ms),
        m(|a| a.render_ms),
        m(|a| a.validation_ms)
    )
}

fn live(applied: &[Applied]) -> String {
    let l: Vec<(u64, u64)> = applied.iter().filter_map(|a| a.live).collect();
    if l.is_empty() {
        return "none".into();
    }
    format!(
        "{} passes: {} commands, {} µs (medians)",
        l.len(),
        median(l.iter().map(|x| x.0).collect()).unwrap_or(0),
        median(l.iter().map(|x| x.1).collect()).unwrap_or(0)
    )
}

fn counted(c: &std::collections::BTreeMap<String, f64>) -> String {
    if c.is_empty() {
        return "–".into();
    }
    c.iter()
        .map(|(k, v)| {
            let k = k
                .replace("routegen_changes_total", "changes")
                .replace("routegen_reload_reasons_total", "reload reason")
                .replace('"', "");
            format!("{k} {v:.0}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn table(args: &Args, debounce: Duration, results: &[ModeResult], total: Duration) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "\nroutegen run --spawn-haproxy, {} Routes (one file each: 10% with 2 endpoints + round robin, 10% edge with their own EC certificate, the rest plain HTTP with 1 endpoint), --debounce {}, --min-reload-interval 1s (default), --maxconn {}; p99 is the nearest rank (the maximum below 100 samples)\n",
        args.routes, args.debounce, args.maxconn
    );
    let on = results.iter().find(|r| r.mode == "on");
    let off = results.iter().find(|r| r.mode == "off");
    let _ = writeln!(
        t,
        "| figure | runtime API on | off (reload only) | target (on) | peers (published) |"
    );
    let _ = writeln!(t, "|---|---:|---:|---|---|");
    let mut row = |name: &str, f: &dyn Fn(&ModeResult) -> String, target: &str, peers: &str| {
        let cell = |r: Option<&ModeResult>| r.map(f).unwrap_or_else(|| "–".into());
        let _ = writeln!(
            t,
            "| {name} | {} | {} | {target} | {peers} |",
            cell(on),
            cell(off)
        );
    };
    row(
        "start → ready (first tree validated, HAProxy up)",
        &|r| ms(r.ready),
        "",
        "",
    );
    row(
        "**endpoint change → served**, p50 / p99",
        &|r| p50_p99(&r.endpoint.lat, Duration::ZERO),
        "",
        "",
    );
    row(
        &format!("— minus the debounce ({})", args.debounce),
        &|r| p50_p99(&r.endpoint.lat, debounce),
        "p50 ≤ 20 ms, p99 ≤ 100 ms",
        "haproxy-ingress, HAProxy Ingress (haproxytech), ingress-nginx: live, no figure published; OpenShift router: reload (DCM off by default)",
    );
    row(
        "— endpoint added / removed, p50",
        &|r| {
            format!(
                "{} / {}",
                percentile(&r.endpoint_add, 50.0).map_or("–".into(), ms),
                percentile(&r.endpoint_remove, 50.0).map_or("–".into(), ms)
            )
        },
        "",
        "",
    );
    row(
        "— changes / **reloads** during them",
        &|r| format!("{} / {:.0}", count(&r.endpoint), r.endpoint.reloads),
        "0 reloads over 1,000",
        "",
    );
    row(
        "— routegen pass: duration (load / render / validation), medians",
        &|r| pass(&r.endpoint.applied),
        "",
        "",
    );
    row(
        "— runtime API per pass",
        &|r| live(&r.endpoint.applied),
        "",
        "",
    );
    row(
        "**certificate rotation → presented** (SNI), p50 / p99",
        &|r| p50_p99(&r.cert.lat, Duration::ZERO),
        "p99 ≤ 200 ms",
        "OpenShift router: reload per certificate",
    );
    row(
        "— rotations / reloads",
        &|r| format!("{} / {:.0}", count(&r.cert), r.cert.reloads),
        "0 reloads",
        "",
    );
    row(
        "— routegen pass, medians",
        &|r| pass(&r.cert.applied),
        "",
        "",
    );
    row(
        "**new Route → served** (200), p50 / p99",
        &|r| p50_p99(&r.route_add.lat, Duration::ZERO),
        "p99 ≤ 500 ms",
        "gateway-api-bench (create → first 200): Agentgateway 10–30 ms, Istio 120–300 ms, Envoy Gateway ~600 ms and NGINX Gateway Fabric ~800 ms at 3,000 routes",
    );
    row(
        "— Routes / reloads",
        &|r| format!("{} / {:.0}", count(&r.route_add), r.route_add.reloads),
        "",
        "",
    );
    row(
        "— routegen pass, medians",
        &|r| pass(&r.route_add.applied),
        "",
        "",
    );
    row(
        "**Route removed → 503**, p50 / p99",
        &|r| p50_p99(&r.route_remove.lat, Duration::ZERO),
        "p99 ≤ 200 ms",
        "",
    );
    row(
        "— Routes / reloads",
        &|r| format!("{} / {:.0}", count(&r.route_remove), r.route_remove.reloads),
        "",
        "",
    );
    row(
        "**one Route change needing a reload** (timeout annotation): validated tree (pass duration_ms, median; of which validation_ms)",
        &|r| {
            format!(
                "{} ms ({} ms)",
                median(r.reload.applied.iter().map(|a| a.duration_ms).collect())
                    .map_or("–".into(), |v| v.to_string()),
                median(r.reload.applied.iter().map(|a| a.validation_ms).collect())
                    .map_or("–".into(), |v| v.to_string())
            )
        },
        "≤ 500 ms",
        "haproxy-ingress ~8 s per reload at 5k backends; OpenShift writeConfig 3.7 s at 13k Routes; ingress-nginx reloads 12 s at 100k hosts",
    );
    row(
        "— write → reload confirmed, p50 / p99 (changes)",
        &|r| {
            format!(
                "{} ({})",
                p50_p99(&r.reload.lat, Duration::ZERO),
                count(&r.reload)
            )
        },
        "",
        "",
    );
    row(
        &format!(
            "**mixed churn** ({} changes at {}/s): changes made, seconds (+ settling)",
            args.churn, args.churn_rate
        ),
        &|r| {
            format!(
                "{} in {:.0} s (+{:.0} s)",
                r.churn.done,
                r.churn.took.as_secs_f64(),
                r.churn.settle.as_secs_f64()
            )
        },
        "",
        "",
    );
    row(
        "— **reloads**",
        &|r| format!("{:.0}", r.churn.reloads),
        "≤ 25",
        "",
    );
    row(
        "— **failed requests** / requests (3 clients)",
        &|r| format!("{} / {}", r.churn.failed, r.churn.ok + r.churn.failed),
        "0",
        "gateway-api-bench: Envoy Gateway 14,808 HTTP 503 in its test; Envoy Gateway and NGINX 5xx during route changes",
    );
    row(
        "— **max old workers alive** (show proc every 100 ms)",
        &|r| format!("{}", r.churn.max_old_workers),
        "≤ 2",
        "",
    );
    row(
        "— routegen passes during the churn: count, median duration",
        &|r| {
            format!(
                "{}, {} ms",
                r.churn.applied.len(),
                median(r.churn.applied.iter().map(|a| a.duration_ms).collect())
                    .map_or("–".into(), |v| v.to_string())
            )
        },
        "",
        "",
    );
    row(
        "routegen RSS idle / peak (VmHWM)",
        &|r| {
            format!(
                "{:.0} / {:.0} MiB",
                r.rss_idle_kib as f64 / 1024.0,
                r.rss_hwm_kib as f64 / 1024.0
            )
        },
        "",
        "",
    );
    row(
        "time for this mode",
        &|r| format!("{:.0} s", r.took.as_secs_f64()),
        "",
        "",
    );

    let _ = writeln!(t, "\nCounted by routegen (/metrics deltas):\n");
    for r in results {
        for (name, f) in [
            ("endpoint changes", &r.endpoint),
            ("certificate rotations", &r.cert),
            ("Routes added", &r.route_add),
            ("Routes removed", &r.route_remove),
            ("reload-needing changes", &r.reload),
        ] {
            let _ = writeln!(
                t,
                "- {} / {name}: {}; runtime API: {}",
                r.mode,
                counted(&f.counted),
                live(&f.applied)
            );
            for e in f.errors.iter().take(3) {
                let _ = writeln!(t, "  - error: {e}");
            }
        }
        let _ = writeln!(
            t,
            "- {} / churn: {}; runtime API: {}; keep-alive requests retried on a closed idle connection: {}",
            r.mode,
            counted(&r.churn.counted),
            live(&r.churn.applied),
            r.churn.retried
        );
        for e in r.churn.examples.iter().take(5) {
            let _ = writeln!(t, "  - {e}");
        }
    }
    let _ = writeln!(t, "\ntotal measurement time {:.0} s", total.as_secs_f64());
    t
}
