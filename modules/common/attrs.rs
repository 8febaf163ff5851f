//! Owner, group and mode: comparing what a task wants with what the host has, describing the
//! difference, and the `chown`/`chmod` command that fixes it.

use super::shell::quote;
use super::stat::Ownership;
use pgdeploy_core::params::Mode;
use pgdeploy_core::transport::FileAttrs;

/// The attributes a task asks for; `None` fields are left as they are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Wanted<'a> {
    pub owner: Option<&'a str>,
    pub group: Option<&'a str>,
    pub mode: Option<Mode>,
}

impl Wanted<'_> {
    /// ` (owner `etcd`, mode `0640`)` for a creation summary, or "" when nothing is asked.
    pub(crate) fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(o) = self.owner {
            parts.push(format!("owner `{o}`"));
        }
        if let Some(g) = self.group {
            parts.push(format!("group `{g}`"));
        }
        if let Some(m) = self.mode {
            parts.push(format!("mode `{m}`"));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join(", "))
        }
    }

    /// The attributes of a new version of a file: what is asked, else what the current file
    /// has, so rewriting a file's content never loosens its mode or changes its owner.
    pub(crate) fn for_write(&self, current: Option<&Ownership>) -> FileAttrs {
        FileAttrs {
            owner: self
                .owner
                .map(str::to_string)
                .or_else(|| current.map(|c| c.owner.clone())),
            group: self
                .group
                .map(str::to_string)
                .or_else(|| current.map(|c| c.group.clone())),
            mode: self.mode.map(|m| m.0).or_else(|| current.map(|c| c.mode)),
        }
    }

    /// Everything asked, as a fix to apply to a path that was just created.
    pub(crate) fn as_fix(&self) -> AttrFix {
        AttrFix {
            owner: self.owner.map(|o| (String::new(), o.to_string())),
            group: self.group.map(|g| (String::new(), g.to_string())),
            mode: self.mode.map(|m| (0, m.0)),
        }
    }

    /// What differs between the wanted and the current attributes.
    pub(crate) fn diff(&self, current: &Ownership) -> AttrFix {
        AttrFix {
            owner: self
                .owner
                .filter(|o| !current.owner_is(o))
                .map(|o| (current.owner.clone(), o.to_string())),
            group: self
                .group
                .filter(|g| !current.group_is(g))
                .map(|g| (current.group.clone(), g.to_string())),
            mode: self
                .mode
                .filter(|m| m.0 != current.mode)
                .map(|m| (current.mode, m.0)),
        }
    }
}

/// Attributes to change, each as (current, wanted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AttrFix {
    pub owner: Option<(String, String)>,
    pub group: Option<(String, String)>,
    pub mode: Option<(u32, u32)>,
}

impl AttrFix {
    pub(crate) fn is_empty(&self) -> bool {
        self.owner.is_none() && self.group.is_none() && self.mode.is_none()
    }

    /// "owner `root` → `etcd`, mode `0644` → `0640`".
    pub(crate) fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some((from, to)) = &self.owner {
            parts.push(format!("owner `{from}` → `{to}`"));
        }
        if let Some((from, to)) = &self.group {
            parts.push(format!("group `{from}` → `{to}`"));
        }
        if let Some((from, to)) = self.mode {
            parts.push(format!("mode `{}` → `{}`", Mode(from), Mode(to)));
        }
        parts.join(", ")
    }

    /// The shell command setting these attributes on `path`; `None` when there is nothing to
    /// do. With `no_dereference`, a symlink itself is changed (`chown -h`) and mode is skipped.
    pub(crate) fn command(&self, path: &str, no_dereference: bool) -> Option<String> {
        let p = quote(path);
        let h = if no_dereference { "-h " } else { "" };
        let mut cmds = Vec::new();
        match (&self.owner, &self.group) {
            (Some((_, o)), Some((_, g))) => {
                cmds.push(format!("chown {h}{} -- {p}", quote(&format!("{o}:{g}"))))
            }
            (Some((_, o)), None) => cmds.push(format!("chown {h}{} -- {p}", quote(o))),
            (None, Some((_, g))) => cmds.push(format!("chgrp {h}{} -- {p}", quote(g))),
            (None, None) => {}
        }
        if let (Some((_, m)), false) = (self.mode, no_dereference) {
            cmds.push(format!("chmod {} -- {p}", Mode(m)));
        }
        (!cmds.is_empty()).then(|| cmds.join(" && "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current() -> Ownership {
        Ownership {
            owner: "root".into(),
            group: "root".into(),
            uid: "0".into(),
            gid: "0".into(),
            mode: 0o644,
        }
    }

    #[test]
    fn diff_and_describe() {
        let w = Wanted {
            owner: Some("etcd"),
            group: Some("0"),
            mode: Some(Mode(0o640)),
        };
        let fix = w.diff(&current());
        assert_eq!(
            fix.describe(),
            "owner `root` → `etcd`, mode `0644` → `0640`"
        );
        assert_eq!(
            fix.command("/etc/a b", false).unwrap(),
            "chown etcd -- '/etc/a b' && chmod 0640 -- '/etc/a b'"
        );
        assert_eq!(w.describe(), " (owner `etcd`, group `0`, mode `0640`)");
        assert!(Wanted::default().diff(&current()).is_empty());
        assert_eq!(Wanted::default().describe(), "");
    }

    #[test]
    fn link_fix_skips_mode() {
        let w = Wanted {
            owner: Some("a"),
            group: Some("b"),
            mode: Some(Mode(0o600)),
        };
        assert_eq!(
            w.as_fix().command("/l", true).unwrap(),
            "chown -h a:b -- /l"
        );
    }

    #[test]
    fn write_keeps_current_attributes() {
        let w = Wanted {
            owner: None,
            group: Some("etcd"),
            mode: None,
        };
        let a = w.for_write(Some(&current()));
        assert_eq!(
            (a.owner.as_deref(), a.group.as_deref(), a.mode),
            (Some("root"), Some("etcd"), Some(0o644))
        );
        assert_eq!(w.for_write(None).mode, None);
    }
}
