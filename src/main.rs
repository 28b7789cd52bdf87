//! `routegen` command line: thin glue over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use routegen::admit::{self, Verdict};
use routegen::source::files;
use routegen::RouterSettings;

/// OpenShift Routes to a validated HAProxy configuration.
#[derive(Parser, Debug)]
#[command(name = "routegen", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Decide which Routes are admitted and why not.
    ///
    /// Exit status: 0 all admitted, 2 at least one rejected, 1 unreadable input.
    Check(CheckArgs),
}

/// Where manifests come from.
#[derive(Args, Debug)]
struct InputArgs {
    /// Manifest files or directories (recursive: *.yaml, *.yml, *.json); `-` reads stdin.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true, num_args = 1..)]
    paths: Vec<PathBuf>,
    /// Namespace for objects that have none.
    #[arg(long, env = "ROUTEGEN_NAMESPACE", default_value = "default")]
    namespace: String,
}

/// Router settings that change admission (SPEC §3).
#[derive(Args, Debug)]
struct RouterArgs {
    /// Domain for Routes that set spec.subdomain: `<subdomain>.<domain>`.
    #[arg(long, env = "ROUTEGEN_ROUTER_DOMAIN", value_name = "DOMAIN")]
    router_domain: Option<String>,
    /// Host for Routes with neither host nor subdomain; `${name}` and `${namespace}` are substituted.
    #[arg(long, env = "ROUTEGEN_HOSTNAME_TEMPLATE", value_name = "TEMPLATE")]
    hostname_template: Option<String>,
    /// Admit Routes with wildcardPolicy Subdomain.
    #[arg(long, env = "ROUTEGEN_ALLOW_WILDCARD_ROUTES")]
    allow_wildcard_routes: bool,
    /// Admit only hosts in these domains (comma-separated).
    #[arg(long, env = "ROUTEGEN_ALLOWED_DOMAINS", value_name = "DOMAINS", value_delimiter = ',')]
    allowed_domains: Vec<String>,
    /// Refuse hosts in these domains (comma-separated); checked before --allowed-domains.
    #[arg(long, env = "ROUTEGEN_DENIED_DOMAINS", value_name = "DOMAINS", value_delimiter = ',')]
    denied_domains: Vec<String>,
    /// Let Routes in different namespaces share a host (paths must still differ).
    #[arg(long, env = "ROUTEGEN_DISABLE_NAMESPACE_OWNERSHIP_CHECK")]
    disable_namespace_ownership_check: bool,
}

impl RouterArgs {
    fn settings(&self) -> RouterSettings {
        let clean = |list: &[String]| -> Vec<String> {
            list.iter()
                .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase())
                .filter(|d| !d.is_empty())
                .collect()
        };
        RouterSettings {
            router_domain: self.router_domain.clone().filter(|d| !d.is_empty()),
            hostname_template: self.hostname_template.clone().filter(|t| !t.is_empty()),
            allow_wildcard_routes: self.allow_wildcard_routes,
            allowed_domains: clean(&self.allowed_domains),
            denied_domains: clean(&self.denied_domains),
            disable_namespace_ownership_check: self.disable_namespace_ownership_check,
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    /// One aligned line per Route.
    Text,
    /// A JSON array of {namespace, name, host, admitted, reason, message, warnings}.
    Json,
}

#[derive(Args, Debug)]
struct CheckArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    router: RouterArgs,
    /// Output format.
    #[arg(short = 'o', long, env = "ROUTEGEN_OUTPUT", value_enum, default_value = "text")]
    output: OutputFormat,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => check(&args),
    }
}

fn check(args: &CheckArgs) -> ExitCode {
    let loaded = match files::load_paths(&args.input.paths, &args.input.namespace) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    let verdicts = admit::admit(&loaded.snapshot, &args.router.settings());
    match args.output {
        OutputFormat::Json => {
            let reports: Vec<_> = verdicts.iter().map(Verdict::report).collect();
            match serde_json::to_string_pretty(&reports) {
                Ok(json) => println!("{json}"),
                Err(e) => {
                    eprintln!("error: cannot encode JSON: {e}");
                    return ExitCode::from(1);
                }
            }
        }
        OutputFormat::Text => print!("{}", text_report(&verdicts)),
    }
    if verdicts.iter().all(Verdict::is_admitted) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

/// One aligned line per Route: `namespace/name  host  Admitted|Reason: message  [warnings]`.
fn text_report(verdicts: &[Verdict]) -> String {
    let name_width = verdicts.iter().map(|v| v.key.to_string().len()).max().unwrap_or(0);
    let host_width = verdicts.iter().map(|v| v.host.len().max(1)).max().unwrap_or(0);
    let mut out = String::new();
    for v in verdicts {
        let state = match v.rejection() {
            None => "Admitted".to_string(),
            Some(r) => format!("{}: {}", r.reason, one_line(&r.message)),
        };
        let host = if v.host.is_empty() { "-" } else { v.host.as_str() };
        let mut line = format!(
            "{:<nw$}  {:<hw$}  {state}",
            v.key.to_string(),
            admit::host::printable(host),
            nw = name_width,
            hw = host_width
        );
        if !v.warnings.is_empty() {
            line.push_str("  [warnings: ");
            line.push_str(&one_line(&v.warnings.join("; ")));
            line.push(']');
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Keep a report line one line: control characters are shown escaped.
fn one_line(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}
