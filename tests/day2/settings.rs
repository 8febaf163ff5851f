//! A PostgreSQL setting whose name has a dot (`pg_stat_statements.track`) set through
//! `pg_parameters` (Patroni's DCS `postgresql.parameters`): it reaches every member as that
//! one setting, a second apply changes nothing, and setting it back converges too. Before
//! the DCS settings were compared by key path, the PATCH nested it as
//! `{"pg_stat_statements": {"track": …}}` and every apply planned it again.

use std::path::Path;
use std::time::{Duration, Instant};

use super::checks::Checks;
use super::cluster::{self, eventually};
use super::lab_support::LabFixture;

/// `site.yml`'s default `pg_parameters` (`max_connections`) with the dotted setting.
fn vars(track: &str) -> String {
    format!(
        r#"{{"pg_parameters": {{"max_connections": 100, "pg_stat_statements.track": "{track}"}}}}"#
    )
}

fn apply(inventory: &Path, track: &str, json: bool) -> (i32, String, String) {
    let started = Instant::now();
    let vars = vars(track);
    let mut args = vec!["-e", vars.as_str()];
    if json {
        args.push("--json");
    }
    let out = cluster::pgdeploy("apply", &args, inventory, &cluster::playbook("site.yml"));
    eprintln!(
        "  apply -e {vars}{}: {:.1} s",
        if json { " --json" } else { "" },
        started.elapsed().as_secs_f64()
    );
    out
}

/// `SHOW pg_stat_statements.track` on every member, asked from `pg1`.
fn shown(lab: &LabFixture) -> Vec<String> {
    ["pg1", "pg2", "pg3"]
        .iter()
        .map(|h| {
            let out = cluster::sql(
                lab,
                "pg1",
                &lab.ip(h).to_string(),
                5432,
                "SHOW pg_stat_statements.track",
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        })
        .collect()
}

pub(crate) fn run(c: &mut Checks, lab: &LabFixture, inventory: &Path) {
    for (check, track) in [
        ("dotted_setting_reaches_every_member_and_converges", "all"),
        ("dotted_setting_set_back_converges", "top"),
    ] {
        c.run(check, || {
            let (code, stdout, stderr) = apply(inventory, track, false);
            assert_eq!(code, 0, "{stderr}\n{stdout}");
            assert!(
                eventually(Duration::from_secs(60), || shown(lab) == [track; 3]),
                "`SHOW pg_stat_statements.track` on pg1, pg2, pg3: {:?}",
                shown(lab)
            );
            let (code, stdout, stderr) = apply(inventory, track, true);
            assert_eq!(code, 0, "{stderr}");
            assert_eq!(cluster::changed(&stdout), 0, "a second apply changed:\n{stdout}");
            let config = lab.ssh_ok(
                lab.ip("pg1"),
                ". /var/lib/pgdeploy/patroni.env && \"$PATRONICTL\" -c \"$PATRONI_CONFIG\" show-config",
            );
            assert!(
                config.contains(&format!("pg_stat_statements.track: {track}")),
                "one dotted key in the DCS:\n{config}"
            );
        });
    }
}
