//! `routegen` command line: thin glue over the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};

use routegen::admit::{self, Verdict};
use routegen::defaultcert;
use routegen::output::{self, OutputTree};
use routegen::plan::{self, PlanSettings};
use routegen::render::{self, BindAddr, RenderSettings, Templates};
use routegen::source::files;
use routegen::values::{CookieName, Duration};
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
    /// Render the HAProxy configuration tree (dry run: no cluster, no HAProxy).
    ///
    /// Prints every file under a `# ==> path <==` header (private keys
    /// redacted unless --show-secrets), or writes the tree with --out.
    /// Rejected Routes are listed on stderr and produce no configuration.
    ///
    /// Exit status: 0 rendered (even when some Routes are rejected), 1 error.
    Render(RenderArgs),
    /// Show what `render` would change in an existing output directory.
    ///
    /// Prints a unified diff from --against DIR to the new tree, private
    /// keys redacted.
    ///
    /// Exit status: 0 no change, 1 changes, 2 error.
    Diff(DiffArgs),
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
    #[arg(
        long,
        env = "ROUTEGEN_ALLOWED_DOMAINS",
        value_name = "DOMAINS",
        value_delimiter = ','
    )]
    allowed_domains: Vec<String>,
    /// Refuse hosts in these domains (comma-separated); checked before --allowed-domains.
    #[arg(
        long,
        env = "ROUTEGEN_DENIED_DOMAINS",
        value_name = "DOMAINS",
        value_delimiter = ','
    )]
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
    #[arg(
        short = 'o',
        long,
        env = "ROUTEGEN_OUTPUT",
        value_enum,
        default_value = "text"
    )]
    output: OutputFormat,
}

/// What render and diff share: input, admission and rendering settings.
#[derive(Args, Debug)]
struct TreeArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    router: RouterArgs,
    /// Directory with templates replacing the built-in ones (same file names, e.g. haproxy.cfg.tera).
    #[arg(long, env = "ROUTEGEN_TEMPLATE_DIR", value_name = "DIR")]
    template_dir: Option<PathBuf>,
    /// Where the self-signed default certificate is generated once and kept.
    #[arg(long, env = "ROUTEGEN_STATE_DIR", value_name = "DIR", default_value = defaultcert::DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    /// Default certificate: private key and certificate chain in one PEM file.
    #[arg(long, env = "ROUTEGEN_DEFAULT_CERT", value_name = "FILE")]
    default_cert: Option<PathBuf>,
    /// Address(es) of the plain HTTP frontend: :PORT, IPv4:PORT or [IPv6]:PORT (comma-separated).
    #[arg(
        long,
        env = "ROUTEGEN_HTTP_BIND",
        value_name = "ADDR",
        value_delimiter = ',',
        default_value = ":80"
    )]
    http_bind: Vec<BindAddr>,
    /// Address(es) of the TLS frontend (comma-separated).
    #[arg(
        long,
        env = "ROUTEGEN_HTTPS_BIND",
        value_name = "ADDR",
        value_delimiter = ',',
        default_value = ":443"
    )]
    https_bind: Vec<BindAddr>,
    /// Directory of HAProxy's Unix sockets (runtime API, internal TLS frontend).
    #[arg(long, env = "ROUTEGEN_RUN_DIR", value_name = "DIR", default_value = render::DEFAULT_RUN_DIR)]
    run_dir: String,
    /// HAProxy global maxconn.
    #[arg(long, env = "ROUTEGEN_MAXCONN", value_name = "N", default_value_t = render::DEFAULT_MAXCONN)]
    maxconn: u32,
    /// How long old HAProxy processes may finish their connections after a reload.
    #[arg(
        long,
        env = "ROUTEGEN_HARD_STOP_AFTER",
        value_name = "DURATION",
        default_value = "30m"
    )]
    hard_stop_after: Duration,
    /// Sticky cookie name for Routes without the cookie_name annotation.
    #[arg(long, env = "ROUTEGEN_COOKIE_NAME", value_name = "NAME")]
    cookie_name: Option<CookieName>,
    /// CA (PEM) verifying reencrypt servers of Routes without a destination CA (with verifyhost <svc>.<ns>.svc).
    #[arg(long, env = "ROUTEGEN_SERVICE_CA_FILE", value_name = "FILE")]
    service_ca_file: Option<PathBuf>,
    /// Never offer or use HTTP/2.
    #[arg(long, env = "ROUTEGEN_DISABLE_HTTP2")]
    disable_http2: bool,
    /// Keep loopback endpoint addresses (local use and tests only).
    #[arg(long, env = "ROUTEGEN_ALLOW_LOOPBACK_ENDPOINTS")]
    allow_loopback_endpoints: bool,
}

