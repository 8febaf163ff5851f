//! Rotating passwords on a running member, over the fake transport: the order of the apply
//! (the database on the leader first, then the file, then a reload), masking, and the cases
//! where the database's passwords cannot be changed or read.

use super::install_tests::*;
use super::*;
use crate::common::fake::*;
use crate::common::secret::Secret;
use pgdeploy_core::transport::ExecOutput;

const NEW_SUPERUSER: &str = "N'ew \\ $super pw";
const NEW_REPLICATION: &str = "R'ep \\ $repl pw";

/// `h2` leads, `h1` (the host under test) is a replica.
const CLUSTER: &str = r#"{"members": [
  {"name": "h1", "role": "replica", "state": "streaming", "host": "10.213.7.11", "port": 5432},
  {"name": "h2", "role": "leader", "state": "running", "host": "10.213.7.12", "port": 5432}]}"#;

/// The task with the new passwords; `params("")` has the old ones, which the host's files
/// hold.
fn rotated() -> Patroni {
    let mut p = params("");
    p.authentication.superuser.password = Secret::new(NEW_SUPERUSER);
    p.authentication.replication.password = Secret::new(NEW_REPLICATION);
    p
}

fn shown(plan: &Plan) -> String {
    let mut s = String::new();
    for c in &plan.changes {
        s.push_str(&c.summary);
        s.push('\n');
        if let Some(d) = &c.diff {
            s.push_str(&d.unified());
        }
    }
    s
}

fn assert_no_secret(text: &str) {
    for secret in [
        NEW_SUPERUSER,
        NEW_REPLICATION,
        "Su-secret-1",
        "Repl-secret-2",
        "N'ew",
        "R'ep",
    ] {
        assert!(!text.contains(secret), "`{secret}` in:\n{text}");
    }
}

#[test]
fn the_database_is_changed_on_the_leader_before_the_file_and_the_reload() {
    let old = params("");
    let fake = converged_with(
        &old,
        PACKAGE_CONVERGED,
        CLUSTER,
        output(0, &stored_roles("Su-secret-1", "Repl-secret-2")),
    );
    let r = run(&rotated(), debian12(), fake, true);
    assert_eq!(r.error, None);
    let summaries = summaries(&r.plan);
    assert_eq!(
        summaries,
        [
            "set the password of `postgres` (superuser), `replicator` (replication) on the \
             leader `h2` (ALTER ROLE with a SCRAM-SHA-256 verifier computed by pgdeploy): \
             (secret changed); then wait until every streaming replica replayed it",
            "update `/etc/patroni/config.yml`",
            "reload `patroni` (configuration changed)",
        ]
    );
    let text = shown(&r.plan);
    assert!(
        text.contains("+      password: ******** (secret changed)"),
        "{text}"
    );
    assert!(text.contains("-      password: ********"), "{text}");
    assert_no_secret(&text);
    // Neither password in any command line: the script goes on standard input.
    assert_no_secret(&r.apply_commands.join("\n"));
    assert_no_secret(&r.plan_commands.join("\n"));
    let c = &r.apply_commands;
    let alter = position(c, "/bin/sh -s");
    let write = position(c, "(write /etc/patroni/.config.yml.pgdeploy-TEMP");
    let reload = position(c, "systemctl reload patroni");
    assert!(alter < write && write < reload, "{c:#?}");
    assert!(!c.iter().any(|c| c.contains("restart")), "{c:#?}");
}

#[test]
fn a_database_that_already_holds_the_new_passwords_is_left_alone() {
    let fake = converged_with(
        &params(""),
        PACKAGE_CONVERGED,
        CLUSTER,
        output(0, &stored_roles(NEW_SUPERUSER, NEW_REPLICATION)),
    );
    let r = run(&rotated(), debian12(), fake, true);
    assert_eq!(r.error, None);
    assert_eq!(
        summaries(&r.plan),
        [
            "update `/etc/patroni/config.yml`",
            "reload `patroni` (configuration changed)"
        ]
    );
    assert!(!r.apply_commands.iter().any(|c| c.contains("/bin/sh -s")));
}

#[test]
fn only_the_replication_password_logs_in_with_the_new_superuser_one() {
    let mut p = params("");
    p.authentication.replication.password = Secret::new(NEW_REPLICATION);
    let fake = converged_with(
        &params(""),
        PACKAGE_CONVERGED,
        CLUSTER,
        output(0, &stored_roles("Su-secret-1", "Repl-secret-2")),
    );
    let r = run(&p, debian12(), fake, false);
    assert!(summaries(&r.plan)[0]
        .starts_with("set the password of `replicator` (replication) on the leader `h2`"));
}

fn plan_error(p: &Patroni, fake: MemoryTransport) -> String {
    let h = Harness::new(MemoryTransport::default(), debian12());
    let cx = context("h1", &fake, &h.facts, &h.scope);
    match block_on(p.plan(&cx)) {
        Ok(plan) => panic!("planned {:?}", summaries(&plan)),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_database_password_nobody_knows_is_an_error_naming_the_file() {
    let fake = converged_with(
        &params(""),
        PACKAGE_CONVERGED,
        CLUSTER,
        output(0, &stored_roles("someone else's", "Repl-secret-2")),
    );
    let e = plan_error(&rotated(), fake);
    assert_eq!(
        e,
        "the password of role `postgres` in the database on `h1` is neither the inventory's \
         nor the one in `/etc/patroni/config.yml`: pgdeploy cannot log in to change it; set it \
         with ALTER ROLE on the leader"
    );
}

#[test]
fn unreadable_roles_stop_a_rotation_and_are_a_note_otherwise() {
    let refused = || {
        converged_with(
            &params(""),
            PACKAGE_CONVERGED,
            CLUSTER,
            ExecOutput {
                status: 2,
                stdout: Vec::new(),
                stderr: b"psql: error: FATAL:  Peer authentication failed".to_vec(),
            },
        )
    };
    let e = plan_error(&rotated(), refused());
    assert!(
        e.starts_with("cannot read the roles' passwords on `h1`"),
        "{e}"
    );
    assert!(e.contains("Peer authentication failed"), "{e}");
    assert!(
        e.ends_with("Patroni's passwords are not changed before the database's"),
        "{e}"
    );
    let r = run(&params(""), debian12(), refused(), false);
    assert!(!r.plan.is_changed(), "{:?}", summaries(&r.plan));
    assert!(
        r.plan.notes[0].ends_with("passwords not checked"),
        "{:?}",
        r.plan.notes
    );
}
