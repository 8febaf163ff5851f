//! `state: configured`: the environment file, the unit, the user, the data directory and the
//! locator; a host joining an existing cluster is added and started alone.

use std::time::{Duration, Instant};

use pgdeploy_core::module::{Change, HostContext, ModuleError, Plan};

use super::super::common::content::{self, ContentWork, Desired};
use super::super::common::exec::{self, Required};
use super::super::common::shell::quote;
use super::super::common::stat;
use super::cluster::{decide, parse_member_list, ClusterState, Listed};
use super::host;
use super::params::Etcd;
use super::render::STAMP;
use super::unit::{self, LOCATOR};

/// What the `configured` step found and will do.
#[derive(Debug)]
pub(super) struct ConfigWork {
    /// The environment file of this host.
    pub(super) config: String,
    /// Creates what is missing before anything is written: user, data directory, the
    /// directories of the files.
    pub(super) prepare: Option<String>,
    /// The module's own unit, then `systemctl daemon-reload`.
    pub(super) unit: Option<ContentWork>,
    /// `/var/lib/pgdeploy/etcd.env`.
    pub(super) locator: Option<ContentWork>,
    /// `member add` through these client URLs.
    pub(super) add: Option<Vec<String>>,
    pub(super) file: Option<ContentWork>,
    /// Start etcd now (a host joining an existing cluster).
    pub(super) join: bool,
    /// Planned without the member list (no client certificate on the host yet).
    pub(super) guessed: bool,
    /// After joining, the file with every inventory member in `ETCD_INITIAL_CLUSTER`, when
    /// that differs from the list the join needed (another host joins after this one).
    pub(super) settle: Option<String>,
    /// Binaries missing at plan time, checked again before anything is written.
    pub(super) missing: Vec<Required>,
    /// A member no host of the inventory is, removed (`--allow-removal`, first member only).
    pub(super) removal: Option<StaleRemoval>,
    /// Sets aside the data of a member the cluster removed, before it joins again.
    pub(super) set_aside: Option<String>,
}

/// `member remove` of a member the inventory does not have, through the healthy members.
#[derive(Debug, Clone)]
pub(super) struct StaleRemoval {
    pub(super) name: String,
    pub(super) id: u64,
    pub(super) through: Vec<String>,
}

/// Whose unit runs etcd on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Install {
    /// A unit the module did not write (the package's, or the administrator's): used as is.
    Package,
    /// No other unit: the module writes (and keeps) its own.
    Own,
}

/// The directory of an absolute path.
pub(super) fn parent(path: &str) -> &str {
    match path.rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((dir, _)) => dir,
    }
}

