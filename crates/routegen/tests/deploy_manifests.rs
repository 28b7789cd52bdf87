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
const CRD_HEADER: &str = "# Generated from the Route CustomResource derive (crates/core/src/model/route.rs)\n# with openshift/api's validation and printer columns (crates/k8s/src/crd/openshift.rs):\n# ROUTEGEN_UPDATE_CRD=1 cargo test --test deploy_manifests route_crd\n# For clusters without OpenShift's Route API (development, tests).\n";

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
    typed_value(name, &read_yaml(name))
}

/// [`typed`] for one document `raw` of the file `name`.
fn typed_value<T: DeserializeOwned + Serialize>(name: &str, raw: &Value) -> T {
    let raw = raw.clone();
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
    let mut names = BTreeSet::new();
    for dir in ["", "optional/"] {
        for e in std::fs::read_dir(deploy_dir().join(dir)).unwrap() {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            if n.ends_with(".yaml") || n.ends_with(".yml") {
                names.insert(format!("{dir}{n}"));
            }
        }
    }
    for known in [
        "namespace.yaml",
        "serviceaccount.yaml",
        "clusterrole.yaml",
        "clusterrolebinding.yaml",
        "service.yaml",
        "deployment.yaml",
        "crd-route.yaml",
        "networkpolicy.yaml",
        "poddisruptionbudget.yaml",
        "optional/namespace-selector-rbac.yaml",
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

/// Every `verb group/resource` a ClusterRole grants (no wildcards, no
/// resource names).
fn grants(role: &ClusterRole) -> BTreeSet<String> {
    let mut granted = BTreeSet::new();
    for rule in role.rules.clone().unwrap_or_default() {
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
    granted
}

/// The binding gives `role` to routegen's ServiceAccount, and only to it.
fn assert_binds_to_routegen(binding: &ClusterRoleBinding, role: &ClusterRole) {
    assert_eq!(binding.role_ref.kind, "ClusterRole");
    assert_eq!(
        Some(binding.role_ref.name.as_str()),
        role.metadata.name.as_deref()
    );
    let subjects = binding.subjects.clone().unwrap_or_default();
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0].kind, "ServiceAccount");
    assert_eq!(subjects[0].name, "routegen");
    assert_eq!(subjects[0].namespace.as_deref(), Some(NAMESPACE));
}

/// Namespaces are read only with `--namespace-selector`: that grant is
/// its own ClusterRole and binding, in one optional file.
#[test]
fn namespace_selector_rbac_is_optional_and_grants_namespaces_only() {
    let path = deploy_dir().join("optional/namespace-selector-rbac.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let documents: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    assert_eq!(documents.len(), 2, "a ClusterRole and its binding");
    let role: ClusterRole = typed_value("optional/namespace-selector-rbac.yaml", &documents[0]);
    let binding: ClusterRoleBinding =
        typed_value("optional/namespace-selector-rbac.yaml", &documents[1]);
    assert_eq!(
        grants(&role),
        BTreeSet::from([
            "list /namespaces".to_string(),
            "watch /namespaces".to_string()
        ])
    );
    assert_binds_to_routegen(&binding, &role);
    let base: ClusterRole = typed("clusterrole.yaml");
    assert_ne!(role.metadata.name, base.metadata.name, "a role of its own");
    let readme = std::fs::read_to_string(deploy_dir().join("README.md")).unwrap();
    assert!(
        readme.contains("optional/namespace-selector-rbac.yaml"),
        "deploy/README.md says when to apply it"
    );
}

#[test]
fn pod_disruption_budget_keeps_one_router_up() {
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let pdb: PodDisruptionBudget = typed("poddisruptionbudget.yaml");
    assert_eq!(pdb.metadata.namespace.as_deref(), Some(NAMESPACE));
    let spec = pdb.spec.unwrap();
    assert_eq!(spec.min_available, Some(IntOrString::Int(1)));
    assert!(spec.max_unavailable.is_none());
    let d: Deployment = typed("deployment.yaml");
    let d = d.spec.unwrap();
    assert!(
        d.replicas.unwrap_or(1) > 1,
        "minAvailable 1 with one replica would block every drain"
    );
    let pod_labels = d.template.metadata.unwrap().labels.unwrap();
    let selector = spec.selector.unwrap().match_labels.unwrap();
    assert!(!selector.is_empty());
    for (k, v) in selector {
        assert_eq!(pod_labels.get(&k), Some(&v), "selects the router pods");
    }
}

#[test]
fn cluster_role_is_least_privilege() {
    let role: ClusterRole = typed("clusterrole.yaml");
    let granted = grants(&role);
    let expected: BTreeSet<String> = [
        "get route.openshift.io/routes",
        "list route.openshift.io/routes",
        "watch route.openshift.io/routes",
        "patch route.openshift.io/routes/status",
        "list /services",
        "watch /services",
        "list discovery.k8s.io/endpointslices",
        "watch discovery.k8s.io/endpointslices",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(granted, expected);
    assert!(!granted.iter().any(|g| g.contains("secrets")));

    let binding: ClusterRoleBinding = typed("clusterrolebinding.yaml");
    assert_binds_to_routegen(&binding, &role);
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

    // Shared emptyDirs, mounted at the same paths in both; the projected
    // ServiceAccount credentials in routegen only.
    let volumes = pod.volumes.clone().unwrap_or_default();
    let shared: BTreeSet<&str> = volumes
        .iter()
        .filter(|v| v.empty_dir.is_some())
        .map(|v| v.name.as_str())
        .collect();
    let mounts = |c: &Container| -> BTreeSet<(String, String)> {
        c.volume_mounts
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|m| (m.name, m.mount_path))
            .collect()
    };
    let shared_mounts = |c: &Container| -> BTreeSet<(String, String)> {
        mounts(c)
            .into_iter()
            .filter(|(name, _)| shared.contains(name.as_str()))
            .collect()
    };
    assert_eq!(shared_mounts(routegen), shared_mounts(haproxy));
    assert_eq!(shared_mounts(routegen).len(), shared.len());
    assert_eq!(
        mounts(haproxy),
        shared_mounts(haproxy),
        "HAProxy mounts the shared emptyDirs only"
    );
    assert_eq!(volumes.len(), shared.len() + 1, "{volumes:?}");

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

    assert_eq!(
        probe_path(&routegen.startup_probe).as_deref(),
        Some("/readyz"),
        "started means ready once, not merely alive"
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

/// The internet-facing HAProxy container holds no ServiceAccount token;
/// routegen gets a projected one at the path the kube client's in-cluster
/// configuration reads (token, cluster CA, namespace).
#[test]
fn service_account_token_reaches_routegen_only() {
    let d: Deployment = typed("deployment.yaml");
    let pod = d.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.automount_service_account_token, Some(false));
    let volumes = pod.volumes.clone().unwrap_or_default();
    let token_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
    let mount_of = |c: &Container| {
        c.volume_mounts
            .clone()
            .unwrap_or_default()
            .into_iter()
            .find(|m| m.mount_path == token_dir)
    };
    let routegen = container(&pod.containers, "routegen");
    let haproxy = container(&pod.containers, "haproxy");
    let mount = mount_of(routegen).expect("routegen mounts the token");
    assert_eq!(mount.read_only, Some(true));

    let volume = volumes
        .iter()
        .find(|v| v.name == mount.name)
        .expect("the mounted volume exists");
    let sources = volume
        .projected
        .as_ref()
        .expect("a projected volume")
        .sources
        .clone()
        .unwrap_or_default();
    let mut items = BTreeSet::new();
    for source in &sources {
        if let Some(t) = &source.service_account_token {
            assert!(t.audience.is_none(), "the API server's own audience");
            items.insert(format!("token:{}", t.path));
        }
        if let Some(c) = &source.config_map {
            assert_eq!(c.name, "kube-root-ca.crt");
            for i in c.items.clone().unwrap_or_default() {
                items.insert(format!("configmap:{}->{}", i.key, i.path));
            }
        }
        if let Some(d) = &source.downward_api {
            for i in d.items.clone().unwrap_or_default() {
                let field = i.field_ref.map(|f| f.field_path).unwrap_or_default();
                items.insert(format!("downward:{field}->{}", i.path));
            }
        }
        assert!(source.secret.is_none(), "no Secret in the credentials");
    }
    assert_eq!(
        items,
        BTreeSet::from([
            "token:token".to_string(),
            "configmap:ca.crt->ca.crt".to_string(),
            "downward:metadata.namespace->namespace".to_string(),
        ])
    );

    // HAProxy: no mount of that volume, nothing at the token path, no
    // projected or Secret volume at all, no Secret in its environment.
    assert!(mount_of(haproxy).is_none());
    for m in haproxy.volume_mounts.clone().unwrap_or_default() {
        let v = volumes.iter().find(|v| v.name == m.name).unwrap();
        assert!(
            v.empty_dir.is_some(),
            "HAProxy mounts {} ({v:?}): only the shared emptyDirs",
            m.name
        );
    }
    assert!(haproxy.env_from.is_none());
    for e in haproxy.env.clone().unwrap_or_default() {
        assert!(
            e.value_from.and_then(|v| v.secret_key_ref).is_none(),
            "{}",
            e.name
        );
    }
}

/// The startupProbe asks for readiness (first sync applied, HAProxy
/// serving), with room for a cold start at 10,000 Routes: about 8 s
/// measured (BENCHMARKS.md), allowed 10 times over and more, and not
/// longer than HAProxy's container waits for the first tree (600 s).
#[test]
fn startup_probe_waits_for_readiness_long_enough_for_10k_routes() {
    let d: Deployment = typed("deployment.yaml");
    let pod = d.spec.unwrap().template.spec.unwrap();
    let routegen = container(&pod.containers, "routegen");
    let probe = routegen.startup_probe.clone().expect("a startupProbe");
    assert_eq!(
        probe.http_get.as_ref().and_then(|h| h.path.as_deref()),
        Some("/readyz")
    );
    let window = probe.period_seconds.unwrap_or(10) * probe.failure_threshold.unwrap_or(3);
    assert!(
        (120..=600).contains(&window),
        "startup window {window} s: at least 120 s (10k cold start ~8 s), at most HAProxy's 600 s wait"
    );
    let text = std::fs::read_to_string(deploy_dir().join("deployment.yaml")).unwrap();
    assert!(
        text.contains("startupProbe:") && text.contains("BENCHMARKS.md: cold full render"),
        "a comment says why the window is what it is"
    );
}

/// A value of the sizing table in deploy/README.md, in MiB: `87 MiB`,
/// `1152Mi`, `**128Mi**`.
fn mib(cell: &str) -> u64 {
    let cell = cell.trim().trim_matches('*');
    let number = cell
        .strip_suffix(" MiB")
        .or_else(|| cell.strip_suffix("Mi"))
        .unwrap_or_else(|| panic!("deploy/README.md: not a MiB figure: {cell:?}"));
    number
        .replace(',', "")
        .parse()
        .unwrap_or_else(|e| panic!("{cell:?}: {e}"))
}

/// The rows of the "Sizing" table: label → [1k, 10k, 100k] in MiB.
fn sizing_table() -> std::collections::BTreeMap<String, [u64; 3]> {
    let readme = std::fs::read_to_string(deploy_dir().join("README.md")).unwrap();
    let section = readme
        .split("## Sizing")
        .nth(1)
        .expect("deploy/README.md has a Sizing section");
    let mut rows = std::collections::BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // "", label, 1k, 10k, 100k, source, ""
        let is_mib = |c: &str| c.trim_matches('*').ends_with("Mi") || c.ends_with(" MiB");
        if cells.len() < 6 || !is_mib(cells[2]) {
            continue;
        }
        let label = cells[1].trim_matches('*').to_string();
        rows.insert(label, [mib(cells[2]), mib(cells[3]), mib(cells[4])]);
    }
    rows
}

fn memory_mib(q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity) -> u64 {
    let s = &q.0;
    if let Some(g) = s.strip_suffix("Gi") {
        g.parse::<u64>().unwrap() * 1024
    } else {
        s.strip_suffix("Mi")
            .unwrap_or_else(|| panic!("memory in Mi or Gi: {s}"))
            .parse()
            .unwrap()
    }
}

/// Memory limits and the key volume's size come from BENCHMARKS.md's
/// figures by the rules deploy/README.md states, for every fleet size, and
/// the manifests ship the 10,000-Route column.
#[test]
fn memory_is_sized_from_the_benchmarks_for_10k_routes() {
    let table = sizing_table();
    let row = |label: &str| -> [u64; 3] {
        *table
            .iter()
            .find(|(l, _)| l.starts_with(label))
            .unwrap_or_else(|| panic!("deploy/README.md sizing row {label:?}: {table:?}"))
            .1
    };
    let round = |mib: u64| -> u64 {
        if mib <= 16 {
            16
        } else {
            mib.div_ceil(128) * 128
        }
    };
    let rss = row("routegen RSS, peak");
    let check = row("`haproxy -c` of the tree");
    let tree = row("output tree");
    let loaded = row("HAProxy RSS, tree loaded");
    let size_limit = row("`tree` emptyDir sizeLimit");
    let routegen_limit = row("routegen memory limit");
    let haproxy_limit = row("HAProxy memory limit");
    for i in 0..3 {
        assert_eq!(size_limit[i], round(7 * tree[i]), "sizeLimit, column {i}");
        let sum = rss[i] + check[i] + size_limit[i];
        assert_eq!(
            routegen_limit[i],
            round((sum * 5).div_ceil(4)),
            "routegen limit, column {i}"
        );
        assert_eq!(
            haproxy_limit[i],
            round(2 * loaded[i] + 256),
            "HAProxy limit, column {i}"
        );
    }
    // 10k figures as BENCHMARKS.md states them.
    let benchmarks =
        std::fs::read_to_string(deploy_dir().parent().unwrap().join("BENCHMARKS.md")).unwrap();
    for figure in [
        "s / 336 MiB |",
        "441 MiB (listening",
        "1735 files, 10 MiB",
        "137 / 142 MiB",
    ] {
        assert!(benchmarks.contains(figure), "BENCHMARKS.md: {figure}");
    }
    assert_eq!((check[1], loaded[1], tree[1], rss[1]), (336, 441, 10, 142));

    // The manifests: the 10k column.
    let d: Deployment = typed("deployment.yaml");
    let pod = d.spec.unwrap().template.spec.unwrap();
    let limit = |name: &str| -> u64 {
        let c = container(&pod.containers, name);
        let limits = c.resources.clone().unwrap().limits.unwrap();
        memory_mib(limits.get("memory").expect("a memory limit"))
    };
    assert_eq!(limit("routegen"), routegen_limit[1]);
    assert_eq!(limit("haproxy"), haproxy_limit[1]);
    let volumes = pod.volumes.unwrap();
    let tree_volume = volumes.iter().find(|v| v.name == "tree").unwrap();
    let empty_dir = tree_volume.empty_dir.clone().unwrap();
    assert_eq!(
        empty_dir.medium.as_deref(),
        Some("Memory"),
        "private keys stay off the node's disk"
    );
    assert_eq!(
        memory_mib(&empty_dir.size_limit.expect("a sizeLimit")),
        size_limit[1]
    );
    let text = std::fs::read_to_string(deploy_dir().join("deployment.yaml")).unwrap();
    assert!(
        text.contains("deploy/README.md, \"Sizing\""),
        "the manifest points at the table"
    );
}

/// The schema of the Route CRD's `spec.versions[0]` as JSON.
fn route_schema() -> (Value, Value) {
    let crd = serde_json::to_value(routegen_k8s::crd::route_crd()).unwrap();
    let version = crd["spec"]["versions"][0].clone();
    let schema = version["schema"]["openAPIV3Schema"].clone();
    (version, schema)
}

fn field<'a>(schema: &'a Value, path: &str) -> &'a Value {
    let mut node = schema;
    for step in path.split('.') {
        node = if step == "[]" {
            &node["items"]
        } else {
            &node["properties"][step]
        };
        assert!(!node.is_null(), "CRD schema: no {path}");
    }
    node
}

