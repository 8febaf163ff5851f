//! `certificates`: days left before each certificate the deployed services use expires
//! (a warning under `--cert-warn-days`, a failure once expired or unreadable). The files are
//! the ones the services are configured with, found through the locators and the running
//! HAProxy's configuration: Patroni's (`certfile`, `cafile`, `cacert`, `cert`,
//! `ssl_cert_file`, `ssl_ca_file`), etcd's (`ETCD_*CERT_FILE`, `ETCD_*TRUSTED_CA_FILE`),
//! HAProxy's (`ca-file`, `crt`). Dates are decoded by Python's `ssl` (on every host the lab
//! and the playbooks start from), against the host's clock.

use super::{Finding, Gathered, Kind, Options, Outcome, Role};
use pgdeploy_core::locator::{ETCD, PATRONI};

pub(crate) const KIND: Kind = Kind {
    name: "certificates",
    about: "days left before each certificate in use expires",
    probe: Some((Role::Any, probe)),
    evaluate,
};

const DECODE: &str = concat!(
    "import ssl,sys,time\n",
    "for f in sorted(set(sys.argv[1:])):\n",
    "    try: print('cert', f, int(ssl.cert_time_to_seconds(ssl._ssl._test_decode_cert(f)['notAfter'])), sep='\\t')\n",
    "    except Exception: print('cert', f, 'unreadable', sep='\\t')\n",
    "print('now', int(time.time()), sep='\\t')\n",
);

fn probe() -> String {
    let q = pgdeploy_core::transport::shell::quote;
    format!(
        "files=; \
         if [ -r {PATRONI} ]; then PATRONI_CONFIG=; . {PATRONI}; \
         if [ -r \"$PATRONI_CONFIG\" ]; then files=\"$files $(sed -n -E \"s/^ *(certfile|cafile|cacert|cert|ssl_cert_file|ssl_ca_file): *['\\\"]?([^'\\\" ]+).*/\\2/p\" \"$PATRONI_CONFIG\")\"; fi; fi; \
         if [ -r {ETCD} ]; then ETCD_CONFIG=; . {ETCD}; \
         if [ -r \"$ETCD_CONFIG\" ]; then . \"$ETCD_CONFIG\"; \
         files=\"$files $ETCD_CERT_FILE $ETCD_PEER_CERT_FILE $ETCD_TRUSTED_CA_FILE $ETCD_PEER_TRUSTED_CA_FILE\"; fi; fi; \
         cfg=$(ps -o args= -C haproxy 2>/dev/null | head -n1 | sed -n 's/.* -f \\([^ ]*\\).*/\\1/p'); \
         if [ -n \"$cfg\" ] && [ -r \"$cfg\" ]; then files=\"$files $(grep -oE '(ca-file|crt) [^ ]+' \"$cfg\" | cut -d' ' -f2)\"; fi; \
         python3 -c {} $files",
        q(DECODE)
    )
}

fn evaluate(g: &Gathered, o: &Options) -> Vec<Finding> {
    let mut out = Vec::new();
    for h in &g.hosts {
        let Some(text) = h.output(KIND.name) else {
            continue;
        };
        let now = text.lines().find_map(|l| {
            l.strip_prefix("now\t")
                .and_then(|n| n.trim().parse::<i64>().ok())
        });
        let mut any = false;
        for l in text.lines() {
            let Some(rest) = l.strip_prefix("cert\t") else {
                continue;
            };
            any = true;
            let (file, end) = rest.split_once('\t').unwrap_or((rest, ""));
            let subject = format!("{}:{file}", h.name);
            out.push(match (end.trim().parse::<i64>().ok(), now) {
                (Some(end), Some(now)) => {
                    let days = (end - now).div_euclid(86_400);
                    if end <= now {
                        Finding::new(KIND.name, Outcome::Fail, &subject, "expired".into())
                    } else if (days as u64) < o.cert_warn_days {
                        Finding::new(
                            KIND.name,
                            Outcome::Warn,
                            &subject,
                            format!("{days} days left (under {})", o.cert_warn_days),
                        )
                    } else {
                        Finding::new(
                            KIND.name,
                            Outcome::Pass,
                            &subject,
                            format!("{days} days left"),
                        )
                    }
                }
                _ => Finding::new(
                    KIND.name,
                    Outcome::Fail,
                    &subject,
                    "unreadable (missing, or not a PEM certificate)".into(),
                ),
            });
        }
        if !any && now.is_none() {
            out.push(Finding::new(
                KIND.name,
                Outcome::Fail,
                &h.name,
                format!(
                    "could not read the certificates: {}",
                    text.trim().lines().last().unwrap_or("no answer")
                ),
            ));
        }
    }
    out
}