impl Etcd {
    pub(super) async fn plan_configured(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        let members = self.resolve(cx)?;
        let me = members
            .iter()
            .find(|m| m.name == cx.host)
            .ok_or_else(|| {
                ModuleError::Failed(format!(
                    "host `{}` is not in `members` ({})",
                    cx.host,
                    self.members.join(", ")
                ))
            })?
            .clone();
        let config = self.config_path(cx.facts, cx.host)?;
        // Things to tell the user that are not changes: shown in the output and the JSON
        // events (plan and apply), never counted as changed.
        let mut notes = Vec::new();
        // Which members accept connections on their client port (a quick TCP connect), so
        // that `etcdctl` is not left waiting for members that do not run yet.
        let mut probe = format!(
            "if [ -d {} ]; then echo member; fi; if [ -f {} ] && [ -f {} ] && [ -f {} ]; then echo certs; fi",
            quote(&format!("{}/member", self.data_dir.trim_end_matches('/'))),
            quote(&self.cert(cx.host)),
            quote(&self.key(cx.host)),
            quote(&self.ca())
        );
        probe.push_str("; ");
        probe.push_str(&host::probe_lines(
            &self.executable,
            &self.etcdctl,
            &self.user,
            &self.data_dir,
            STAMP,
            &self.service,
        ));
        for (i, m) in members.iter().enumerate() {
            let tcp = format!("exec 3<>/dev/tcp/{}/{}", m.address, self.client_port);
            probe.push_str(&format!(
                "; if timeout 2 bash -c {} 2>/dev/null; then echo open={i}; fi",
                quote(&tcp)
            ));
        }
        let out = exec::check(cx, &probe, "probe etcd data directory").await?;
        let text = String::from_utf8_lossy(&out.stdout);
        let local_member = text.lines().any(|l| l == "member");
        let certs = text.lines().any(|l| l == "certs");
        let provided = host::parse(&text);
        let unit_path = unit::unit_path(&self.service);
        let [config_state, unit_state, locator_state]: [stat::PathState; 3] =
            stat::probe_files(cx, &[&config, &unit_path, LOCATOR])
                .await?
                .try_into()
                .map_err(|_| ModuleError::Failed("unexpected answer of the path probe".into()))?;
        let (installs, missing) = self.check_install(
            cx,
            &config,
            &provided,
            &unit_state,
            local_member,
            &config_state,
        )?;
        if !missing.is_empty() {
            // A dry run on a bare host, before the packages task has run: say so and plan the
            // rest; apply stops before writing anything if they are still missing by then.
            let paths: Vec<String> = missing.iter().map(|m| format!("`{}`", m.path)).collect();
            notes.push(format!(
                "etcd is not installed on `{}` yet ({} missing): an earlier task must install it; apply stops here if it has not",
                cx.host,
                paths.join(", ")
            ));
        }
        let endpoints: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("open="))
            .filter_map(|i| i.parse::<usize>().ok())
            .filter_map(|i| members.get(i))
            .map(|m| self.client_url(m))
            .collect();
        // Without its client certificate (a dry run before the certificates task has installed
        // it) the host cannot ask the cluster: the members that answer on their client port
        // stand in for the member list, and apply asks the real one.
        let guessed = !certs && !local_member && !endpoints.is_empty();
        let listed = if guessed {
            let listening = members
                .iter()
                .filter(|m| m.name != me.name && endpoints.contains(&self.client_url(m)));
            Some(
                listening
                    .map(|m| Listed {
                        id: 0,
                        name: m.name.clone(),
                        peer_urls: vec![self.peer_url(m)],
                        client_urls: vec![self.client_url(m)],
                    })
                    .collect(),
            )
        } else if certs && !endpoints.is_empty() {
            let out = exec::run(cx, &self.ctl(cx.host, &endpoints, "member list -w json")).await?;
            let listed = if out.status == 0 {
                parse_member_list(&out.stdout)
            } else {
                None
            };
            if listed.is_none() && !local_member {
                // Members answer but cannot say who they are: deciding `new` here could start
                // a second cluster, so stop.
                return Err(ModuleError::Failed(format!(
                    "members answer on their client port ({}) but `etcdctl member list` failed: cannot tell whether `{}` must join the running cluster; {}",
                    endpoints.join(", "),
                    me.name,
                    exec::failure("etcdctl member list", &out)
                )));
            }
            listed
        } else {
            None
        };
        // Member data of a host that the running cluster no longer lists (it was removed):
        // etcd refuses to start on it, so it is set aside and the host joins again.
        let my_peer = self.peer_url(&me);
        let removed_data = local_member
            && listed.as_ref().is_some_and(|l| {
                !l.is_empty() && !l.iter().any(|m| m.peer_urls.contains(&my_peer))
            });
        let local_member = local_member && !removed_data;
        let decision = decide(&members, &me, local_member, listed.as_deref(), |m| {
            self.peer_url(m)
        });
        let removal = self
            .stale_removal(cx, &members, &decision.stale, listed.as_deref(), &mut notes)
            .await?;
        if certs {
            if let Some(problem) = self.certificate_problem(cx, &me).await? {
                notes.push(format!(
                    "{problem}: etcd will not be started with it; the certificates task must reissue it"
                ));
            }
        }
        let mut changes = Vec::new();
        if guessed {
            notes.push(format!(
                "`{}` is not installed yet: the member addition is planned from the members that answer ({}); apply checks `etcdctl member list` first and never adds a member twice",
                self.cert(cx.host),
                endpoints.join(", ")
            ));
        }
        let add = if decision.add {
            let through: Vec<String> = listed
                .iter()
                .flatten()
                .flat_map(|l| l.client_urls.iter().cloned())
                .collect();
            changes.push(Change::new(format!(
                "add etcd member `{}` (`{}`) to the cluster through `{}`",
                me.name,
                self.peer_url(&me),
                through.join("`, `")
            )));
            Some(through)
        } else {
            None
        };
        if let Some(r) = &removal {
            changes.push(Change::new(format!(
                "remove etcd member `{}` (`{:x}`) through `{}`",
                r.name,
                r.id,
                r.through.join("`, `")
            )));
        }
        let set_aside = removed_data.then(|| {
            let data = format!("{}/member", self.data_dir.trim_end_matches('/'));
            changes.push(Change::new(format!(
                "set `{data}` aside (`{data}.removed-TIME`): the running cluster no longer lists `{}` (it was removed) and etcd refuses to start on a removed member's data; it joins again",
                me.name
            )));
            format!(
                "systemctl stop {} && mv -- {} \"{}.removed-$(date +%Y%m%dT%H%M%S)\"",
                quote(&self.service),
                quote(&data),
                data
            )
        });
        let prepare = self.prepare(&provided, &mut changes);
        let content_text = self.render(&me, &decision.initial_cluster, decision.state);
        let file = self.decide_file(&config, content_text, &config_state, &mut changes)?;
        let unit = match installs {
            Install::Package => None,
            Install::Own => {
                let text = unit::render_unit(&self.executable, &config, &self.user);
                let work = self.decide_file(&unit_path, text, &unit_state, &mut changes)?;
                if matches!(work, Some(ContentWork::Write { .. })) {
                    changes.push(Change::new(
                        "reload systemd's units (`systemctl daemon-reload`)",
                    ));
                }
                work
            }
        };
        let locator_text = unit::render_locator(&config, &self.etcdctl);
        let locator = self.decide_file(LOCATOR, locator_text, &locator_state, &mut changes)?;
        let mut dirs: Vec<&str> = Vec::new();
        if file.is_some() {
            dirs.push(parent(&config));
        }
        if locator.is_some() {
            dirs.push(parent(LOCATOR));
        }
        let prepare = match (prepare, dirs.is_empty()) {
            (None, true) => None,
            (p, _) => {
                let mut cmds: Vec<String> = Vec::new();
                if !dirs.is_empty() {
                    cmds.push(format!(
                        "mkdir -p -- {}",
                        super::super::common::shell::quote_all(&dirs)
                    ));
                }
                cmds.extend(p);
                Some(cmds.join(" && "))
            }
        };
        let mut settle = None;
        if decision.join {
            changes.push(Change::new(format!(
                "start `{}` to join the existing cluster and wait until it is healthy",
                self.service
            )));
            // etcd reads ETCD_INITIAL_CLUSTER only at a member's first start; afterwards the
            // file lists the inventory's members, as every later run renders it.
            let inventory: Vec<(String, String)> = members
                .iter()
                .map(|m| (m.name.clone(), self.peer_url(m)))
                .collect();
            if decision.initial_cluster != inventory {
                changes.push(Change::new(format!(
                    "then list every inventory member in `ETCD_INITIAL_CLUSTER` of `{config}`"
                )));
                settle = Some(self.render(&me, &inventory, ClusterState::Existing));
            }
        }
        if changes.is_empty() {
            return Ok(Plan::unchanged().with_notes(notes));
        }
        Ok(Plan::changes(
            changes,
            ConfigWork {
                config,
                prepare,
                unit,
                locator,
                add,
                file,
                join: decision.join,
                guessed,
                removal,
                set_aside,
                settle,
                missing,
            },
        )
        .with_notes(notes))
    }

    pub(super) async fn apply_configured(
        &self,
        cx: &HostContext<'_>,
        w: &ConfigWork,
    ) -> Result<(), ModuleError> {
        let members = self.resolve(cx)?;
        let me = members.iter().find(|m| m.name == cx.host).ok_or_else(|| {
            ModuleError::Failed(format!("host `{}` is not in `members`", cx.host))
        })?;
        if w.guessed {
            // Never add a member on a guess: plan again, now that the certificates task of
            // this run may have installed the certificate, and apply that plan.
            let plan = self.plan_configured(cx).await?;
            return match plan.work::<ConfigWork>() {
                Some(work) if work.guessed => Err(ModuleError::Failed(format!(
                    "`{}` is missing: cannot ask the running cluster whether `{}` is a member (run the certificates task first)",
                    self.cert(cx.host),
                    cx.host
                ))),
                Some(work) => Box::pin(self.apply_configured(cx, work)).await,
                None => Ok(()),
            };
        }
        for m in &w.missing {
            m.check(cx).await?;
        }
        if let Some(r) = &w.removal {
            let args = format!("member remove {:x}", r.id);
            exec::check(
                cx,
                &self.ctl(cx.host, &r.through, &args),
                &format!("etcdctl {args}"),
            )
            .await?;
            self.wait_healthy(cx, &r.through).await?;
        }
        if let Some(cmd) = &w.set_aside {
            exec::check(cx, cmd, "set the removed member's data aside").await?;
        }
        if let Some(cmd) = &w.prepare {
            exec::check(cx, cmd, cmd).await?;
        }
        if let Some(unit) = &w.unit {
            content::apply(cx, unit).await?;
            if matches!(unit, ContentWork::Write { .. }) {
                let cmd = "systemctl daemon-reload";
                exec::check(cx, cmd, cmd).await?;
            }
        }
        if let Some(through) = &w.add {
            let args = format!(
                "member add {} --peer-urls={}",
                quote(&me.name),
                quote(&self.peer_url(me))
            );
            let cmd = self.ctl(cx.host, through, &args);
            // etcd refuses to add a voting member ("unhealthy cluster") unless every member
            // has been connected for the last 5 s: after a member restarted, wait it out.
            // Only the inventory's members are waited for (a stale member may be down).
            let inventory: Vec<String> = members.iter().map(|m| self.client_url(m)).collect();
            let healthy: Vec<String> = through
                .iter()
                .filter(|u| inventory.contains(u))
                .cloned()
                .collect();
            if !healthy.is_empty() {
                self.wait_healthy(cx, &healthy).await?;
            }
            let deadline = Instant::now() + Duration::from_secs(self.timeout);
            loop {
                let out = exec::run(cx, &cmd).await?;
                if out.status == 0 {
                    break;
                }
                let unhealthy = String::from_utf8_lossy(&out.stderr).contains("unhealthy cluster")
                    || String::from_utf8_lossy(&out.stdout).contains("unhealthy cluster");
                if !unhealthy || Instant::now() >= deadline {
                    return Err(exec::failure(&format!("etcdctl {args}"), &out));
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        if let Some(file) = &w.file {
            content::apply(cx, file).await?;
        }
        if let Some(locator) = &w.locator {
            content::apply(cx, locator).await?;
        }
        if w.join {
            self.start(cx, &w.config, "start", true).await?;
            self.wait_healthy(cx, &[self.client_url(me)]).await?;
            if let Some(text) = &w.settle {
                self.write_config(cx, &w.config, text).await?;
            }
        }
        Ok(())
    }

    /// Whether this host runs etcd with the package's unit or the module's, and the errors
    /// that stop the step before it writes anything: a binary missing, or member data that
    /// the package's own start left (see [`host::package_default_data`]).
    pub(super) fn check_install(
        &self,
        cx: &HostContext<'_>,
        config: &str,
        provided: &host::Provided,
        unit_state: &stat::PathState,
        local_member: bool,
        config_state: &stat::PathState,
    ) -> Result<(Install, Vec<Required>), ModuleError> {
        let unit_path = unit::unit_path(&self.service);
        let ours = unit_state.link.is_none()
            && unit_state
                .content
                .as_deref()
                .is_some_and(|c| c.starts_with(unit::UNIT_HEADER.as_bytes()));
        let none_other = unit_state.kind == stat::Kind::Missing
            && provided.units.iter().all(|u| *u == unit_path);
        let install = if ours || none_other {
            Install::Own
        } else {
            Install::Package
        };
        let required = |path: &str, hint: String| Required {
            path: path.to_string(),
            error: format!("`{path}` is not an executable on `{}`: {hint}", cx.host),
        };
        let mut missing = Vec::new();
        if install == Install::Own && !provided.executable {
            missing.push(required(
                &self.executable,
                format!(
                    "no unit `{}` is installed either: install `etcd-server` or set `executable`",
                    unit::unit_name(&self.service)
                ),
            ));
        }
        if !provided.etcdctl {
            missing.push(required(
                &self.etcdctl,
                "install `etcd-client` or set `etcdctl`".into(),
            ));
        }
        if host::package_default_data(
            local_member,
            provided.stamped,
            config_state.content.as_deref(),
        ) {
            let member = format!("{}/member", self.data_dir.trim_end_matches('/'));
            return Err(ModuleError::Failed(format!(
                "`{member}` on `{}` was not made by pgdeploy: etcd was started with the package's defaults (`{config}` has no `ETCD_INITIAL_CLUSTER` and pgdeploy never started etcd here, no `{STAMP}`), which makes a lone single-member cluster, not a member of this one; pgdeploy never deletes data: if the host holds nothing of value, run `systemctl stop {} && rm -rf {}` on it and apply again, and install etcd with `packages: {{start_services: false}}`",
                cx.host,
                quote(&self.service),
                quote(&member)
            )));
        }
        Ok((install, missing))
    }

    /// The system user and the data directory, when missing: their changes, and the command
    /// creating them.
    pub(super) fn prepare(
        &self,
        provided: &host::Provided,
        changes: &mut Vec<Change>,
    ) -> Option<String> {
        let mut cmds = Vec::new();
        if !provided.user {
            changes.push(Change::new(format!(
                "create the system user `{}` (group `{}`, no login)",
                self.user, self.user
            )));
            cmds.push(unit::user_script(&self.user, &self.data_dir));
        }
        if !provided.data_dir {
            changes.push(Change::new(format!(
                "create `{}` (owner `{}`, mode `0700`)",
                self.data_dir, self.user
            )));
            cmds.push(unit::data_dir_script(&self.user, &self.data_dir));
        }
        (!cmds.is_empty()).then(|| cmds.join(" && "))
    }

    /// A root-owned 0644 file with `text`: its changes (with the diff) and work.
    pub(super) fn decide_file(
        &self,
        dest: &str,
        text: String,
        state: &stat::PathState,
        changes: &mut Vec<Change>,
    ) -> Result<Option<ContentWork>, ModuleError> {
        let desired = Desired {
            dest,
            content: text.into_bytes(),
            wanted: self.file_attrs(),
            validate: None,
        };
        Ok(content::decide(&desired, state)?.map(|(c, work)| {
            changes.extend(c);
            work
        }))
    }
}
