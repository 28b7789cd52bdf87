//! What the HAProxy templates receive: typed contexts whose strings are
//! single values already checked by [`escape`] for the place the template
//! prints them.
//!
//! The contract, for every context here:
//! - A [`Text`] is one value (a name, a word, a path, a comment's text)
//!   that passed the [`escape`] function of its context; it can only be
//!   made through those functions. It never holds a directive or a list of
//!   words.
//! - A `&'static str` is a keyword the renderer chose (`http`/`tcp`, a
//!   variable name, a step kind); numbers are printed as they are.
//! - Every choice between forms of a directive is made by the renderer and
//!   shows as a boolean, an `Option` (absent: the directive or option is not
//!   written) or such a keyword. The templates hold the directives as text
//!   and only test these fields (`{% if %}`, `==` on a keyword) and loop
//!   over lists.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

use super::escape::{self, EscapeError};

/// One value checked by an [`escape`] function (see the module
/// documentation). Borrowed from the plan when the check returns the text
/// as it is, so a context costs no copy of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub(super) struct Text<'a>(Cow<'a, str>);

impl<'a> Text<'a> {
    /// [`escape::name`]: a proxy or server name.
    pub(super) fn name(context: &str, s: &'a str) -> Result<Self, EscapeError> {
        escape::name(context, s).map(|s| Text(Cow::Borrowed(s)))
    }

    /// [`escape::word`]: one bare configuration word.
    pub(super) fn word(context: &str, s: &'a str) -> Result<Self, EscapeError> {
        escape::word(context, s).map(|s| Text(Cow::Borrowed(s)))
    }

    /// [`escape::relative_path`]: a path inside the output tree.
    pub(super) fn path(context: &str, s: &'a str) -> Result<Self, EscapeError> {
        escape::relative_path(context, s).map(|s| Text(Cow::Borrowed(s)))
    }

    /// [`escape::dns_name`]: a lower-case DNS name.
    pub(super) fn dns_name(context: &str, s: &'a str) -> Result<Self, EscapeError> {
        escape::dns_name(context, s).map(|s| Text(Cow::Borrowed(s)))
    }

    /// [`escape::comment`]: text inside a `#` comment line.
    pub(super) fn comment(context: &str, s: &'a str) -> Result<Self, EscapeError> {
        escape::comment(context, s).map(|s| Text(Cow::Borrowed(s)))
    }
}

