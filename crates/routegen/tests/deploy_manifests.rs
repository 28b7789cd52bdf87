//! Every manifest in `deploy/` parses as its k8s-openapi type, survives a
//! typed round trip unchanged (so a misspelt field, which the typed parser
//! would silently drop, fails here), and says what the code expects. The
//! Route CRD is generated from the `CustomResource` derive and must equal
//! `Route::crd()`; regenerate it with
//!
//! ```text
//! ROUTEGEN_UPDATE_CRD=1 cargo test --test deploy_manifests route_crd
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, Namespace, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

const NAMESPACE: &str = "routegen";
const CRD_HEADER: &str = "# Generated from the Route CustomResource derive (src/model/route.rs):\n# ROUTEGEN_UPDATE_CRD=1 cargo test --test deploy_manifests route_crd\n# For clusters without OpenShift's Route API (development, tests).\n";

fn deploy_dir() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("deploy")
}

fn read_yaml(name: &str) -> Value {
    let path = deploy_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Parse as `T` and check that serializing `T` gives back the document:
/// nothing was unknown, misspelt or mistyped.
fn typed<T: DeserializeOwned + Serialize>(name: &str) -> T {
    let raw = read_yaml(name);
    let object: T = serde_json::from_value(raw.clone()).unwrap_or_else(|e| {
        panic!(
            "deploy/{name}: not a valid {}: {e}",
            std::any::type_name::<T>()
        )
    });
    let back = serde_json::to_value(&object).unwrap();
    if back != raw {
        panic!(
            "deploy/{name}: fields lost in a typed round trip (misspelt or unknown?)\nfile:  {}\ntyped: {}",
            serde_json::to_string_pretty(&raw).unwrap(),
            serde_json::to_string_pretty(&back).unwrap()
        );
    }
    object
}

#[test]
fn every_manifest_is_covered() {
    let mut names: BTreeSet<String> = std::fs::read_dir(deploy_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
        .collect();
    for known in [
        "namespace.yaml",
        "serviceaccount.yaml",
        "clusterrole.yaml",
        "clusterrolebinding.yaml",
        "service.yaml",
        "deployment.yaml",
        "crd-route.yaml",
        "networkpolicy.yaml",
    ] {
        assert!(names.remove(known), "deploy/{known} is missing");
    }
    assert!(names.is_empty(), "manifests without a test: {names:?}");
}

#[test]
fn namespace_and_service_account() {
    let ns: Namespace = typed("namespace.yaml");
    assert_eq!(ns.metadata.name.as_deref(), Some(NAMESPACE));
    let sa: ServiceAccount = typed("serviceaccount.yaml");
    assert_eq!(sa.metadata.namespace.as_deref(), Some(NAMESPACE));
    assert_eq!(sa.metadata.name.as_deref(), Some("routegen"));
}

#[test]
fn cluster_role_is_least_privilege() {
    let role: ClusterRole = typed("clusterrole.yaml");
    let mut granted = BTreeSet::new();
    for rule in role.rules.unwrap_or_default() {
        assert!(rule.resource_names.is_none() && rule.non_resource_urls.is_none());
        for group in rule.api_groups.unwrap_or_default() {
            for resource in rule.resources.clone().unwrap_or_default() {
                for verb in &rule.verbs {
                    assert_ne!(verb, "*", "no wildcard verbs");
                    granted.insert(format!("{verb} {group}/{resource}"));
                }
            }
        }
    }
    let expected: BTreeSet<String> = [
        "get route.openshift.io/routes",
        "list route.openshift.io/routes",
        "watch route.openshift.io/routes",
        "patch route.openshift.io/routes/status",
        "list /services",
        "watch /services",
        "list /namespaces",
        "watch /namespaces",
        "list discovery.k8s.io/endpointslices",
        "watch discovery.k8s.io/endpointslices",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(granted, expected);
    assert!(!granted.iter().any(|g| g.contains("secrets")));

    let binding: ClusterRoleBinding = typed("clusterrolebinding.yaml");
    assert_eq!(binding.role_ref.kind, "ClusterRole");
    assert_eq!(
        Some(binding.role_ref.name.as_str()),
        role.metadata.name.as_deref()
    );
    let subjects = binding.subjects.unwrap_or_default();
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0].kind, "ServiceAccount");
    assert_eq!(subjects[0].name, "routegen");
    assert_eq!(subjects[0].namespace.as_deref(), Some(NAMESPACE));
}

fn container<'a>(containers: &'a [Container], name: &str) -> &'a Container {
    containers
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

