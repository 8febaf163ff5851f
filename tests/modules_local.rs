//! The generic modules against this machine: plan → apply → plan through the engine's local
//! transport, in a temporary directory. File ownership tests need root (skipped without it,
//! failing under `CI=true`).

#[path = "support/skip.rs"]
mod skip;

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use pgdeploy_core::diag::{Location, SourceFile};
use pgdeploy_core::inventory::{Connection, ConnectionKind, Host, Inventory};
use pgdeploy_core::module::{Action, HostContext, ModuleError, Plan};
use pgdeploy_core::template::{Facts, Scope, ScopeShared};
use pgdeploy_core::transport::{
    Become, ExecOutput, ExecRequest, FileAttrs, LocalTransport, Transport, TransportError,
};
use serde::de::DeserializeOwned;

/// The engine's local transport (`/bin/sh -c` on this machine), counting round trips.
struct Local {
    inner: LocalTransport,
    execs: AtomicUsize,
}

impl Default for Local {
    fn default() -> Self {
        Local {
            inner: LocalTransport::new("local"),
            execs: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl Transport for Local {
    fn host(&self) -> &str {
        self.inner.host()
    }
    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, TransportError> {
        self.execs.fetch_add(1, Ordering::SeqCst);
        self.inner.exec(req).await
    }
    async fn read_file(
        &self,
        path: &str,
        become_: &Become,
    ) -> Result<Option<Vec<u8>>, TransportError> {
        self.inner.read_file(path, become_).await
    }
    async fn write_file(
        &self,
        path: &str,
        content: &[u8],
        attrs: &FileAttrs,
        become_: &Become,
    ) -> Result<(), TransportError> {
        self.inner.write_file(path, content, attrs, become_).await
    }
}

/// One host, its scope and a playbook directory.
struct Env {
    transport: Local,
    facts: Facts,
    scope: Arc<Scope>,
    playbook_dir: PathBuf,
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Env {
    fn new(facts: Facts) -> Env {
        let tmp = tempfile::tempdir().expect("temp dir");
        let root = tmp.path().to_path_buf();
        let playbook_dir = root.join("playbook");
        std::fs::create_dir_all(playbook_dir.join("templates")).expect("playbook dir");
        let mut vars = pgdeploy_core::inventory::Vars::default();
        let origin = Location::file(&SourceFile::new("inventory.yml"));
        vars.insert(
            "etcd_port".into(),
            pgdeploy_core::inventory::Var {
                value: serde_json::json!(2379),
                origin: origin.clone(),
            },
        );
        let mut inventory = Inventory::default();
        inventory.hosts.insert(
            "local".into(),
            Host {
                name: "local".into(),
                vars,
                groups: vec!["all".into()],
                connection: Connection {
                    kind: ConnectionKind::Local,
                    address: "localhost".into(),
                    port: None,
                    user: None,
                    private_key_file: None,
                    known_hosts_file: None,
                    become_: false,
                    become_user: None,
                    escalation: Default::default(),
                    ssh: Default::default(),
                },
                defined_at: origin,
            },
        );
        let all = HashMap::from([("local".to_string(), facts.clone())]);
        let shared = ScopeShared::new(
            Arc::new(pgdeploy_core::template::environment()),
            Arc::new(inventory),
            Some(all),
        );
        let scope = Scope::new(&shared, "local", Arc::default(), Arc::default());
        Env {
            transport: Local::default(),
            facts,
            scope,
            playbook_dir,
            _tmp: tmp,
            root,
        }
    }

    fn cx(&self) -> HostContext<'_> {
        HostContext {
            host: "local",
            transport: &self.transport,
            facts: &self.facts,
            scope: &self.scope,
            become_: Become::No,
            playbook_dir: &self.playbook_dir,
            allow_removal: false,
        }
    }

    fn path(&self, rel: &str) -> String {
        self.root.join(rel).display().to_string()
    }

    fn execs(&self) -> usize {
        self.transport.execs.swap(0, Ordering::SeqCst)
    }

    async fn plan(&self, action: &dyn Action) -> Result<Plan, ModuleError> {
        self.execs();
        action.plan(&self.cx()).await
    }

    /// plan → apply → plan: the first plan changes something, the second nothing (and costs
    /// one round trip at most).
    async fn converge(&self, action: &dyn Action) -> Plan {
        let plan = self.plan(action).await.expect("plan");
        assert!(plan.needs_apply(), "nothing planned for {action:?}");
        action.apply(&self.cx(), &plan).await.expect("apply");
        let again = self.plan(action).await.expect("second plan");
        assert!(
            !again.is_changed(),
            "second plan changed: {:?}",
            again.changes
        );
        assert!(
            self.execs() <= 1,
            "a no-op plan costs one round trip at most"
        );
        plan
    }
}

/// Parameters from YAML, as a playbook gives them.
fn params<T: DeserializeOwned>(yaml: &str) -> T {
    serde_yaml_ng::from_str(yaml).expect("valid parameters")
}

fn meta(path: &str) -> std::fs::Metadata {
    std::fs::symlink_metadata(path).expect("path exists")
}

fn assert_nobody_0640(path: &str) {
    let m = meta(path);
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (65534, 65534, 0o640));
}

use pgdeploy_modules::{command, copy, directory, file, packages, template};

#[tokio::test]
async fn copy_creates_detects_edits_and_mode_changes() {
    if !skip::require(
        skip::is_root(),
        "copy_creates_detects_edits_and_mode_changes",
        "file ownership needs root",
    ) {
        return;
    }
    let env = Env::new(Facts::default());
    let dest = env.path("a.conf");
    let c: copy::Copy = params(&format!(
        "{{dest: '{dest}', content: \"a\\nb\\n\", owner: nobody, group: nogroup, mode: '0640'}}"
    ));
    let plan = env.converge(&c).await;
    assert_eq!(
        plan.changes[0].summary,
        format!("create `{dest}` (owner `nobody`, group `nogroup`, mode `0640`)")
    );
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "a\nb\n");
    assert_nobody_0640(&dest);

    std::fs::write(&dest, "a\nB\n").unwrap();
    let plan = env.plan(&c).await.unwrap();
    assert_eq!(plan.changes[0].summary, format!("update `{dest}`"));
    let diff = plan.changes[0].diff.as_ref().unwrap();
    assert_eq!(
        diff.unified(),
        format!("--- {dest} (current)\n+++ {dest} (wanted)\n@@ -1,2 +1,2 @@\n a\n-B\n+b\n")
    );
    c.apply(&env.cx(), &plan).await.unwrap();
    assert_nobody_0640(&dest);

    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o644)).unwrap();
    let plan = env.plan(&c).await.unwrap();
    assert_eq!(
        plan.changes[0].summary,
        format!("`{dest}`: mode `0644` → `0640`")
    );
    assert!(plan.changes[0].diff.is_none());
    env.converge(&c).await;
}

