//! Header actions (`spec.httpHeaders.actions` of a Route, and the router's
//! global actions): typed, so a renderer never sees a value as text it
//! could misread.
//!
//! A value is a list of [`ValuePart`]s: literal text (with `%%` already
//! turned into `%`) and dynamic parts, each one of the three sample
//! fetchers the API allows with the allowed converters. The parser lives
//! with the API rules (`admit::validation::headers`); values are made
//! there, once, and trusted after.

/// One header action list: `request` or `response` actions in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct HeaderActions {
    pub request: Vec<HeaderAction>,
    pub response: Vec<HeaderAction>,
}

impl HeaderActions {
    pub fn is_empty(&self) -> bool {
        self.request.is_empty() && self.response.is_empty()
    }
}

/// `{name, action: {type: Set|Delete, set: {value}}}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HeaderAction {
    /// An RFC 7230 token (checked by admission), not a reserved name.
    pub name: String,
    pub op: HeaderOp,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HeaderOp {
    Set(HeaderValue),
    Delete,
}

/// A header value: literal text and dynamic parts, in order. Never empty.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HeaderValue {
    pub parts: Vec<ValuePart>,
}

impl HeaderValue {
    /// The dynamic parts, in order.
    pub fn dynamic_parts(&self) -> impl Iterator<Item = &DynamicPart> {
        self.parts.iter().filter_map(|p| match p {
            ValuePart::Dynamic(d) => Some(d),
            ValuePart::Literal(_) => None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ValuePart {
    /// Text as the client or server sees it (`%%` in the API value is one
    /// `%` here). No ASCII control characters.
    Literal(String),
    Dynamic(DynamicPart),
}

/// `%[fetch,conv...]` or `%{flags}[fetch,conv...]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DynamicPart {
    /// The flags as written (`+Q`, `-E,+X`, ...): `[+-]?[QXE]` joined by
    /// commas; `None` without `{...}`.
    pub flags: Option<String>,
    pub fetch: Fetch,
    pub converters: Vec<Converter>,
}

impl std::fmt::Display for DynamicPart {
    /// The HAProxy log-format form, e.g. `%{+Q}[req.hdr(X-A),lower]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("%")?;
        if let Some(flags) = &self.flags {
            write!(f, "{{{flags}}}")?;
        }
        write!(f, "[{}", self.fetch)?;
        for c in &self.converters {
            write!(f, ",{}", c.as_str())?;
        }
        f.write_str("]")
    }
}

/// The sample fetchers the API allows.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Fetch {
    /// `req.hdr(NAME)`: NAME of letters, digits and `-`.
    ReqHdr(String),
    /// `res.hdr(NAME)`.
    ResHdr(String),
    /// `ssl_c_der`: the client certificate (DER).
    SslCDer,
}

impl std::fmt::Display for Fetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fetch::ReqHdr(name) => write!(f, "req.hdr({name})"),
            Fetch::ResHdr(name) => write!(f, "res.hdr({name})"),
            Fetch::SslCDer => f.write_str("ssl_c_der"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Converter {
    Lower,
    Base64,
}

impl Converter {
    pub fn as_str(self) -> &'static str {
        match self {
            Converter::Lower => "lower",
            Converter::Base64 => "base64",
        }
    }

    pub fn parse(s: &str) -> Option<Converter> {
        match s {
            "lower" => Some(Converter::Lower),
            "base64" => Some(Converter::Base64),
            _ => None,
        }
    }
}
