//! Diagnostics: errors and warnings about the user's input, each pinned to a place.
//!
//! Every problem found before a host is touched becomes a [`Diagnostic`] naming the file, the
//! line and column (1-based), and the field path (`plays[2].tasks[0].patroni.ttl`). Loaders
//! collect them in [`Diagnostics`] so that all errors of a file are reported at once.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A position in a source file, 1-based like editors show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Mark {
    pub line: u32,
    pub col: u32,
}

/// A source file as it is named in messages (the path the user gave, not canonicalised).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceFile(Arc<Path>);

impl SourceFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SourceFile(Arc::from(path.into().into_boxed_path()))
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl fmt::Display for SourceFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.display())
    }
}

/// Where something is: a file and, when known, a position in it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    pub file: SourceFile,
    pub mark: Option<Mark>,
}

impl Location {
    pub fn new(file: &SourceFile, mark: Mark) -> Self {
        Location {
            file: file.clone(),
            mark: Some(mark),
        }
    }
    pub fn file(file: &SourceFile) -> Self {
        Location {
            file: file.clone(),
            mark: None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.mark {
            Some(m) => write!(f, "{}:{}:{}", self.file, m.line, m.col),
            None => write!(f, "{}", self.file),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem with the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub location: Option<Location>,
    /// Field path such as `plays[0].tasks[3].file.mode`; empty when the problem is the file.
    pub path: String,
    pub message: String,
    /// A hint such as "did you mean `listen`?".
    pub help: Option<String>,
    /// The hosts this problem is about, in inventory order, when it depends on their
    /// variables (a template that fails for some hosts); empty when it is about the input
    /// itself (an unknown field is wrong whatever the host), so it is reported once.
    pub hosts: Vec<String>,
    /// More about the problem that is not a fix (hosts that fail in other ways).
    pub note: Option<String>,
}

impl Diagnostic {
    pub fn error(
        location: Option<Location>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Error,
            location,
            path: path.into(),
            message: message.into(),
            help: None,
            hosts: Vec::new(),
            note: None,
        }
    }
    pub fn warning(
        location: Option<Location>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(location, path, message)
        }
    }
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
    pub fn with_hosts(mut self, hosts: Vec<String>) -> Self {
        self.hosts = hosts;
        self
    }
    /// The message with the hosts it is about: "undefined variable `x` for hosts `pg1`, `pg2`".
    pub fn message_with_hosts(&self) -> String {
        match hosts_phrase(&self.hosts) {
            Some(hosts) => format!("{} {hosts}", self.message),
            None => self.message.clone(),
        }
    }
    /// `error: file:line:column: field.path: message`, the first line of the report.
    pub fn headline(&self) -> String {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut out = format!("{kind}: ");
        if let Some(loc) = &self.location {
            out.push_str(&format!("{loc}: "));
        }
        if !self.path.is_empty() {
            out.push_str(&format!("{}: ", self.path));
        }
        out.push_str(&self.message_with_hosts());
        out
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// "for host `pg1`", "for hosts `pg1`, `pg2`", "for hosts `pg1`, `pg2`, `pg3` and 7 other
/// hosts": the first few by name, so a thousand hosts make one line.
pub fn hosts_phrase(hosts: &[String]) -> Option<String> {
    const NAMED: usize = 3;
    let named = |hs: &[String]| {
        hs.iter()
            .map(|h| format!("`{h}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match hosts {
        [] => None,
        [one] => Some(format!("for host `{one}`")),
        hs if hs.len() <= NAMED + 1 => Some(format!("for hosts {}", named(hs))),
        hs => Some(format!(
            "for hosts {} and {} other hosts",
            named(&hs[..NAMED]),
            hs.len() - NAMED
        )),
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.headline())?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        if let Some(note) = &self.note {
            write!(f, "\n  note: {note}")?;
        }
        Ok(())
    }
}

/// The problems one task has on each host, merged for the report: a problem about the input
/// itself (`None`: the same whatever the host) once, without hosts; a problem that depends on
/// the host once per distinct message, naming the hosts that have it. At most
/// [`MAX_VARIANTS`] distinct messages are kept for one field; the hosts of the others are
/// counted in a note (a value rendered from `inventory_hostname` differs on every host).
pub fn merge_per_host(found: Vec<(Diagnostic, Option<String>)>) -> Vec<Diagnostic> {
    let mut out: Vec<Diagnostic> = Vec::new();
    // Index in `out` of each host-dependent problem, by everything but its hosts.
    let mut groups: Vec<usize> = Vec::new();
    let mut overflow: Vec<(usize, Vec<String>)> = Vec::new();
    for (d, host) in found {
        let Some(host) = host else {
            if !out.iter().any(|o| o.hosts.is_empty() && *o == d) {
                out.push(d);
            }
            continue;
        };
        let same = |o: &Diagnostic| {
            (o.severity, &o.location, &o.path, &o.message, &o.help)
                == (d.severity, &d.location, &d.path, &d.message, &d.help)
        };
        if let Some(&i) = groups.iter().find(|&&i| same(&out[i])) {
            if !out[i].hosts.contains(&host) {
                out[i].hosts.push(host);
            }
            continue;
        }
        let variants: Vec<usize> = groups
            .iter()
            .copied()
            .filter(|&i| (&out[i].location, &out[i].path) == (&d.location, &d.path))
            .collect();
        if variants.len() >= MAX_VARIANTS {
            let last = variants[variants.len() - 1];
            match overflow.iter_mut().find(|(i, _)| *i == last) {
                Some((_, hosts)) if !hosts.contains(&host) => hosts.push(host),
                Some(_) => {}
                None => overflow.push((last, vec![host])),
            }
            continue;
        }
        groups.push(out.len());
        out.push(d.with_hosts(vec![host]));
    }
    for (i, hosts) in overflow {
        let n = hosts.len();
        let s = if n == 1 { "" } else { "s" };
        out[i].note = Some(format!(
            "the same field also fails for {n} other host{s}, with other values"
        ));
    }
    out
}

/// How many different messages about one field are shown (see [`merge_per_host`]).
pub const MAX_VARIANTS: usize = 3;

/// All the problems found in one load, in the order of their position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.is_error())
    }
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| !d.is_error())
    }
    /// Sorts by file and position and drops exact duplicates (the same template error
    /// found once per host is reported once).
    pub fn sorted(mut self) -> Self {
        self.0.sort_by(|a, b| {
            (&a.location, a.severity, &a.path, &a.message).cmp(&(
                &b.location,
                b.severity,
                &b.path,
                &b.message,
            ))
        });
        self.0.dedup();
        self
    }
    /// `Ok(value)` when no error was found (warnings allowed), else these diagnostics.
    pub fn into_result<T>(self, value: T) -> Result<T, Diagnostics> {
        if self.has_errors() {
            Err(self)
        } else {
            Ok(value)
        }
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// The closest of `candidates` to `given`, when close enough to be a likely typo.
pub fn did_you_mean<'a>(
    given: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(given, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// "did you mean `x`?" or the list of valid names, for an unknown name.
pub fn unknown_name_help(given: &str, valid: &[&str]) -> Option<String> {
    if let Some(best) = did_you_mean(given, valid.iter().copied()) {
        return Some(format!("did you mean `{best}`?"));
    }
    if valid.is_empty() {
        return None;
    }
    let list: Vec<String> = valid.iter().map(|v| format!("`{v}`")).collect();
    Some(format!("valid names are {}", list.join(", ")))
}

/// A field path under construction: `plays[2].tasks[0].patroni.ttl`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FieldPath(String);

impl FieldPath {
    pub fn root() -> Self {
        FieldPath(String::new())
    }
    pub fn key(&self, key: &str) -> Self {
        if self.0.is_empty() {
            FieldPath(key.to_string())
        } else {
            FieldPath(format!("{}.{key}", self.0))
        }
    }
    pub fn index(&self, i: usize) -> Self {
        FieldPath(format!("{}[{i}]", self.0))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(names: &[&str]) -> Vec<String> {
        names.iter().map(|h| h.to_string()).collect()
    }

    #[test]
    fn hosts_are_named_then_counted() {
        assert_eq!(hosts_phrase(&[]), None);
        assert_eq!(hosts_phrase(&hosts(&["a"])).unwrap(), "for host `a`");
        assert_eq!(
            hosts_phrase(&hosts(&["a", "b", "c", "d"])).unwrap(),
            "for hosts `a`, `b`, `c`, `d`"
        );
        assert_eq!(
            hosts_phrase(&hosts(&["a", "b", "c", "d", "e"])).unwrap(),
            "for hosts `a`, `b`, `c` and 2 other hosts"
        );
    }

    #[test]
    fn static_problems_once_host_problems_grouped_by_message() {
        let file = SourceFile::new("pb.yml");
        let at = |col| Some(Location::new(&file, Mark { line: 1, col }));
        let unknown = Diagnostic::error(at(1), "x.mdoe", "unknown field `mdoe`").with_help("h");
        let undefined = Diagnostic::error(at(9), "x.content", "undefined variable `v`");
        let found = vec![
            (unknown.clone(), None),
            (undefined.clone(), Some("pg1".to_string())),
            (unknown.clone(), None),
            (undefined.clone(), Some("pg2".to_string())),
        ];
        let merged = merge_per_host(found);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0], unknown);
        assert_eq!(merged[1].hosts, hosts(&["pg1", "pg2"]));
        assert_eq!(
            merged[1].to_string(),
            "error: pb.yml:1:9: x.content: undefined variable `v` for hosts `pg1`, `pg2`"
        );
    }
}