/// Checks `value` against the structural keywords of `schema` (type-free
/// ones: enum, pattern, lengths, bounds, required, properties, items);
/// CEL rules are the API server's. Errors name the field.
fn validate(schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            errors.push(format!("{at}: {value} not in {allowed:?}"));
        }
    }
    if let (Some(p), Some(s)) = (schema["pattern"].as_str(), value.as_str()) {
        if !regex::Regex::new(p).unwrap().is_match(s) {
            errors.push(format!("{at}: {s:?} does not match {p}"));
        }
    }
    if let Some(s) = value.as_str() {
        let n = s.chars().count() as u64;
        if schema["maxLength"].as_u64().is_some_and(|m| n > m)
            || schema["minLength"].as_u64().is_some_and(|m| n < m)
        {
            errors.push(format!("{at}: length {n} out of bounds"));
        }
    }
    if let Some(n) = value.as_f64() {
        if schema["minimum"].as_f64().is_some_and(|m| n < m)
            || schema["maximum"].as_f64().is_some_and(|m| n > m)
        {
            errors.push(format!("{at}: {n} out of bounds"));
        }
    }
    if let Some(items) = value.as_array() {
        if schema["maxItems"]
            .as_u64()
            .is_some_and(|m| items.len() as u64 > m)
        {
            errors.push(format!("{at}: more than {} items", schema["maxItems"]));
        }
        for (i, item) in items.iter().enumerate() {
            validate(&schema["items"], item, &format!("{at}[{i}]"), errors);
        }
    }
    if let Some(object) = value.as_object() {
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap();
            // A field with a default is filled in before validation.
            let defaulted = !schema["properties"][name]["default"].is_null();
            if !object.contains_key(name) && !defaulted {
                errors.push(format!("{at}.{name}: required"));
            }
        }
        for (name, v) in object {
            let sub = &schema["properties"][name];
            if !sub.is_null() {
                validate(sub, v, &format!("{at}.{name}"), errors);
            }
        }
    }
}