#[derive(Args, Debug)]
struct RenderArgs {
    #[command(flatten)]
    tree: TreeArgs,
    /// Write the tree into this directory (created 0700; it must be new, empty, or written by routegen before) instead of printing it.
    #[arg(long, env = "ROUTEGEN_OUT", value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print private keys instead of redacting them.
    #[arg(long, env = "ROUTEGEN_SHOW_SECRETS")]
    show_secrets: bool,
}

#[derive(Args, Debug)]
struct DiffArgs {
    #[command(flatten)]
    tree: TreeArgs,
    /// The output directory to compare with.
    #[arg(long, env = "ROUTEGEN_AGAINST", value_name = "DIR")]
    against: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => check(&args),
        Command::Render(args) => match render_cmd(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        },
        Command::Diff(args) => match diff_cmd(&args) {
            Ok(false) => ExitCode::SUCCESS,
            Ok(true) => ExitCode::from(1),
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        },
    }
}

/// Load, admit, plan and render; rejected Routes and warnings go to stderr.
fn build_tree(args: &TreeArgs) -> anyhow::Result<OutputTree> {
    let loaded = files::load_paths(&args.input.paths, &args.input.namespace)?;
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    let verdicts = admit::admit(&loaded.snapshot, &args.router.settings());
    for v in &verdicts {
        if let Some(r) = v.rejection() {
            let host = if v.host.is_empty() {
                "-".to_string()
            } else {
                admit::host::printable(&v.host)
            };
            eprintln!("rejected: {} {host}: {}: {}", v.key, r.reason, r.message);
        }
        for w in &v.warnings {
            eprintln!("warning: {}: {w}", v.key);
        }
    }
    let default_cert = defaultcert::resolve(args.default_cert.as_deref(), &args.state_dir)
        .context(
            "default certificate (use --default-cert FILE, or --state-dir DIR for a generated one)",
        )?;
    let service_ca_pem = args.service_ca_file.as_deref().map(read_ca).transpose()?;
    let plan_settings = PlanSettings {
        cookie_name: args.cookie_name.clone(),
        service_ca_pem,
        disable_http2: args.disable_http2,
        allow_loopback_endpoints: args.allow_loopback_endpoints,
        default_cert_sha256: Some(default_cert.sha256),
    };
    let plan = plan::plan(&verdicts, &loaded.snapshot, &plan_settings);
    for warning in &plan.warnings {
        eprintln!("warning: {warning}");
    }
    let templates = match &args.template_dir {
        Some(dir) => Templates::from_dir(dir)?,
        None => Templates::embedded()?,
    };
    let settings = RenderSettings {
        http_bind: args.http_bind.clone(),
        https_bind: args.https_bind.clone(),
        run_dir: args.run_dir.clone(),
        maxconn: args.maxconn,
        hard_stop_after: args.hard_stop_after,
        default_cert_pem: default_cert.pem,
    };
    Ok(render::render_haproxy(&plan, &settings, &templates)?)
}

/// `--service-ca-file`: must hold at least one PEM certificate.
fn read_ca(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let certs = openssl::x509::X509::stack_from_pem(text.as_bytes())
        .map_err(|e| anyhow::anyhow!("{}: not a PEM certificate bundle: {e}", path.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{}: no PEM certificate found",
        path.display()
    );
    Ok(text)
}

fn render_cmd(args: &RenderArgs) -> anyhow::Result<()> {
    let tree = build_tree(&args.tree)?;
    match &args.out {
        Some(dir) => {
            let removed = output::write_tree(&tree, dir)?;
            for path in removed {
                eprintln!("removed stale file: {path}");
            }
        }
        None => {
            use std::io::Write;
            let text = output::print_tree(&tree, args.show_secrets);
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .context("cannot write to stdout")?;
            stdout.flush().context("cannot write to stdout")?;
        }
    }
    Ok(())
}

/// Returns whether anything changed.
fn diff_cmd(args: &DiffArgs) -> anyhow::Result<bool> {
    let tree = build_tree(&args.tree)?;
    let diff = output::diff_tree(&tree, &args.against)?;
    print!("{diff}");
    Ok(!diff.is_empty())
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
    let name_width = verdicts
        .iter()
        .map(|v| v.key.to_string().len())
        .max()
        .unwrap_or(0);
    let host_width = verdicts
        .iter()
        .map(|v| v.host.len().max(1))
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for v in verdicts {
        let state = match v.rejection() {
            None => "Admitted".to_string(),
            Some(r) => format!("{}: {}", r.reason, one_line(&r.message)),
        };
        let host = if v.host.is_empty() {
            "-"
        } else {
            v.host.as_str()
        };
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