impl Text<'static> {
    /// [`escape::word`] of `value`'s `Display` form (as
    /// [`escape::Checked::value`], keeping the one copy made).
    pub(super) fn value(context: &str, value: &dyn fmt::Display) -> Result<Self, EscapeError> {
        Text::owned(context, value.to_string(), escape::word)
    }

    /// [`escape::comment`] of `value`'s `Display` form.
    pub(super) fn comment_of(context: &str, value: &dyn fmt::Display) -> Result<Self, EscapeError> {
        Text::owned(context, value.to_string(), escape::comment)
    }

    /// [`escape::log_format_literal`]: literal text of a log-format
    /// argument (`%` doubled).
    pub(super) fn log_format_literal(context: &str, s: &str) -> Result<Self, EscapeError> {
        escape::log_format_literal(context, s).map(|s| Text(Cow::Owned(s)))
    }

    /// `s` once `check` (an [`escape`] function) accepted it.
    pub(super) fn owned(
        context: &str,
        s: String,
        check: for<'x> fn(&str, &'x str) -> Result<&'x str, EscapeError>,
    ) -> Result<Self, EscapeError> {
        check(context, &s)?;
        Ok(Text(Cow::Owned(s)))
    }
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `backend.cfg.tera`'s context: one Route's backend section. Fields that
/// only HTTP backends have (`forwarded`, `rewrite`, `cookie`, `hsts`, the
/// HTTP rate) are `None` on TCP backends.
///
/// The fields are the template's top-level variables, and the options of
/// a directive are fields of their own rather than a nested object, except
/// for the rare `rate_limit` and `rewrite`: Tera allocates a copy of each
/// name of a dotted path (`a.b`) at every lookup, and this template is
/// rendered for every backend.
#[derive(Debug)]
pub(super) struct BackendCtx<'a> {
    /// An empty spare backend: its comment says so instead of naming a
    /// Route (see [`routegen_core::plan::spares`]).
    pub spare: bool,
    /// The comment line: `# route <route> host <host> path <path>
    /// termination <termination>`.
    pub route: Text<'static>,
    pub host: Text<'a>,
    /// `-` when the Route has no path.
    pub path: Text<'a>,
    /// `edge`, `passthrough`, `reencrypt` or `http`.
    pub termination: &'static str,
    pub name: Text<'a>,
    /// `http` or `tcp`.
    pub mode: &'static str,
    pub balance: Text<'static>,
    /// `consistent` on TCP backends.
    pub hash_type: Option<&'static str>,
    pub timeout_server: Option<Text<'static>>,
    pub timeout_tunnel: Option<Text<'static>>,
    /// Sources outside this ACL file are rejected.
    pub allowlist_file: Option<Text<'a>>,
    pub rate_limit: Option<RateLimitCtx>,
    /// The defaults section (haproxy.cfg) holding the `X-Forwarded-*`/
    /// `Forwarded` rules of the Route's policy, written `backend <name>
    /// from <section>`: `forwarded_append`, `forwarded_replace` or
    /// `forwarded_if_none`; `None` sets no header (policy `never`, TCP).
    pub forwarded: Option<&'static str>,
    pub rewrite: Option<RewriteCtx>,
    /// The sticky-session cookie's name: the backend's `cookie`
    /// directive, `dynamic`: HAProxy derives each server's value from
    /// [`BackendCtx::cookie_key`] and the server's address and port, so a
    /// server added at runtime gets the value a reload would give it.
    pub cookie: Option<Text<'a>>,
    /// `dynamic-cookie-key`: hex md5 of the backend name (not a secret: it
    /// only has to be the same on every replica and after every reload).
    pub cookie_key: Option<String>,
    /// The cookie's `secure` option.
    pub cookie_secure: bool,
    /// The cookie's `SameSite` attribute: `Strict`, `Lax` or `None`.
    pub cookie_same_site: Option<&'static str>,
    /// `Strict-Transport-Security` header value.
    pub hsts: Option<Text<'static>>,
    /// The Route's request header actions, in list order.
    pub request_headers: Vec<HeaderActionCtx>,
    /// The Route's response header actions, in list order.
    pub response_headers: Vec<HeaderActionCtx>,
    /// TLS towards the servers: `ssl` on every server line, with
    /// `ca_file` and `alpn_h2`.
    pub ssl: bool,
    /// With `ssl`: `verify required` with this CA file; `None` is `verify
    /// none`. (Checked with the first server line: unset without servers.)
    pub ca_file: Option<Text<'a>>,
    /// Offer h2 to the servers (`alpn h2,http/1.1`).
    pub alpn_h2: bool,
    /// `check inter` on every server line.
    pub check_inter: Option<Text<'static>>,
    /// `maxconn` on every server line.
    pub server_maxconn: Option<u32>,
    /// Sorted by name.
    pub servers: Vec<ServerCtx<'a>>,
}