/// The Route CRD validates as openshift/api's does: printer columns,
/// enums, patterns, lengths and CEL rules, no derived `nullable` or
/// `default` that would contradict them, and the fields the derive skips
/// (`httpHeaders`, `tls.externalCertificate`) present so the API server
/// does not prune them. The example Routes pass it.
#[test]
fn route_crd_validates_as_openshift_api_does() {
    let (version, schema) = route_schema();
    let columns: Vec<(String, String)> = version["additionalPrinterColumns"]
        .as_array()
        .expect("printer columns")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["jsonPath"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (name, path) in [
        ("Host", ".status.ingress[0].host"),
        ("Path", ".spec.path"),
        ("Service", ".spec.to.name"),
        ("Port", ".spec.port.targetPort"),
        ("Termination", ".spec.tls.termination"),
        ("Wildcard", ".spec.wildcardPolicy"),
    ] {
        assert!(
            columns.contains(&(name.to_string(), path.to_string())),
            "column {name} ({path}): {columns:?}"
        );
    }

    let enum_of = |path: &str| -> Vec<String> {
        field(&schema, path)["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: no enum"))
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        enum_of("spec.tls.termination"),
        ["edge", "reencrypt", "passthrough"]
    );
    assert_eq!(
        enum_of("spec.tls.insecureEdgeTerminationPolicy"),
        ["Allow", "None", "Redirect", ""]
    );
    assert_eq!(enum_of("spec.wildcardPolicy"), ["None", "Subdomain", ""]);
    assert_eq!(enum_of("spec.to.kind"), ["Service", ""]);
    assert_eq!(enum_of("spec.alternateBackends.[].kind"), ["Service", ""]);
    for path in ["spec.host", "spec.subdomain"] {
        let f = field(&schema, path);
        assert_eq!(f["maxLength"], 253, "{path}");
        let re = regex::Regex::new(f["pattern"].as_str().unwrap()).unwrap();
        assert!(re.is_match("www.example.com") && re.is_match("a"), "{path}");
        for bad in [
            "-a.example.com",
            "a..b",
            "a_b.com",
            "*.example.com",
            "a.com.",
        ] {
            assert!(!re.is_match(bad), "{path} refuses {bad}");
        }
    }
    assert_eq!(field(&schema, "spec.path")["pattern"], "^/");
    assert_eq!(field(&schema, "spec.alternateBackends")["maxItems"], 3);
    assert_eq!(
        field(&schema, "spec.to.weight")["maximum"].as_f64(),
        Some(256.0)
    );
    assert_eq!(field(&schema, "spec.to.name")["minLength"], 1);
    assert_eq!(
        field(&schema, "spec.httpHeaders.actions.request.[].name")["maxLength"],
        255
    );
    assert!(field(&schema, "spec.tls.externalCertificate.name").is_object());

    let messages = |path: &str| -> Vec<String> {
        field(&schema, path)["x-kubernetes-validations"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: no x-kubernetes-validations"))
            .iter()
            .map(|r| {
                assert!(r["rule"].is_string());
                r["message"].as_str().unwrap().to_string()
            })
            .collect()
    };
    let tls = messages("spec.tls").join("\n");
    assert!(tls.contains("passthrough and spec.tls.insecureEdgeTerminationPolicy: Allow"));
    assert!(tls.contains("spec.tls.certificate and spec.tls.externalCertificate"));
    let spec = messages("spec").join("\n");
    assert!(spec.contains("header actions are not permitted"), "{spec}");
    assert!(messages("spec.httpHeaders.actions.response.[].name")
        .iter()
        .any(|m| m.starts_with("set-cookie")));

    // No derived `nullable`; every pattern compiles (RE2 syntax, as the
    // API server's Go regexp); every default satisfies its own schema.
    fn walk(node: &Value, at: &str, errors: &mut Vec<String>) {
        if let Some(map) = node.as_object() {
            if map.contains_key("nullable") {
                errors.push(format!("{at}: nullable"));
            }
            if let Some(p) = map.get("pattern").and_then(Value::as_str) {
                if let Err(e) = regex::Regex::new(p) {
                    errors.push(format!("{at}: pattern: {e}"));
                }
            }
            if let Some(default) = map.get("default") {
                validate(node, default, &format!("{at} (default)"), errors);
            }
            for (k, v) in map {
                walk(v, &format!("{at}.{k}"), errors);
            }
        } else if let Some(items) = node.as_array() {
            for v in items {
                walk(v, at, errors);
            }
        }
    }
    let mut errors = Vec::new();
    walk(&schema, "", &mut errors);
    assert!(errors.is_empty(), "{errors:#?}");

    // Every example Route (the rejected squatter too: it is valid API
    // input, refused by host ownership) passes the structural rules.
    let examples = deploy_dir().parent().unwrap().join("examples");
    let mut routes = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let documents: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
        for doc in documents.into_iter().filter(|d| d["kind"] == "Route") {
            routes += 1;
            let mut errors = Vec::new();
            validate(&schema, &doc, "", &mut errors);
            assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
        }
    }
    assert!(routes >= 6, "{routes} example Routes");

    // And it refuses what openshift/api refuses.
    let bad = serde_json::json!({"spec": {
        "host": "-bad.example.com",
        "to": {"kind": "Deployment", "name": "", "weight": 300},
        "tls": {"termination": "Edge", "insecureEdgeTerminationPolicy": "Disable"},
        "wildcardPolicy": "All",
    }});
    let mut errors = Vec::new();
    validate(&schema, &bad, "", &mut errors);
    let errors = errors.join("\n");
    for f in [
        ".spec.host:",
        ".spec.to.kind:",
        ".spec.to.name:",
        ".spec.to.weight:",
        ".spec.tls.termination:",
        ".spec.tls.insecureEdgeTerminationPolicy:",
        ".spec.wildcardPolicy:",
    ] {
        assert!(errors.contains(f), "{f} refused: {errors}");
    }
}
