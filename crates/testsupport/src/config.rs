//! The HAProxy configuration of a rendered tree as HAProxy reads it:
//! `haproxy -c -f <tree>/haproxy.cfg -f <tree>/backends` loads `haproxy.cfg`
//! (global, defaults, frontends), then every `backends/*.cfg` (the backend
//! sections: `default.cfg`, `routes-NNN.cfg`) in lexical order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `backends/<name>.cfg` (one level: HAProxy does not descend further).
pub fn is_backend_file(path: &str) -> bool {
    path.strip_prefix("backends/")
        .is_some_and(|name| name.ends_with(".cfg") && !name.contains('/'))
}

/// The whole configuration text of a tree given as (relative path, bytes)
/// pairs: `haproxy.cfg` followed by `backends/*.cfg` in lexical order.
pub fn whole_config_from<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut main = None;
    let mut backends = BTreeMap::new();
    for (path, contents) in files {
        if path == "haproxy.cfg" {
            main = Some(contents);
        } else if is_backend_file(path) {
            backends.insert(path, contents);
        }
    }
    let mut text = String::from_utf8_lossy(main.expect("the tree has haproxy.cfg")).into_owned();
    for contents in backends.values() {
        text.push_str(&String::from_utf8_lossy(contents));
    }
    text
}

/// [`whole_config_from`] of an in-memory tree (relative path → bytes).
pub fn whole_config_of<V: AsRef<[u8]>>(tree: &BTreeMap<String, V>) -> String {
    whole_config_from(tree.iter().map(|(p, c)| (p.as_str(), c.as_ref())))
}

/// [`whole_config_from`] of a rendered [`routegen_render::output::OutputTree`].
pub fn whole_config_of_tree(tree: &routegen_render::output::OutputTree) -> String {
    whole_config_from(tree.iter().map(|(p, f)| (p.as_str(), &f.contents[..])))
}

/// The whole configuration text of the tree in `dir` (a directory or a
/// symlink to one, such as `<out>/current`): `haproxy.cfg` followed by
/// `backends/*.cfg` in lexical order.
pub fn whole_config(dir: &Path) -> String {
    let mut text = std::fs::read_to_string(dir.join("haproxy.cfg"))
        .unwrap_or_else(|e| panic!("{}/haproxy.cfg: {e}", dir.display()));
    for path in backend_paths(dir) {
        text.push_str(&std::fs::read_to_string(&path).unwrap());
    }
    text
}

/// The `backends/*.cfg` files of the tree in `dir`, in lexical order.
pub fn backend_paths(dir: &Path) -> Vec<PathBuf> {
    let backends = dir.join("backends");
    let Ok(entries) = std::fs::read_dir(&backends) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "cfg"))
        .collect();
    paths.sort();
    paths
}

/// `-f <dir>/haproxy.cfg -f <dir>/backends` (the backends only when the
/// tree has them), as `routegen` itself passes them.
pub fn haproxy_f_args(dir: &Path) -> Vec<std::ffi::OsString> {
    let mut args = Vec::new();
    for path in routegen_host::apply::haproxy_config_paths(dir) {
        args.push("-f".into());
        args.push(path.into_os_string());
    }
    args
}

/// `<bin> -c -f <dir>/haproxy.cfg -f <dir>/backends`, from `/` (the tree
/// must be self-contained through `default-path`).
pub fn haproxy_c(bin: &Path, dir: &Path) -> Output {
    Command::new(bin)
        .arg("-c")
        .args(haproxy_f_args(dir))
        .current_dir("/")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()))
}

/// `<bin> -t` on the nginx tree in `dir` (`<dir>/nginx.conf`) with a fresh
/// scratch prefix (`-p`: pid file and temporary directories), so it runs
/// as any user; the tree's `--run-dir` must exist (`nginx -t` binds its
/// sockets). `Err`: nginx's output.
pub fn nginx_t(bin: &Path, dir: &Path) -> Result<(), String> {
    routegen_host::apply::validate_nginx(bin, &dir.join("nginx.conf")).map_err(|e| {
        format!(
            "cannot run nginx (install it: apt-get install nginx-light libnginx-mod-stream): {e}"
        )
    })?
}

/// A minimal tree laid out as routegen writes one: global, defaults and a
/// frontend in `haproxy.cfg`, its backend (with `body`) in
/// `backends/routes-000.cfg`, and one secret file. Valid only when both
/// configuration paths are loaded.
pub fn minimal_tree(body: &str) -> routegen_render::output::OutputTree {
    use routegen_render::output::OutputFile;
    let mut t = routegen_render::output::OutputTree::new();
    t.insert(
        "haproxy.cfg".into(),
        OutputFile::public(
            "global\n    default-path config\ndefaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\nfrontend fe\n    bind 127.0.0.1:1\n    default_backend be\n",
        ),
    );
    t.insert(
        "backends/routes-000.cfg".into(),
        OutputFile::public(format!("backend be\n{body}")),
    );
    t.insert("certs/key.pem".into(), OutputFile::secret("secret\n"));
    t
}
