//! `haproxy`: on every balancer, HAProxy's own view of its backends, from its statistics
//! page (`listen stats` of the configuration the running `haproxy` was started with, read in
//! CSV over loopback): the writer backend has exactly one server up, the leader, and the
//! reader backend has the streaming replicas up. Without a statistics page there is nothing
//! to read: a failure that says how to add one (`stats:` of the `haproxy` module).

use super::{value, Finding, Gathered, Kind, Options, Outcome, Role};

pub(crate) const KIND: Kind = Kind {
    name: "haproxy",
    about: "writer backend: only the leader up; reader backend: the replicas up",
    probe: Some((Role::Balancer, probe)),
    evaluate,
};

fn probe() -> String {
    // The configuration of the running master process, its `listen stats` section's
    // `bind` and `stats uri`.
    "cfg=$(ps -o args= -C haproxy 2>/dev/null | head -n1 | sed -n 's/.* -f \\([^ ]*\\).*/\\1/p'); \
     echo \"config=$cfg\"; \
     if [ -z \"$cfg\" ]; then echo running=no; exit 0; fi; \
     stats=$(awk '/^[a-z]/{s=($1==\"listen\" && $2==\"stats\")} s && $1==\"bind\"{b=$2} s && $1==\"stats\" && $2==\"uri\"{u=$3} END{if(b!=\"\") print b \" \" (u==\"\"?\"/\":u)}' \"$cfg\"); \
     if [ -z \"$stats\" ]; then echo stats=none; exit 0; fi; \
     addr=${stats%% *}; uri=${stats#* }; port=${addr##*:}; host=${addr%:*}; \
     case \"$host\" in ''|'*'|0.0.0.0) host=127.0.0.1;; esac; \
     echo \"stats=http://$host:$port$uri\"; \
     curl -fsS --max-time 5 \"http://$host:$port$uri;csv\""
        .to_string()
}

/// A server's line of the CSV: backend, server, status (`UP`, `DOWN`, `MAINT`, `UP 1/2`…).
fn servers(csv: &str) -> Vec<(&str, &str, &str)> {
    csv.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let (px, sv, status) = (f.first()?, f.get(1)?, f.get(17)?);
            (!matches!(*sv, "FRONTEND" | "BACKEND") && px.starts_with("postgres_"))
                .then_some((*px, *sv, *status))
        })
        .collect()
}

fn evaluate(g: &Gathered, _: &Options) -> Vec<Finding> {
    let leader = g
        .state
        .as_ref()
        .and_then(|s| s.leader())
        .map(|m| m.name.clone());
    let replicas: Vec<String> = g
        .state
        .as_ref()
        .map(|s| {
            s.members
                .iter()
                .filter(|m| m.streams(s.old_patroni()))
                .map(|m| m.name.clone())
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    for h in g.balancers() {
        let text = h.output(KIND.name).unwrap_or_default();
        let fail = |m: String| Finding::new(KIND.name, Outcome::Fail, &h.name, m);
        if value(text, "running") == Some("no") {
            out.push(fail("`haproxy` does not run".into()));
            continue;
        }
        let Some(url) = value(text, "stats").filter(|s| *s != "none") else {
            out.push(fail(format!(
                "`{}` has no `listen stats` to read the backends from (the `haproxy` module's `stats:`)",
                value(text, "config").unwrap_or("?")
            )));
            continue;
        };
        let all = servers(text);
        if all.is_empty() {
            out.push(fail(format!("no backend servers read from `{url}`")));
            continue;
        }
        let up = |px: &str| -> Vec<&str> {
            all.iter()
                .filter(|(p, _, s)| *p == px && s.starts_with("UP"))
                .map(|(_, sv, _)| *sv)
                .collect()
        };
        let writers = up("postgres_writer");
        out.push(match (writers.as_slice(), leader.as_deref()) {
            ([one], Some(l)) if *one == l => Finding::new(
                KIND.name,
                Outcome::Pass,
                &format!("{}:postgres_writer", h.name),
                format!("`{one}` up (the leader)"),
            ),
            (up, l) => Finding::new(
                KIND.name,
                Outcome::Fail,
                &format!("{}:postgres_writer", h.name),
                format!(
                    "up: `{}`; the leader: `{}`",
                    up.join("`, `"),
                    l.unwrap_or("?")
                ),
            ),
        });
        if all.iter().any(|(p, _, _)| *p == "postgres_readers") {
            let readers = up("postgres_readers");
            let missing: Vec<&str> = replicas
                .iter()
                .map(String::as_str)
                .filter(|r| !readers.contains(r))
                .collect();
            out.push(Finding::new(
                KIND.name,
                if missing.is_empty() {
                    Outcome::Pass
                } else {
                    Outcome::Fail
                },
                &format!("{}:postgres_readers", h.name),
                if missing.is_empty() {
                    format!("up: `{}`", readers.join("`, `"))
                } else {
                    format!(
                        "up: `{}`; streaming replicas down here: `{}`",
                        readers.join("`, `"),
                        missing.join("`, `")
                    )
                },
            ));
        }
    }
    out
}
