//! TLS material: Route certificates (crt-list entries with their ALPN
//! decision) and CA files for reencrypt server verification (SPEC §6).
//!
//! HTTP/2 is offered on a Route's certificate only when
//! - h2 is not disabled (`--disable-http2`),
//! - the leaf is used by exactly one admitted Route (OpenShift's
//!   `CertificateIndex[cert] > 1` rule; compared by leaf SHA-256),
//! - it is not the default certificate, and
//! - it is not a wildcard certificate (the API reference: "a custom
//!   (non-wildcard) certificate"; this prevents connection coalescing).
//!   Admission decides that when it parses the leaf
//!   ([`ServingCert::wildcard_leaf`](crate::admit::route::ServingCert)); no
//!   certificate is parsed here.

use std::collections::BTreeMap;

use super::names::host_key;
use super::{CertEntry, PemFile, PlanSettings, ServerTls, ServerVerify};
use crate::admit::route::{AdmittedRoute, RouteTls, Termination};
use crate::model::ObjectKey;

/// The shared service CA file (`--service-ca-file`).
pub const SERVICE_CA_FILE: &str = "cas/service-ca.pem";

/// `certs/<ns>:<name>.pem`.
pub fn cert_file(key: &ObjectKey) -> String {
    format!("certs/{}:{}.pem", key.namespace, key.name)
}

/// `cas/<ns>:<name>.pem`.
pub fn destination_ca_file(key: &ObjectKey) -> String {
    format!("cas/{}:{}.pem", key.namespace, key.name)
}

/// Concatenate PEM texts, each ending with a newline.
pub fn concat_pem<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for part in parts {
        if part.is_empty() {
            continue;
        }
        out.push_str(part);
        if !part.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// Server-side TLS of a reencrypt backend and the CA file it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTlsPlan {
    pub tls: ServerTls,
    pub ca_file: Option<PemFile>,
}

/// How reencrypt servers are verified: the Route's destination CA, else the
/// service CA with `verifyhost <svc>.<ns>.svc` (`svc` = `spec.to`), else not
/// at all (warned).
pub fn server_tls(
    key: &ObjectKey,
    primary_service: Option<&str>,
    tls: &RouteTls,
    settings: &PlanSettings,
    warnings: &mut Vec<String>,
) -> ServerTlsPlan {
    let alpn_h2 = !settings.disable_http2;
    if let Some(ca) = &tls.destination_ca_pem {
        let file = destination_ca_file(key);
        return ServerTlsPlan {
            tls: ServerTls {
                verify: ServerVerify::CaFile {
                    file: file.clone(),
                    verify_host: None,
                },
                alpn_h2,
            },
            ca_file: Some(PemFile {
                file,
                pem: concat_pem([ca.as_str()]),
            }),
        };
    }
    if let Some(ca) = &settings.service_ca_pem {
        // An unsafe service name has no servers (endpoints.rs) and must not
        // reach the configuration either.
        let verify_host = primary_service
            .filter(|s| super::endpoints::is_safe_name(s))
            .map(|s| format!("{s}.{}.svc", key.namespace));
        return ServerTlsPlan {
            tls: ServerTls {
                verify: ServerVerify::CaFile {
                    file: SERVICE_CA_FILE.to_string(),
                    verify_host,
                },
                alpn_h2,
            },
            ca_file: Some(PemFile {
                file: SERVICE_CA_FILE.to_string(),
                pem: concat_pem([ca.as_str()]),
            }),
        };
    }
    warnings.push(format!(
        "{key}: reencrypt without destinationCACertificate or --service-ca-file: servers are not verified"
    ));
    ServerTlsPlan {
        tls: ServerTls {
            verify: ServerVerify::None,
            alpn_h2,
        },
        ca_file: None,
    }
}

/// One crt-list entry per edge/reencrypt Route with its own certificate,
/// sorted by file.
pub fn certificates(routes: &[&AdmittedRoute], settings: &PlanSettings) -> Vec<CertEntry> {
    let materials: Vec<CertMaterial> = routes.iter().filter_map(|r| cert_material(r)).collect();
    certificates_from(materials.iter(), settings)
}