#[test]
fn deployment_runs_haproxy_and_routegen_side_by_side() {
    let d: Deployment = typed("deployment.yaml");
    assert_eq!(d.metadata.namespace.as_deref(), Some(NAMESPACE));
    let spec = d.spec.unwrap();
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some("routegen"));
    let psc = pod.security_context.unwrap();
    assert_eq!(psc.run_as_non_root, Some(true));
    assert!(psc.run_as_user.unwrap_or(0) > 0);

    let containers = &pod.containers;
    assert_eq!(containers.len(), 2);
    let routegen = container(containers, "routegen");
    let haproxy = container(containers, "haproxy");

    // Shared emptyDirs, mounted at the same paths in both.
    let volumes = pod.volumes.unwrap_or_default();
    for v in &volumes {
        assert!(
            v.empty_dir.is_some(),
            "volume {} must be an emptyDir",
            v.name
        );
    }
    let mounts = |c: &Container| -> BTreeSet<(String, String)> {
        c.volume_mounts
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|m| (m.name, m.mount_path))
            .collect()
    };
    assert_eq!(mounts(routegen), mounts(haproxy));
    assert_eq!(mounts(routegen).len(), volumes.len());

    // routegen: the Kubernetes source, the tree and the master socket.
    let args = routegen.args.clone().unwrap_or_default();
    assert_eq!(args.first().map(String::as_str), Some("run"));
    assert!(args.contains(&"--source=kube".to_string()), "{args:?}");
    let out = "/var/lib/routegen/out";
    assert!(args.contains(&format!("--out={out}")), "{args:?}");
    let master = "/run/routegen/master.sock";
    assert!(
        args.contains(&format!("--reload=master-cli:{master}")),
        "{args:?}"
    );
    let probe_path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        p.as_ref()
            .and_then(|p| p.http_get.as_ref())
            .and_then(|h| h.path.clone())
    };
    assert_eq!(
        probe_path(&routegen.liveness_probe).as_deref(),
        Some("/healthz")
    );
    assert_eq!(
        probe_path(&routegen.readiness_probe).as_deref(),
        Some("/readyz")
    );

    // HAProxy: official image, pinned 2.x, master-worker on the tree.
    let image = haproxy.image.clone().unwrap();
    let tag = image
        .strip_prefix("haproxy:")
        .expect("official haproxy image");
    assert!(
        tag.starts_with("2.") && tag.split('.').count() == 3,
        "pin a 2.x.y tag: {image}"
    );
    let script = haproxy.args.clone().unwrap_or_default().join(" ");
    assert!(script.contains(&format!("-S {master}")), "{script}");
    assert!(script.contains("-W"), "{script}");
    // Both -f of a tree (haproxy.cfg, then the backends directory),
    // through the `current` symlink.
    assert!(
        script.contains(&format!("cfg={out}/current/haproxy.cfg"))
            && script.contains(&format!("backends={out}/current/backends"))
            && script.contains(r#"-f "$cfg" -f "$backends""#),
        "{script}"
    );
    assert!(
        script.contains("until"),
        "HAProxy waits for the first tree: {script}"
    );

    for c in containers {
        assert!(
            c.resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .is_some(),
            "{} requests",
            c.name
        );
        let sc = c.security_context.clone().unwrap();
        assert_eq!(sc.read_only_root_filesystem, Some(true), "{}", c.name);
        assert_eq!(sc.allow_privilege_escalation, Some(false), "{}", c.name);
        assert!(
            sc.capabilities
                .and_then(|c| c.drop)
                .unwrap_or_default()
                .contains(&"ALL".to_string()),
            "{} drops all capabilities",
            c.name
        );
    }

    // The image that validates (`haproxy -c`) is the image that serves.
    let dockerfile = std::fs::read_to_string(deploy_dir().join("Dockerfile")).unwrap();
    assert!(
        dockerfile
            .lines()
            .any(|l| l.trim() == format!("FROM {image} AS runtime")),
        "deploy/Dockerfile's runtime stage must be FROM {image}"
    );
    assert!(dockerfile.contains("USER 10001"), "non-root runtime user");
}

#[test]
fn service_targets_haproxy_ports() {
    let s: Service = typed("service.yaml");
    assert_eq!(s.metadata.namespace.as_deref(), Some(NAMESPACE));
    let d: Deployment = typed("deployment.yaml");
    let pod = d.spec.unwrap().template.spec.unwrap();
    let haproxy = container(&pod.containers, "haproxy");
    let port_names: BTreeSet<String> = haproxy
        .ports
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| p.name)
        .collect();
    for p in s.spec.unwrap().ports.unwrap_or_default() {
        match p.target_port {
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(name)) => {
                assert!(port_names.contains(&name), "{name}")
            }
            other => panic!("target ports by name: {other:?}"),
        }
    }
}

