//! Header actions (a Route's `spec.httpHeaders.actions` and the router's
//! global ones) in nginx: only what nginx OSS expresses exactly.
//!
//! HAProxy runs the actions one after another: the global request actions
//! (frontend), then the Route's (backend); the Route's response actions
//! (backend), then the global ones (frontend). With literal values the
//! result of such a sequence is, per header name, its last action; nginx
//! gets that:
//! - request `Set` → `proxy_set_header Name "value"`, `Delete` →
//!   `proxy_set_header Name ""` (nginx drops a header set to "");
//! - response `Set` → `proxy_hide_header Name` + `add_header Name "value"
//!   always`, `Delete` → `proxy_hide_header Name`.
//!
//! Refused on the nginx target (the Route's locations answer 503, with a
//! warning naming the part; for the router's global actions the whole
//! render fails with a setting error), never approximated:
//! - any dynamic part: `req.hdr(X)`/`res.hdr(X)` is, in HAProxy, the *last
//!   comma-separated element* of the last `X` header (`a, b` → `b`), while
//!   nginx's `$http_x` is the whole first header; `lower`, `base64` and
//!   `ssl_c_der` have no nginx OSS variable or filter;
//! - a literal containing `$` (nginx expands variables in these
//!   directives and has no escape for `$`);
//! - a request action on a header nginx's forwarding rules set
//!   (`proxy-headers/*.conf`: `Host`, `Upgrade`, `Connection`,
//!   `X-Forwarded-*`, `Forwarded`): HAProxy applies the action after its
//!   forwarding rules, nginx would send both.

use std::collections::BTreeMap;

use routegen_core::values::{
    Converter, DynamicPart, Fetch, HeaderAction, HeaderActions, HeaderOp, ValuePart,
};

use crate::escape;

/// Request headers nginx's forwarding snippets set (lower case).
const FORWARDING_HEADERS: [&str; 9] = [
    "host",
    "upgrade",
    "connection",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-proto",
    "x-forwarded-proto-version",
    "forwarded",
];

/// The location lines for a Route's `route` actions under the router's
/// `global` ones: `Ok(lines)` (empty without actions), or `Err(reason)`
/// when nginx cannot do exactly what HAProxy does.
pub(super) fn lines(global: &HeaderActions, route: &HeaderActions) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    // Request: global first, the Route's after (the Route wins).
    let request = last_per_name(global.request.iter().chain(&route.request), "request")?;
    for (name, action) in &request {
        if FORWARDING_HEADERS.contains(&name.as_str()) {
            return Err(format!(
                "request header action on {}: nginx sets this header in its forwarding rules (proxy-headers/*.conf) and would send it twice; no exact equivalent",
                action.name
            ));
        }
        let value = match &action.op {
            HeaderOp::Set(_) => quoted(action)?,
            HeaderOp::Delete => "\"\"".to_string(),
        };
        out.push(format!("proxy_set_header {} {value};", action.name));
    }
    // Response: the Route's first, global after (the router wins).
    let response = last_per_name(route.response.iter().chain(&global.response), "response")?;
    for action in response.values() {
        out.push(format!("proxy_hide_header {};", action.name));
        if let HeaderOp::Set(_) = &action.op {
            out.push(format!(
                "add_header {} {} always;",
                action.name,
                quoted(action)?
            ));
        }
    }
    Ok(out)
}

/// True when the Route's locations carry `proxy_set_header` lines (and so
/// must include the forwarding snippet themselves).
pub(super) fn sets_request_headers(global: &HeaderActions, route: &HeaderActions) -> bool {
    !global.request.is_empty() || !route.request.is_empty()
}

/// Per lower-cased name, the last action of `actions` (sorted by name).
/// Refuses dynamic values.
fn last_per_name<'a>(
    actions: impl Iterator<Item = &'a HeaderAction>,
    direction: &str,
) -> Result<BTreeMap<String, &'a HeaderAction>, String> {
    let mut last = BTreeMap::new();
    for action in actions {
        if let HeaderOp::Set(value) = &action.op {
            if let Some(part) = value.dynamic_parts().next() {
                return Err(format!(
                    "{direction} header {}: dynamic value {part}: {}",
                    action.name,
                    why_not(part)
                ));
            }
        }
        escape::nginx_word("header name", &action.name)
            .map_err(|e| format!("{direction} header name {}: {}", e.value, e.rule))?;
        last.insert(action.name.to_ascii_lowercase(), action);
    }
    Ok(last)
}

