//! Router-wide settings that change what is admitted (SPEC §3). Built by the
//! CLI from flags and `ROUTEGEN_*` variables; plain data for the pure core.

/// Settings admission depends on. `Default` is the most permissive
/// deployment-independent choice: no router domain, no template, wildcard
/// Routes refused, no domain lists, namespace ownership enforced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouterSettings {
    /// Domain appended to `spec.subdomain` (`<subdomain>.<domain>`).
    pub router_domain: Option<String>,
    /// Host name for Routes with neither host nor subdomain, with
    /// `${name}` and `${namespace}` substituted.
    pub hostname_template: Option<String>,
    /// Admit `wildcardPolicy: Subdomain`.
    pub allow_wildcard_routes: bool,
    /// When non-empty, only hosts in (or equal to) one of these domains are admitted.
    pub allowed_domains: Vec<String>,
    /// Hosts in (or equal to) one of these domains are refused; checked first.
    pub denied_domains: Vec<String>,
    /// Let Routes in different namespaces share a host (paths must still differ).
    pub disable_namespace_ownership_check: bool,
    /// At most this many Routes per host (`host` or `*.domain`), oldest
    /// first; newer ones are refused (`RouteNotAdmitted`). `None`: no bound.
    pub max_routes_per_host: Option<usize>,
}