/// Tenants reach HAProxy's ports only; the operations listener (metrics:
/// Route names, certificate expiries) only from labelled namespaces.
#[test]
fn network_policy_keeps_tenants_off_the_operations_listener() {
    use k8s_openapi::api::networking::v1::NetworkPolicy;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let np: NetworkPolicy = typed("networkpolicy.yaml");
    assert_eq!(np.metadata.namespace.as_deref(), Some(NAMESPACE));
    let spec = np.spec.unwrap();
    let d: Deployment = typed("deployment.yaml");
    let template = d.spec.unwrap().template;
    let pod_labels = template.metadata.unwrap().labels.unwrap();
    for (k, v) in spec.pod_selector.clone().unwrap().match_labels.unwrap() {
        assert_eq!(pod_labels.get(&k), Some(&v), "selects the router pods");
    }
    assert_eq!(spec.policy_types, Some(vec!["Ingress".to_string()]));
    let pod = template.spec.unwrap();
    let named = |c: &str| -> BTreeSet<String> {
        container(&pod.containers, c)
            .ports
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| p.name)
            .collect()
    };
    let rules = spec.ingress.unwrap();
    let ports_of = |rule: &k8s_openapi::api::networking::v1::NetworkPolicyIngressRule| {
        rule.ports
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|p| match p.port {
                Some(IntOrString::String(name)) => name,
                other => panic!("ports by name: {other:?}"),
            })
            .collect::<BTreeSet<String>>()
    };
    let mut open = BTreeSet::new();
    for rule in &rules {
        let ports = ports_of(rule);
        if rule.from.is_none() {
            open.extend(ports.clone());
        } else {
            let from = rule.from.clone().unwrap();
            assert!(
                from.iter().all(|peer| peer.namespace_selector.is_some()
                    && peer.pod_selector.is_none()
                    && peer.ip_block.is_none()),
                "only labelled namespaces: {from:?}"
            );
        }
        for p in &ports {
            assert!(
                named("haproxy").contains(p) || named("routegen").contains(p),
                "{p} is a container port"
            );
        }
    }
    assert_eq!(
        open,
        BTreeSet::from(["http".to_string(), "https".to_string()]),
        "from anywhere: HAProxy's ports only"
    );
    assert!(named("routegen").contains("metrics"));
}

/// The image builds: the Dockerfile's Rust is the workspace's
/// `rust-version`, and every locked dependency accepts that version (a
/// dependency raising its own minimum in Cargo.lock breaks the image, as
/// parking_lot 0.13 needing 1.95 did with a 1.89 image).
#[test]
fn dockerfile_rust_is_the_msrv_and_every_locked_dependency_accepts_it() {
    let root = deploy_dir().parent().unwrap().to_path_buf();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let msrv = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("rust-version in the workspace Cargo.toml")
        .to_string();
    let dockerfile = std::fs::read_to_string(deploy_dir().join("Dockerfile")).unwrap();
    let image = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("FROM rust:"))
        .and_then(|l| l.split('-').next())
        .expect("a FROM rust:<version>-… build stage")
        .to_string();
    assert_eq!(image, msrv, "the image builds with the declared minimum");

    // Each locked package's own rust-version, from its manifest in the
    // cargo registry (the sources every build on this platform downloaded;
    // packages for other platforms are not there and not needed).
    // 1.89 and 1.89.0 are the same version.
    let version = |v: &str| -> [u64; 3] {
        let mut parts = [0; 3];
        for (slot, p) in parts.iter_mut().zip(v.split('.')) {
            *slot = p.parse().unwrap();
        }
        parts
    };
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo"));
    let sources: Vec<std::path::PathBuf> = std::fs::read_dir(cargo_home.join("registry/src"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap();
    let mut checked = 0;
    let mut too_new = Vec::new();
    for package in lock.split("[[package]]").skip(1) {
        let field = |name: &str| {
            package.lines().find_map(|l| {
                l.strip_prefix(&format!("{name} = \""))
                    .and_then(|v| v.strip_suffix('"'))
                    .map(str::to_string)
            })
        };
        let (Some(name), Some(ver)) = (field("name"), field("version")) else {
            continue;
        };
        let Some(toml) = sources
            .iter()
            .map(|s| s.join(format!("{name}-{ver}/Cargo.toml")))
            .find(|p| p.is_file())
        else {
            continue;
        };
        checked += 1;
        let text = std::fs::read_to_string(toml).unwrap();
        let needs = text.lines().find_map(|l| {
            l.strip_prefix("rust-version = \"")
                .and_then(|v| v.strip_suffix('"'))
                .map(str::to_string)
        });
        if let Some(needs) = needs {
            if version(&needs) > version(&msrv) {
                too_new.push(format!("{name} {ver} needs {needs}"));
            }
        }
    }
    assert!(
        checked > 50,
        "the registry sources are where cargo keeps them"
    );
    assert!(
        too_new.is_empty(),
        "rust-version {msrv} is too old: {too_new:?}"
    );
}

#[test]
fn route_crd_is_generated_from_the_model() {
    let crd = routegen_k8s::crd::route_crd();
    let path = deploy_dir().join("crd-route.yaml");
    if std::env::var_os("ROUTEGEN_UPDATE_CRD").is_some() {
        let yaml = serde_saphyr::to_string(&crd).unwrap();
        std::fs::write(&path, format!("{CRD_HEADER}{yaml}")).unwrap();
    }
    let file: CustomResourceDefinition = typed("crd-route.yaml");
    assert_eq!(
        serde_json::to_value(&file).unwrap(),
        serde_json::to_value(&crd).unwrap(),
        "deploy/crd-route.yaml is stale; regenerate: ROUTEGEN_UPDATE_CRD=1 cargo test --test deploy_manifests route_crd"
    );
    let version = &file.spec.versions[0];
    assert!(
        version
            .subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some(),
        "the status subresource (routes/status) exists"
    );
}
