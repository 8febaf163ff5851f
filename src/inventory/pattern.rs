//! Host patterns (minimal: names, groups, `all`), replaced by the full Ansible syntax.

use super::Inventory;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("empty host pattern")]
    Empty,
    #[error("pattern `{pattern}` matches no host or group")]
    NoMatch {
        pattern: String,
        suggestion: Option<String>,
    },
}

pub fn select<'a>(inv: &'a Inventory, pattern: &str) -> Result<Vec<&'a str>, PatternError> {
    let p = pattern.trim();
    if p.is_empty() {
        return Err(PatternError::Empty);
    }
    if p == "all" || p == "*" {
        return Ok(inv.hosts.keys().map(String::as_str).collect());
    }
    if let Some(h) = inv.hosts.get_key_value(p) {
        return Ok(vec![h.0.as_str()]);
    }
    if inv.groups.contains_key(p) {
        return Ok(inv
            .hosts
            .values()
            .filter(|h| h.groups.iter().any(|g| g == p))
            .map(|h| h.name.as_str())
            .collect());
    }
    Err(PatternError::NoMatch {
        pattern: p.to_string(),
        suggestion: None,
    })
}
