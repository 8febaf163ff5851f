//! `verify`'s output: a table (one row per finding, in the order of the table of checks,
//! then a count), or one JSON document for CI.

use serde_json::json;

use super::{Finding, Outcome};

fn word(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "ok",
        Outcome::Skip => "skip",
        Outcome::Warn => "WARN",
        Outcome::Fail => "FAIL",
    }
}

fn count(f: &[Finding], o: Outcome) -> usize {
    f.iter().filter(|x| x.outcome == o).count()
}

pub(crate) fn to_text(findings: &[Finding]) -> String {
    let mut rows = vec![[
        "CHECK".to_string(),
        "RESULT".into(),
        "SUBJECT".into(),
        "DETAIL".into(),
    ]];
    for f in findings {
        rows.push([
            f.check.to_string(),
            word(f.outcome).into(),
            f.subject.clone(),
            f.message.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..3)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (c, w) in r.iter().zip(&widths) {
            line.push_str(&format!("{c:<w$}  "));
        }
        line.push_str(&r[3]);
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push_str(&format!(
        "\n{} ok, {} warnings, {} failed\n",
        count(findings, Outcome::Pass),
        count(findings, Outcome::Warn),
        count(findings, Outcome::Fail)
    ));
    out
}

pub(crate) fn to_json(findings: &[Finding], exit: u8) -> serde_json::Value {
    json!({
        "findings": findings,
        "ok": count(findings, Outcome::Pass),
        "warnings": count(findings, Outcome::Warn),
        "failed": count(findings, Outcome::Fail),
        "exit": exit,
    })
}