/// What one Route contributes to the crt-list, decided from the Route
/// alone (the h2 decision also needs the other Routes: see
/// [`certificates_from`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertMaterial {
    pub file: String,
    pub pem: std::sync::Arc<str>,
    pub sni: crate::model::ArcStr,
    pub leaf_sha256: [u8; 32],
    /// The leaf is a wildcard certificate (no h2).
    pub wildcard_certificate: bool,
    pub route: ObjectKey,
}

/// The certificate of an edge or reencrypt Route with its own certificate.
pub fn cert_material(route: &AdmittedRoute) -> Option<CertMaterial> {
    let tls = route.tls.as_ref()?;
    if !matches!(tls.termination, Termination::Edge | Termination::Reencrypt) {
        return None;
    }
    let cert = tls.serving.as_ref()?;
    Some(CertMaterial {
        file: cert_file(&route.key),
        pem: concat_pem(
            [
                Some(&*cert.key_pem),
                Some(&*cert.chain_pem),
                cert.ca_pem.as_deref(),
            ]
            .into_iter()
            .flatten(),
        )
        .into(),
        sni: host_key(route),
        leaf_sha256: cert.leaf_sha256,
        wildcard_certificate: cert.wildcard_leaf,
        route: route.key.clone(),
    })
}

/// crt-list entries from every Route's [`CertMaterial`]: h2 only for a
/// certificate used by one Route, not the default one, not a wildcard.
pub fn certificates_from<'a>(
    materials: impl Iterator<Item = &'a CertMaterial> + Clone,
    settings: &PlanSettings,
) -> Vec<CertEntry> {
    let mut uses: BTreeMap<[u8; 32], usize> = BTreeMap::new();
    for m in materials.clone() {
        *uses.entry(m.leaf_sha256).or_default() += 1;
    }
    let mut entries: Vec<CertEntry> = materials
        .map(|m| {
            let h2 = !settings.disable_http2
                && uses.get(&m.leaf_sha256) == Some(&1)
                && settings.default_cert_sha256 != Some(m.leaf_sha256)
                && !m.wildcard_certificate;
            CertEntry {
                file: m.file.clone(),
                pem: m.pem.clone(),
                sni: m.sni.clone(),
                h2,
                route: m.route.clone(),
            }
        })
        .collect();
    entries.sort_by(|a, b| a.file.cmp(&b.file));
    entries.dedup_by(|a, b| a.file == b.file);
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admit::route::{BackendRef, InsecurePolicy, RouteHost, ServingCert};

    /// A serving certificate; the chain `WILD` stands for a wildcard leaf.
    fn serving(chain_pem: &str, leaf: u8) -> ServingCert {
        ServingCert {
            key_pem: "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----".into(),
            chain_pem: chain_pem.into(),
            ca_pem: None,
            leaf_sha256: [leaf; 32],
            not_after_unix: 0,
            wildcard_leaf: chain_pem == "WILD",
        }
    }

    fn route(
        name: &str,
        host: &str,
        wildcard: bool,
        termination: Termination,
        serving: Option<ServingCert>,
    ) -> AdmittedRoute {
        AdmittedRoute {
            key: ObjectKey::new("ns", name),
            host: RouteHost {
                host: host.into(),
                wildcard,
            },
            path: None,
            backends: vec![BackendRef {
                service: "svc".into(),
                weight: crate::values::Weight::DEFAULT,
            }],
            target_port: None,
            tls: Some(RouteTls {
                termination,
                insecure_policy: InsecurePolicy::None,
                serving,
                destination_ca_pem: None,
            }),
            options: Default::default(),
            headers: Default::default(),
        }
    }

    #[test]
    fn h2_table() {
        let routes = [
            route(
                "unique",
                "a.example.com",
                false,
                Termination::Edge,
                Some(serving("PLAIN", 1)),
            ),
            route(
                "shared1",
                "b.example.com",
                false,
                Termination::Edge,
                Some(serving("PLAIN", 2)),
            ),
            route(
                "shared2",
                "c.example.com",
                false,
                Termination::Reencrypt,
                Some(serving("PLAIN", 2)),
            ),
            route(
                "default",
                "d.example.com",
                false,
                Termination::Edge,
                Some(serving("PLAIN", 3)),
            ),
            route(
                "wild",
                "w.example.com",
                true,
                Termination::Edge,
                Some(serving("WILD", 4)),
            ),
            route("nocert", "e.example.com", false, Termination::Edge, None),
            route(
                "pass",
                "f.example.com",
                false,
                Termination::Passthrough,
                Some(serving("PLAIN", 5)),
            ),
        ];
        let refs: Vec<&AdmittedRoute> = routes.iter().collect();
        let settings = PlanSettings {
            default_cert_sha256: Some([3; 32]),
            ..Default::default()
        };
        let got: Vec<(String, String, bool)> = certificates(&refs, &settings)
            .into_iter()
            .map(|c| (c.file, c.sni.to_string(), c.h2))
            .collect();
        assert_eq!(
            got,
            vec![
                ("certs/ns:default.pem".into(), "d.example.com".into(), false),
                ("certs/ns:shared1.pem".into(), "b.example.com".into(), false),
                ("certs/ns:shared2.pem".into(), "c.example.com".into(), false),
                ("certs/ns:unique.pem".into(), "a.example.com".into(), true),
                ("certs/ns:wild.pem".into(), "*.example.com".into(), false),
            ]
        );
        let disabled = PlanSettings {
            disable_http2: true,
            ..Default::default()
        };
        assert!(certificates(&refs, &disabled).iter().all(|c| !c.h2));
    }

    #[test]
    fn cert_file_contents() {
        let mut cert = serving("CHAIN", 1);
        cert.ca_pem = Some("CA\n".into());
        let r = route("r", "a.example.com", false, Termination::Edge, Some(cert));
        let entries = certificates(&[&r], &PlanSettings::default());
        assert_eq!(
            &*entries[0].pem,
            "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\nCHAIN\nCA\n"
        );
        assert_eq!(entries[0].route, ObjectKey::new("ns", "r"));
        assert!(entries[0].h2, "unique, not the default, not a wildcard: h2");
    }

    #[test]
    fn server_tls_table() {
        let key = ObjectKey::new("ns", "r");
        let mut tls = RouteTls {
            termination: Termination::Reencrypt,
            insecure_policy: InsecurePolicy::None,
            serving: None,
            destination_ca_pem: Some("DEST".into()),
        };
        let service_ca = PlanSettings {
            service_ca_pem: Some("SVCCA\n".into()),
            ..Default::default()
        };
        let mut w = Vec::new();

        let got = server_tls(&key, Some("svc"), &tls, &service_ca, &mut w);
        assert_eq!(
            got.tls.verify,
            ServerVerify::CaFile {
                file: "cas/ns:r.pem".into(),
                verify_host: None
            }
        );
        assert_eq!(
            got.ca_file,
            Some(PemFile {
                file: "cas/ns:r.pem".into(),
                pem: "DEST\n".into()
            })
        );

        tls.destination_ca_pem = None;
        let got = server_tls(&key, Some("svc"), &tls, &service_ca, &mut w);
        assert_eq!(
            got.tls.verify,
            ServerVerify::CaFile {
                file: SERVICE_CA_FILE.into(),
                verify_host: Some("svc.ns.svc".into())
            }
        );
        assert_eq!(got.ca_file.unwrap().pem, "SVCCA\n");
        assert!(got.tls.alpn_h2);
        assert!(w.is_empty());

        let no_h2 = PlanSettings {
            disable_http2: true,
            ..Default::default()
        };
        let got = server_tls(&key, Some("svc"), &tls, &no_h2, &mut w);
        assert_eq!(
            got.tls,
            ServerTls {
                verify: ServerVerify::None,
                alpn_h2: false
            }
        );
        assert_eq!(got.ca_file, None);
        assert_eq!(w, vec!["ns/r: reencrypt without destinationCACertificate or --service-ca-file: servers are not verified"]);
    }

    #[test]
    fn concat_pem_adds_newlines() {
        assert_eq!(concat_pem(["a", "b\n", "", "c"]), "a\nb\nc\n");
    }
}
