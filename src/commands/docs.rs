//! `pgdeploy completions SHELL` and `pgdeploy man`: what a package installs beside the
//! binary, generated from the same clap definitions as the parser, so they never drift from
//! the flags. At run time rather than in `build.rs`, so the build needs no copy of the
//! command line and a packager runs the binary it ships (`pgdeploy man > pgdeploy.1`).

use clap::CommandFactory;

use crate::cli::Cli;
use pgdeploy_core::exit::Exit;

/// The completion script for `shell` on stdout.
pub(crate) fn completions(shell: clap_complete::Shell) -> anyhow::Result<Exit> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "pgdeploy", &mut out);
    pgdeploy_core::output::write(&String::from_utf8_lossy(&out));
    Ok(Exit::Success)
}

/// The manual page on stdout: the command, then every subcommand with its synopsis,
/// description and options, in one page (`man pgdeploy` finds all of it; clap_mangen alone
/// would point at `pgdeploy-validate(1)` pages that no package ships).
pub(crate) fn man() -> anyhow::Result<Exit> {
    pgdeploy_core::output::write(&man_page()?);
    Ok(Exit::Success)
}

/// The roff text of the manual page; `.TH` is its first line.
pub(crate) fn man_page() -> anyhow::Result<String> {
    let cmd = Cli::command();
    let man = clap_mangen::Man::new(cmd.clone());
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    out.extend_from_slice(b".SH COMMANDS\n");
    for sub in cmd.get_subcommands() {
        command_section(sub, "pgdeploy", &mut out)?;
    }
    man.render_version_section(&mut out)?;
    let text = String::from_utf8(out)?;
    // clap_mangen defines `\*(Aq` (an apostrophe) before each part it renders; once, right
    // after `.TH`, is enough and keeps `.TH` the page's first request.
    let quote_defs = [".ie \\n(.g .ds Aq \\(aq", ".el .ds Aq '"];
    let mut page = String::with_capacity(text.len());
    for line in text.lines().filter(|l| !quote_defs.contains(l)) {
        page.push_str(line);
        page.push('\n');
        if line.starts_with(".TH ") {
            for def in quote_defs {
                page.push_str(def);
                page.push('\n');
            }
        }
    }
    Ok(page)
}

/// `.SS "pgdeploy validate"`: what the subcommand does, its synopsis and options, then its
/// own subcommands (`pgdeploy lab up`) the same way.
fn command_section(sub: &clap::Command, parent: &str, out: &mut Vec<u8>) -> anyhow::Result<()> {
    if sub.is_hide_set() {
        return Ok(());
    }
    let name = format!("{parent} {}", sub.get_name());
    let page = clap_mangen::Man::new(sub.clone().bin_name(name.clone()));
    out.extend_from_slice(format!(".SS \"{name}\"\n").as_bytes());
    for render in [
        clap_mangen::Man::render_description_section,
        clap_mangen::Man::render_synopsis_section,
        clap_mangen::Man::render_options_section,
    ] {
        let mut part = Vec::new();
        render(&page, &mut part)?;
        // The part's own `.SH` header would end the COMMANDS section.
        let part = String::from_utf8(part)?;
        for line in part.lines().filter(|l| !l.starts_with(".SH")) {
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
        out.extend_from_slice(b".PP\n");
    }
    for nested in sub.get_subcommands() {
        command_section(nested, &name, out)?;
    }
    Ok(())
}
