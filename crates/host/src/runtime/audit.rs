//! Audit: does the running HAProxy hold what routegen believes it holds?
//! [`drift`] compares the model ([`RuntimeState`], what the files and the
//! live changes say) with what [`observe`](super::observe()) reads back.
//!
//! Compared: every server of every backend of the model (id, address,
//! port, weight, not in maintenance), servers HAProxy has in a modelled
//! backend that the model lacks (unless in maintenance: removed servers
//! still draining), the entries of every map, and the names of the loaded
//! certificates (the contents are checked by HAProxy when set). Not
//! compared: health (timing decides it), backends the model does not have
//! (`be_no_route`, `be_terminate`), the crt-list's formatting and CA files.

use routegen_render::haproxy::runtime::RuntimeState;

use super::{AdminState, Observed};

/// The differences between `model` and `observed`, one line each (empty:
/// none).
pub fn drift(model: &RuntimeState, observed: &Observed) -> Vec<String> {
    let mut out = Vec::new();
    let empty = Default::default();
    for (name, backend) in &model.backends {
        let seen = observed.servers.get(&**name).unwrap_or(&empty);
        for (server, line) in &backend.servers {
            let Some(s) = seen.get(server) else {
                out.push(format!("server {name}/{server} missing"));
                continue;
            };
            let address = line.args.split(' ').next().unwrap_or_default();
            let observed_address = match s.address.contains(':') {
                true => format!("[{}]:{}", s.address, s.port),
                false => format!("{}:{}", s.address, s.port),
            };
            if s.id != line.id
                || u32::from(line.weight) != s.weight
                || s.admin != AdminState::Ready
                || observed_address != address
            {
                out.push(format!(
                    "server {name}/{server}: HAProxy has id {} {observed_address} weight {} {:?}, the files say id {} {address} weight {}",
                    s.id, s.weight, s.admin, line.id, line.weight
                ));
            }
        }
        for (server, s) in seen {
            if !backend.servers.contains_key(server) && s.admin != AdminState::Maint {
                out.push(format!("server {name}/{server} serves but is in no file"));
            }
        }
    }
    for (map, entries) in &model.maps {
        let want: Vec<(String, String)> = entries
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        match observed.maps.get(map) {
            Some(have) if *have == want => {}
            Some(have) => {
                let extra = have.iter().filter(|e| !want.contains(e)).count();
                let missing = want.iter().filter(|e| !have.contains(e)).count();
                out.push(format!(
                    "map {map}: {missing} entries missing, {extra} not in the file"
                ));
            }
            None => out.push(format!("map {map} not loaded")),
        }
    }
    let loaded: Vec<&String> = observed
        .certs
        .keys()
        .filter(|name| !name.starts_with('*'))
        .collect();
    let want: Vec<&String> = model.certs.keys().collect();
    if loaded != want {
        out.push(format!(
            "certificates: HAProxy has {} (not in the files: {:?}), the files {} (not loaded: {:?})",
            loaded.len(),
            loaded.iter().filter(|c| !want.contains(c)).take(5).collect::<Vec<_>>(),
            want.len(),
            want.iter().filter(|c| !loaded.contains(c)).take(5).collect::<Vec<_>>()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::ServerState;
    use routegen_render::output::{OutputFile, OutputTree};

    fn model() -> RuntimeState {
        let mut t = OutputTree::new();
        t.insert(
            "backends/routes-000.cfg".into(),
            OutputFile::public(
                "# route ns/a host a path - termination http\nbackend be_a\n  mode http\n  server s1 10.0.0.1:80 id 7 weight 2\n  server s6 [fd00::1]:80 id 8 weight 1\n",
            ),
        );
        t.insert("maps/http.map".into(), OutputFile::public("a/ be_a\n"));
        t.insert("certs/default.pem".into(), OutputFile::secret("x"));
        RuntimeState::of_tree(&t).unwrap()
    }

    fn observed() -> Observed {
        let server = |id, address: &str, weight| ServerState {
            id,
            address: address.into(),
            port: 80,
            admin: AdminState::Ready,
            weight,
        };
        let mut o = Observed::default();
        o.servers.insert(
            "be_a".into(),
            [
                ("s1".to_string(), server(7, "10.0.0.1", 2)),
                ("s6".to_string(), server(8, "fd00::1", 1)),
            ]
            .into_iter()
            .collect(),
        );
        o.maps
            .insert("maps/http.map".into(), vec![("a/".into(), "be_a".into())]);
        o.certs
            .insert("certs/default.pem".into(), Default::default());
        o
    }

    #[test]
    fn equal_has_no_drift() {
        assert_eq!(drift(&model(), &observed()), Vec::<String>::new());
    }

    #[test]
    fn each_difference_is_named() {
        let mut o = observed();
        o.servers
            .get_mut("be_a")
            .unwrap()
            .get_mut("s1")
            .unwrap()
            .weight = 3;
        let mut draining = o.servers["be_a"]["s1"].clone();
        draining.admin = AdminState::Maint;
        o.servers
            .get_mut("be_a")
            .unwrap()
            .insert("old".into(), draining.clone());
        let mut stray = draining;
        stray.admin = AdminState::Ready;
        o.servers
            .get_mut("be_a")
            .unwrap()
            .insert("stray".into(), stray);
        o.maps
            .get_mut("maps/http.map")
            .unwrap()
            .push(("b/".into(), "be_a".into()));
        o.certs.insert("certs/x.pem".into(), Default::default());
        let d = drift(&model(), &o);
        assert_eq!(d.len(), 4, "{d:#?}");
        assert!(d[0].starts_with("server be_a/s1: HAProxy has id 7 10.0.0.1:80 weight 3"));
        assert_eq!(d[1], "server be_a/stray serves but is in no file");
        assert_eq!(
            d[2],
            "map maps/http.map: 0 entries missing, 1 not in the file"
        );
        assert!(d[3].starts_with("certificates: HAProxy has 2"));
    }
}