#[tokio::test]
async fn copy_keeps_the_old_file_when_validation_fails() {
    let env = Env::new(Facts::default());
    let dest = env.path("haproxy.cfg");
    std::fs::write(&dest, "old\n").unwrap();
    let bad: copy::Copy = params(&format!(
        "{{dest: '{dest}', content: \"broken\\n\", validate: 'grep -q good %s'}}"
    ));
    let plan = env.plan(&bad).await.unwrap();
    let err = bad.apply(&env.cx(), &plan).await.unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("`{dest}` not replaced: validation `grep -q good "))
            && err.ends_with("failed with exit status 1: no output"),
        "{err}"
    );
    assert!(!err.contains("broken"), "no content in errors: {err}");
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "old\n");
    let left: Vec<_> = std::fs::read_dir(&env.root).unwrap().collect();
    assert_eq!(left.len(), 2, "no temporary file left behind");

    let good: copy::Copy = params(&format!(
        "{{dest: '{dest}', content: \"good\\n\", validate: 'grep -q good %s'}}"
    ));
    env.converge(&good).await;
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "good\n");
}

#[tokio::test]
async fn copy_from_a_local_src_file() {
    let env = Env::new(Facts::default());
    std::fs::write(env.playbook_dir.join("motd"), [0xff, 0x00, 0x01]).unwrap();
    let dest = env.path("motd");
    let c: copy::Copy = params(&format!("{{dest: '{dest}', src: motd}}"));
    env.converge(&c).await;
    std::fs::write(&dest, [0xfe]).unwrap();
    let plan = env.plan(&c).await.unwrap();
    assert_eq!(
        plan.changes[0].summary,
        format!("update `{dest}`: binary content differs")
    );
}

#[tokio::test]
async fn template_renders_host_variables_and_names_errors() {
    let env = Env::new(Facts::default());
    let dir = env.playbook_dir.join("templates");
    std::fs::write(
        dir.join("etcd.conf.j2"),
        "name={{ inventory_hostname }}\nport={{ etcd_port }}\n",
    )
    .unwrap();
    std::fs::write(dir.join("bad.j2"), "ok\n{{ nope }}\n").unwrap();
    let dest = env.path("etcd.conf");
    let t: template::Template = params(&format!("{{src: etcd.conf.j2, dest: '{dest}'}}"));
    env.converge(&t).await;
    assert_eq!(
        std::fs::read_to_string(&dest).unwrap(),
        "name=local\nport=2379\n"
    );
    let bad: template::Template = params(&format!("{{src: bad.j2, dest: '{dest}'}}"));
    let err = env.plan(&bad).await.unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "template `{}`: line 2: undefined value",
            dir.join("bad.j2").display()
        )),
        "{err}"
    );
}

