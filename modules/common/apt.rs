//! `apt-get update` that fails when a source fails, and the error that says which one.
//!
//! By default `apt-get update` exits 0 when a source is unreachable, answers 404 or is signed
//! by a key apt does not have: it prints `Err:` and `W: Failed to fetch …` and keeps the old
//! index (or none), and the failure only shows later as "Unable to locate package".
//! `-o APT::Update::Error-Mode=any` (apt ≥ 2.3, so Debian 12's 2.6 and Ubuntu 24.04's 2.7)
//! makes it exit 100 and print those lines as `E:`. Older apt ignores the option, so the
//! output is read as well: a fetch or signature failure is an error whatever the exit status.

use pgdeploy_core::transport::ExecOutput;

/// The update command (messages in English, since they are parsed).
pub(crate) const UPDATE: &str =
    "LC_ALL=C DEBIAN_FRONTEND=noninteractive apt-get -q -o APT::Update::Error-Mode=any update";

/// What failed in an `apt-get update`, one entry per source and problem, in apt's words;
/// empty when it succeeded.
pub(crate) fn update_problems(out: &ExecOutput) -> Vec<String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut problems: Vec<String> = Vec::new();
    let push = |problems: &mut Vec<String>, p: String| {
        if !problems.contains(&p) {
            problems.push(p);
        }
    };
    for line in stderr.lines().chain(stdout.lines()) {
        let line = line.trim_end();
        let Some(msg) = line
            .strip_prefix("E: ")
            .or_else(|| line.strip_prefix("W: "))
        else {
            continue;
        };
        if let Some(rest) = msg.strip_prefix("Failed to fetch ") {
            // `Failed to fetch URL  REASON` (two spaces between them).
            let (url, reason) = rest.split_once("  ").unwrap_or((rest, ""));
            push(&mut problems, format!("`{url}`: {}", reason.trim()));
        } else if let Some(rest) = msg.strip_prefix("GPG error: ") {
            let (repo, reason) = rest.split_once(": ").unwrap_or((rest, ""));
            push(&mut problems, format!("`{repo}`: {}", reason.trim()));
        } else if let Some(rest) = msg.strip_prefix("The repository '") {
            let (repo, reason) = rest.split_once("' ").unwrap_or((rest, ""));
            push(
                &mut problems,
                format!("`{repo}` {}", reason.trim().trim_end_matches('.')),
            );
        } else if line.starts_with("E: ") && !msg.starts_with("Some index files failed") {
            push(&mut problems, msg.trim_end_matches('.').to_string());
        }
    }
    if problems.is_empty() {
        // Older apt without `E:` lines for a source: `Err:N URL SUITE FILE` and the reason on
        // the next line.
        let mut lines = stdout.lines().peekable();
        while let Some(line) = lines.next() {
            if let Some(rest) = line.strip_prefix("Err:") {
                let source = rest.split_once(' ').map_or(rest, |(_, s)| s).trim();
                let reason = lines
                    .next_if(|l| l.starts_with("  "))
                    .map(str::trim)
                    .unwrap_or_default();
                push(&mut problems, format!("`{source}`: {reason}"));
            }
        }
    }
    if problems.is_empty() && out.status != 0 {
        let text = if stderr.trim().is_empty() {
            stdout.trim()
        } else {
            stderr.trim()
        };
        push(
            &mut problems,
            format!("exit status {}: {}", out.status, last_lines(text, 3)),
        );
    }
    problems
}

/// The last `n` lines of `text`, joined by ` | `.
pub(crate) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(status: i32, stdout: &str, stderr: &str) -> ExecOutput {
        ExecOutput {
            status,
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    // The outputs below are Debian 12's apt 2.6.1, recorded against loopback sources.

    #[test]
    fn an_unreachable_source_names_its_url() {
        let o = out(
            100,
            "Err:1 http://127.0.0.1:9 bookworm InRelease\n  Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)\nReading package lists...\n",
            "W: Failed to fetch http://127.0.0.1:9/dists/bookworm/InRelease  Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)\n\
             W: Some index files failed to download. They have been ignored, or old ones used instead.\n\
             E: Failed to fetch http://127.0.0.1:9/dists/bookworm/InRelease  Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)\n\
             E: Some index files failed to download. They have been ignored, or old ones used instead.\n",
        );
        assert_eq!(
            update_problems(&o),
            ["`http://127.0.0.1:9/dists/bookworm/InRelease`: Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)"]
        );
    }

    #[test]
    fn exit_zero_with_a_failed_fetch_is_still_a_failure() {
        // apt without `Error-Mode` (or before 2.3): exit 0, only `Err:` on stdout.
        let o = out(
            0,
            "Err:1 http://127.0.0.1:9 bookworm InRelease\n  Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)\nReading package lists...\n",
            "",
        );
        assert_eq!(
            update_problems(&o),
            ["`http://127.0.0.1:9 bookworm InRelease`: Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)"]
        );
        assert!(update_problems(&out(0, "Hit:1 http://m bookworm InRelease\n", "")).is_empty());
        // A warning about the configuration is not a failed source.
        let w = "W: Target Packages (main/binary-amd64/Packages) is configured multiple times\n";
        assert!(update_problems(&out(0, "", w)).is_empty());
    }

    #[test]
    fn a_wrong_key_and_a_missing_suite_are_named() {
        let o = out(
            100,
            "",
            "W: GPG error: http://127.0.0.1:18080 bookworm-pgdg InRelease: The following signatures couldn't be verified because the public key is not available: NO_PUBKEY 479EA7AC8F021082\n\
             E: The repository 'http://127.0.0.1:18080 bookworm-pgdg InRelease' is not signed.\n\
             E: The repository 'http://127.0.0.1:18080 trixie-pgdg Release' does not have a Release file.\n",
        );
        assert_eq!(
            update_problems(&o),
            [
                "`http://127.0.0.1:18080 bookworm-pgdg InRelease`: The following signatures couldn't be verified because the public key is not available: NO_PUBKEY 479EA7AC8F021082",
                "`http://127.0.0.1:18080 bookworm-pgdg InRelease` is not signed",
                "`http://127.0.0.1:18080 trixie-pgdg Release` does not have a Release file",
            ]
        );
    }

    #[test]
    fn another_failure_keeps_apts_last_words() {
        let o = out(
            100,
            "",
            "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 42\n",
        );
        assert_eq!(
            update_problems(&o),
            ["Could not get lock /var/lib/apt/lists/lock. It is held by process 42"]
        );
        assert_eq!(
            update_problems(&out(1, "", "boom\n")),
            ["exit status 1: boom"]
        );
    }
}
