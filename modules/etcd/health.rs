//! etcd's health as `pgdeploy status` and `verify` read it on a member: `etcdctl endpoint
//! health --cluster` run there with the configuration and certificates the module's `etcd.env`
//! locator names (so no port needs to be open to the workstation).

use serde::Serialize;
use serde_json::Value;

use pgdeploy_core::locator::ETCD as ETCD_LOCATOR;

/// Printed instead of the health when the host has no etcd locator.
const NO_ETCD: &str = "==no-etcd-locator";

/// One etcd endpoint's health.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EtcdRow {
    pub endpoint: String,
    pub health: bool,
    pub error: Option<String>,
}

/// Shell that prints `etcdctl endpoint health --cluster -w json` of every member (with the
/// configuration and certificates the `etcd.env` locator names), or a marker line when the
/// host has no such locator; [`parse_health`] reads it.
pub fn script() -> String {
    format!(
        "if [ -r {ETCD_LOCATOR} ]; then . {ETCD_LOCATOR}; \
         if [ -n \"$ETCD_CONFIG\" ] && [ -r \"$ETCD_CONFIG\" ]; then . \"$ETCD_CONFIG\"; fi; \
         ETCDCTL_API=3 \"${{ETCDCTL:-etcdctl}}\" --endpoints=\"${{ETCD_ADVERTISE_CLIENT_URLS:-http://127.0.0.1:2379}}\" \
         ${{ETCD_TRUSTED_CA_FILE:+--cacert=$ETCD_TRUSTED_CA_FILE}} \
         ${{ETCD_CERT_FILE:+--cert=$ETCD_CERT_FILE}} ${{ETCD_KEY_FILE:+--key=$ETCD_KEY_FILE}} \
         endpoint health --cluster -w json 2>&1; else echo '{NO_ETCD}'; fi;"
    )
}

/// Reads [`script`]'s output (read on `host`).
///
/// The endpoints are the one line that is a JSON array: with an endpoint down, `etcdctl`
/// prints its warnings and `Error: unhealthy cluster` on stderr around that line (the script
/// merges the streams), and the healthy members must still be counted, for the quorum.
pub fn parse_health(host: &str, etcd: &str) -> Vec<EtcdRow> {
    let endpoints = etcd
        .lines()
        .filter(|l| l.trim_start().starts_with('['))
        .find_map(|l| serde_json::from_str::<Vec<Value>>(l.trim()).ok())
        .ok_or(());
    match endpoints {
        _ if etcd.trim() == NO_ETCD => vec![EtcdRow {
            endpoint: "(etcd)".into(),
            health: false,
            error: Some(format!(
                "`{host}` has no `{ETCD_LOCATOR}`: was `playbooks/site.yml` applied?"
            )),
        }],
        Ok(eps) => eps
            .iter()
            .map(|e| EtcdRow {
                endpoint: e["endpoint"].as_str().unwrap_or_default().to_string(),
                health: e["health"].as_bool().unwrap_or(false),
                error: e["error"].as_str().map(str::to_string),
            })
            .collect(),
        Err(_) => vec![EtcdRow {
            endpoint: "(etcd)".into(),
            health: false,
            error: Some(
                etcd.trim()
                    .lines()
                    .last()
                    .unwrap_or("no answer")
                    .to_string(),
            ),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_etcd_member_down_is_named_and_the_others_counted() {
        // what etcd 3.4's `etcdctl endpoint health --cluster -w json 2>&1` printed on the
        // lab with `pg3`'s etcd stopped
        let etcd =
            "[{\"endpoint\":\"https://10.213.45.11:2379\",\"health\":true,\"took\":\"3.2ms\"},\
            {\"endpoint\":\"https://10.213.45.12:2379\",\"health\":true,\"took\":\"4.8ms\"},\
            {\"endpoint\":\"https://10.213.45.13:2379\",\"health\":false,\"took\":\"5.0s\",\
            \"error\":\"context deadline exceeded\"}]\n\
            {\"level\":\"warn\",\"msg\":\"retrying of unary invoker failed\"}\n\
            Error: unhealthy cluster\n";
        let rows = parse_health("pg1", etcd);
        let health: Vec<(&str, bool)> = rows
            .iter()
            .map(|r| (r.endpoint.as_str(), r.health))
            .collect();
        assert_eq!(
            health,
            [
                ("https://10.213.45.11:2379", true),
                ("https://10.213.45.12:2379", true),
                ("https://10.213.45.13:2379", false)
            ]
        );
        assert_eq!(rows[2].error.as_deref(), Some("context deadline exceeded"));
        // the warning first, the array after it: the same
        let swapped = "{\"level\":\"warn\"}\n".to_string() + etcd;
        assert_eq!(parse_health("pg1", &swapped).len(), 3);
    }
}