/// Why a dynamic part has no exact nginx equivalent.
fn why_not(part: &DynamicPart) -> String {
    if let Some(c) = part.converters.first() {
        return match c {
            Converter::Lower => "converter lower has no nginx OSS equivalent".into(),
            Converter::Base64 => "converter base64 has no nginx OSS equivalent".into(),
        };
    }
    match &part.fetch {
        Fetch::SslCDer => "ssl_c_der (the client certificate in DER) has no nginx OSS variable (routegen configures no client certificates on nginx)".into(),
        Fetch::ReqHdr(name) | Fetch::ResHdr(name) => format!(
            "HAProxy takes the last comma-separated element of the last {name} header; nginx's ${} is the whole first header: no exact equivalent",
            variable(part, name)
        ),
    }
}

fn variable(part: &DynamicPart, name: &str) -> String {
    let prefix = match part.fetch {
        Fetch::ResHdr(_) => "upstream_http_",
        _ => "http_",
    };
    format!("{prefix}{}", name.to_ascii_lowercase().replace('-', "_"))
}

/// The literal value of a `Set` action as an nginx script string.
fn quoted(action: &HeaderAction) -> Result<String, String> {
    let HeaderOp::Set(value) = &action.op else {
        return Ok("\"\"".into());
    };
    let text: String = value
        .parts
        .iter()
        .map(|p| match p {
            ValuePart::Literal(t) => t.as_str(),
            ValuePart::Dynamic(_) => "",
        })
        .collect();
    escape::nginx_script_quoted("header value", &text)
        .map_err(|e| format!("header {}: value {}: {}", action.name, e.value, e.rule))
}

#[cfg(test)]
mod tests {
    use super::*;
    use routegen_core::values::HeaderValue;

    fn set(name: &str, parts: Vec<ValuePart>) -> HeaderAction {
        HeaderAction {
            name: name.into(),
            op: HeaderOp::Set(HeaderValue { parts }),
        }
    }

    fn lit(name: &str, text: &str) -> HeaderAction {
        set(name, vec![ValuePart::Literal(text.into())])
    }

    fn del(name: &str) -> HeaderAction {
        HeaderAction {
            name: name.into(),
            op: HeaderOp::Delete,
        }
    }

    #[test]
    fn precedence_is_haproxys() {
        let global = HeaderActions {
            request: vec![lit("X-Who", "router"), del("X-Debug")],
            response: vec![lit("X-Who", "router")],
        };
        let route = HeaderActions {
            request: vec![lit("x-who", "route \"q\"")],
            response: vec![lit("X-Who", "route"), del("Server")],
        };
        assert_eq!(
            lines(&global, &route).unwrap(),
            [
                "proxy_set_header X-Debug \"\";",
                "proxy_set_header x-who \"route \\\"q\\\"\";",
                "proxy_hide_header Server;",
                "proxy_hide_header X-Who;",
                "add_header X-Who \"router\" always;",
            ]
        );
        assert!(sets_request_headers(&global, &HeaderActions::default()));
        assert!(!sets_request_headers(
            &HeaderActions::default(),
            &HeaderActions::default()
        ));
    }

    #[test]
    fn refusals_name_the_part() {
        let none = HeaderActions::default();
        let dynamic = |fetch, converters| HeaderActions {
            request: vec![set(
                "X-A",
                vec![ValuePart::Dynamic(DynamicPart {
                    flags: None,
                    fetch,
                    converters,
                })],
            )],
            response: vec![],
        };
        let err = lines(&none, &dynamic(Fetch::ReqHdr("X-B".into()), vec![])).unwrap_err();
        assert!(
            err.contains("%[req.hdr(X-B)]") && err.contains("$http_x_b"),
            "{err}"
        );
        let err = lines(&none, &dynamic(Fetch::SslCDer, vec![])).unwrap_err();
        assert!(err.contains("ssl_c_der"), "{err}");
        let err = lines(
            &none,
            &dynamic(Fetch::ReqHdr("X-B".into()), vec![Converter::Base64]),
        )
        .unwrap_err();
        assert!(err.contains("base64"), "{err}");
        let dollar = HeaderActions {
            request: vec![lit("X-A", "$host")],
            response: vec![],
        };
        assert!(lines(&none, &dollar).unwrap_err().contains("'$'"));
        let forwarding = HeaderActions {
            request: vec![del("Host")],
            response: vec![],
        };
        assert!(lines(&forwarding, &none)
            .unwrap_err()
            .contains("forwarding"));
        // Response actions on forwarding names are fine (nginx sets none).
        let response = HeaderActions {
            request: vec![],
            response: vec![del("Connection")],
        };
        assert_eq!(
            lines(&none, &response).unwrap(),
            ["proxy_hide_header Connection;"]
        );
    }
}