#[tokio::test]
async fn file_touch_attributes_link_and_absent() {
    if !skip::require(
        skip::is_root(),
        "file_touch_attributes_link_and_absent",
        "file ownership needs root",
    ) {
        return;
    }
    let env = Env::new(Facts::default());
    let path = env.path("touched");
    let touch: file::File = params(&format!(
        "{{path: '{path}', state: touch, owner: nobody, group: nogroup, mode: '0640'}}"
    ));
    env.converge(&touch).await;
    assert_nobody_0640(&path);
    assert_eq!(meta(&path).len(), 0);

    let attrs: file::File = params(&format!("{{path: '{path}', mode: '0600'}}"));
    env.converge(&attrs).await;
    assert_eq!(meta(&path).mode() & 0o7777, 0o600);

    let link = env.path("link");
    let to_touched: file::File = params(&format!("{{path: '{link}', state: link, src: '{path}'}}"));
    env.converge(&to_touched).await;
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new(&path));
    let elsewhere: file::File = params(&format!("{{path: '{link}', state: link, src: /etc}}"));
    let plan = env.converge(&elsewhere).await;
    assert_eq!(
        plan.changes[0].summary,
        format!("link `{link}` → `/etc` (was → `{path}`)")
    );

    for p in [&path, &link] {
        let absent: file::File = params(&format!("{{path: '{p}', state: absent}}"));
        env.converge(&absent).await;
    }
    assert!(!Path::new(&path).exists());
    assert!(std::fs::symlink_metadata(&link).is_err());

    let missing: file::File = params(&format!("{{path: '{path}', mode: '0600'}}"));
    let plan = env.plan(&missing).await.unwrap();
    let err = missing
        .apply(&env.cx(), &plan)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!("`{path}` does not exist (use `state: touch` to create it)")
    );
}

#[tokio::test]
async fn directory_present_and_absent() {
    if !skip::require(
        skip::is_root(),
        "directory_present_and_absent",
        "file ownership needs root",
    ) {
        return;
    }
    let env = Env::new(Facts::default());
    let leaf = env.path("a/b c/d");
    let d: directory::Directory = params(&format!(
        "{{path: '{leaf}', owner: nobody, group: nogroup, mode: '0750'}}"
    ));
    env.converge(&d).await;
    let m = meta(&leaf);
    assert!(m.is_dir());
    assert_eq!((m.uid(), m.mode() & 0o7777), (65534, 0o750));
    assert_eq!(meta(&env.path("a")).uid(), 0, "parents keep their owner");

    let top = env.path("a");
    let absent: directory::Directory = params(&format!("{{path: '{top}', state: absent}}"));
    env.converge(&absent).await;
    assert!(!Path::new(&top).exists());
}

#[tokio::test]
async fn command_guards_and_chdir() {
    let env = Env::new(Facts::default());
    let marker = env.path("done");
    let root = env.root.display().to_string();
    let c: command::Command = params(&format!(
        "{{cmd: 'touch done', chdir: '{root}', creates: '{marker}'}}"
    ));
    let plan = env.converge(&c).await;
    assert_eq!(plan.changes[0].summary, "run `touch done`");
    assert!(Path::new(&marker).exists());

    let unless: command::Command = params(&format!(
        "{{cmd: 'echo x >> log', chdir: '{root}', unless: 'grep -q x log'}}"
    ));
    env.converge(&unless).await;

    let read_only: command::Command = params("{cmd: 'true', changed_when: false}");
    let plan = env.plan(&read_only).await.unwrap();
    assert!(!plan.is_changed() && plan.needs_apply());
    assert_eq!(env.execs(), 0, "no guard, no round trip");

    let failing: command::Command = params("{cmd: 'echo oops >&2; exit 4'}");
    let plan = env.plan(&failing).await.unwrap();
    let err = failing
        .apply(&env.cx(), &plan)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "`echo oops >&2; exit 4` failed with exit status 4: oops"
    );
}

#[tokio::test]
async fn packages_queries_dpkg_read_only() {
    if !skip::require(
        skip::has_program("dpkg-query"),
        "packages_queries_dpkg_read_only",
        "`dpkg-query` is not installed",
    ) {
        return;
    }
    let facts: Facts = [("ansible_pkg_mgr".to_string(), serde_json::json!("apt"))]
        .into_iter()
        .collect();
    let env = Env::new(facts);
    let present: packages::Packages = params("{name: [coreutils, dpkg], update_cache: true}");
    let plan = env.plan(&present).await.unwrap();
    assert!(!plan.is_changed(), "{:?}", plan.changes);
    assert_eq!(env.execs(), 1);

    let absent: packages::Packages = params("{name: [pgdeploy-no-such-package], state: absent}");
    assert!(!env.plan(&absent).await.unwrap().is_changed());

    let missing: packages::Packages = params("{name: [pgdeploy-no-such-package]}");
    let plan = env.plan(&missing).await.unwrap();
    assert_eq!(
        plan.changes[0].summary,
        "install `pgdeploy-no-such-package`"
    );

    // Without the fact, the same single round trip finds apt.
    let env = Env::new(Facts::default());
    assert!(!env.plan(&present).await.unwrap().is_changed());
    assert_eq!(env.execs(), 1);
}
