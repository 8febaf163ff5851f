//! Quoting for `/bin/sh` command lines: every path or name a module puts in a command goes
//! through [`quote`], so spaces, quotes and `$` in values never change the command. The
//! quoting itself is the transport's ([`pgdeploy_core::transport::shell::quote`]): one rule for every
//! command line the engine builds.

pub(crate) use pgdeploy_core::transport::shell::quote;

/// Several words, quoted and joined by spaces.
pub(crate) fn quote_all<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(quote("/etc/etcd/etcd.conf"), "/etc/etcd/etcd.conf");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("$HOME"), "'$HOME'");
        assert_eq!(quote_all(&["a", "b c"]), "a 'b c'");
    }
}
