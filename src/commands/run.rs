//! `pgdeploy apply`, `plan` and `check`: one run, three ways of asking for it.

use crate::cli::{ApplyArgs, ApplySavedArgs, ConnectArgs, PlanArgs};
use pgdeploy_core::exit::Exit;
use pgdeploy_engine::run::{run, RunMode, RunOptions};

fn options(
    connect: &ConnectArgs,
    mode: RunMode,
    detailed: bool,
    diff: bool,
    json: bool,
    color: bool,
    allow_removal: bool,
) -> RunOptions {
    RunOptions {
        lock_wait: std::time::Duration::ZERO,
        mode,
        detailed_exitcode: detailed,
        forks: connect.forks.map(usize::from),
        connect: connect.ssh.settings(),
        diff,
        json,
        color,
        allow_removal,
    }
}

fn block_on(connect: &ConnectArgs, opts: RunOptions) -> anyhow::Result<Exit> {
    runtime()?.block_on(run(&connect.run.to_load(), &opts))
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

pub(crate) fn apply(args: &ApplyArgs, json: bool, color: bool) -> anyhow::Result<Exit> {
    let args = match args {
        ApplyArgs::Playbook(args) => args,
        ApplyArgs::Saved(saved) => return apply_saved(saved, json, color),
    };
    let mode = if args.check {
        RunMode::Plan
    } else {
        RunMode::Apply
    };
    let opts = RunOptions {
        lock_wait: std::time::Duration::from_secs(args.lock_wait),
        ..options(
            &args.connect,
            mode,
            false,
            args.diff,
            json,
            color,
            args.allow_removal,
        )
    };
    block_on(&args.connect, opts)
}

/// `apply PLANFILE` ([`pgdeploy_engine::run::saved`]).
fn apply_saved(args: &ApplySavedArgs, json: bool, color: bool) -> anyhow::Result<Exit> {
    let opts = RunOptions {
        mode: RunMode::Apply,
        detailed_exitcode: false,
        forks: args.forks.map(usize::from),
        connect: args.ssh.settings(),
        diff: args.diff,
        json,
        color,
        // A saved plan is applied as it was made: a plan saved with `--allow-removal` holds
        // its removals as changes, one saved without it holds none.
        allow_removal: args.allow_removal,
        lock_wait: std::time::Duration::from_secs(args.lock_wait),
    };
    runtime()?.block_on(pgdeploy_engine::run::saved::apply_saved(
        &args.plan,
        args.vault.vault_password_file.clone(),
        &pgdeploy_modules::CATALOGUE,
        &opts,
    ))
}

pub(crate) fn plan(args: &PlanArgs, json: bool, color: bool) -> anyhow::Result<Exit> {
    let opts = options(
        &args.connect,
        RunMode::Plan,
        args.detailed_exitcode,
        true,
        json,
        color,
        args.allow_removal,
    );
    match &args.out {
        Some(out) => runtime()?.block_on(pgdeploy_engine::run::saved::plan_and_save(
            &args.connect.run.to_load(),
            &opts,
            out,
        )),
        None => block_on(&args.connect, opts),
    }
}

pub(crate) fn check(args: &ConnectArgs, json: bool, color: bool) -> anyhow::Result<Exit> {
    let opts = options(args, RunMode::Plan, true, true, json, color, false);
    block_on(args, opts)
}