impl BackendCtx<'_> {
    /// The template's context: one variable per field, named as the field.
    /// Inserted one by one rather than by `Context::from_serialize`, which
    /// builds a JSON object first and then moves it into a second map: a
    /// cost paid per backend. The destructuring fails to compile when a
    /// field is added and not inserted.
    pub(super) fn to_tera(&self) -> tera::Context {
        // One list: the destructuring (exhaustive) and the inserts.
        macro_rules! context_of {
            ($($field:ident),*) => {{
                let BackendCtx { $($field),* } = self;
                let mut context = tera::Context::new();
                $(context.insert(stringify!($field), $field);)*
                context
            }};
        }
        context_of!(
            spare,
            route,
            host,
            path,
            termination,
            name,
            mode,
            balance,
            hash_type,
            timeout_server,
            timeout_tunnel,
            allowlist_file,
            rate_limit,
            forwarded,
            rewrite,
            cookie,
            cookie_key,
            cookie_secure,
            cookie_same_site,
            hsts,
            request_headers,
            response_headers,
            ssl,
            ca_file,
            alpn_h2,
            check_inter,
            server_maxconn,
            servers
        )
    }
}

/// One header action: `set-header <name> <value>`, or `del-header
/// <name>` when `value` is `None`. Both are single-quoted words
/// ([`escape::single_quoted`], [`escape::header_value`]).
#[derive(Debug, Serialize)]
pub(crate) struct HeaderActionCtx {
    pub name: String,
    pub value: Option<String>,
}

impl HeaderActionCtx {
    /// The contexts of `actions`, in order; `what` names them in errors
    /// (e.g. `request header`).
    pub(crate) fn list(
        what: &str,
        actions: &[routegen_core::values::HeaderAction],
    ) -> Result<Vec<HeaderActionCtx>, EscapeError> {
        use routegen_core::values::HeaderOp;
        actions
            .iter()
            .map(|a| {
                Ok(HeaderActionCtx {
                    name: escape::single_quoted(&format!("{what} name"), &a.name)?,
                    value: match &a.op {
                        HeaderOp::Set(v) => Some(escape::header_value(
                            &format!("{what} {} value", a.name),
                            v,
                        )?),
                        HeaderOp::Delete => None,
                    },
                })
            })
            .collect()
    }
}

/// Per-source limits: a stick table tracking each source (`track-sc2`)
/// and one reject rule per limit set.
#[derive(Debug, Serialize)]
pub(super) struct RateLimitCtx {
    /// The table also stores `http_req_rate(10s)` (HTTP backends only:
    /// TCP backends cannot count requests).
    pub store_http_req_rate: bool,
    /// Concurrent connections per source.
    pub concurrent_tcp: Option<u32>,
    /// Connections per source in 3 s.
    pub rate_tcp: Option<u32>,
    /// HTTP requests per source in 10 s (HTTP backends only).
    pub rate_http: Option<u32>,
}

/// `rewrite-target`. The lookup only sends requests whose path starts with
/// the Route path, so the rest of the path is `path` from byte
/// `prefix_len`: no regular expression is built from the path.
#[derive(Debug, Serialize)]
pub(super) struct RewriteCtx {
    /// Length in bytes of the Route path being replaced.
    pub prefix_len: usize,
    /// The target is `/`: as OpenShift, one leading `/` of the rest is
    /// dropped and `/` put before it. `target` is then `None`.
    pub to_root: bool,
    /// Any other target (a log-format literal): put before the rest as is.
    pub target: Option<Text<'static>>,
}

/// One `server` line.
#[derive(Debug, Serialize)]
pub(super) struct ServerCtx<'a> {
    pub name: Text<'a>,
    /// `IPv4:port` or `[IPv6]:port`.
    pub address: Text<'static>,
    /// 0 to 256.
    pub weight: u16,
    /// The server's stable `id` (see `routegen_core::plan::Server::id`).
    pub id: u32,
    /// `verifyhost` (with [`BackendCtx::ca_file`] only).
    pub verify_host: Option<Text<'a>>,
    /// The server speaks h2c (`proto h2`).
    pub proto_h2: bool,
}

/// How one frontend finds `txn.be` (see the module documentation of
/// [`super`]): the same rules for every table, so adding or removing a
/// Route never changes a frontend.
#[derive(Debug, Serialize)]
pub(super) struct LookupCtx {
    /// The map file looked up (`map_beg`: longest key that begins the
    /// request's `<host><path>?`).
    pub map: Text<'static>,
}
