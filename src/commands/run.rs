//! `pgdeploy apply`, `plan` and `check`: one run, three ways of asking for it.

use crate::cli::{ApplyArgs, ConnectArgs, PlanArgs};
use crate::exit::Exit;
use crate::run::{run, RunMode, RunOptions};

fn options(
    connect: &ConnectArgs,
    mode: RunMode,
    detailed: bool,
    diff: bool,
    json: bool,
    color: bool,
) -> RunOptions {
    RunOptions {
        mode,
        detailed_exitcode: detailed,
        forks: connect.forks.map(usize::from),
        connect: connect.ssh.settings(),
        diff,
        json,
        color,
    }
}

fn block_on(connect: &ConnectArgs, opts: RunOptions) -> anyhow::Result<Exit> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(&connect.run, &opts))
}

pub fn apply(args: &ApplyArgs, json: bool, color: bool) -> anyhow::Result<Exit> {
    let mode = if args.check {
        RunMode::Plan
    } else {
        RunMode::Apply
    };
    let opts = options(&args.connect, mode, false, args.diff, json, color);
    block_on(&args.connect, opts)
}

pub fn plan(args: &PlanArgs, json: bool, color: bool) -> anyhow::Result<Exit> {
    let opts = options(
        &args.connect,
        RunMode::Plan,
        args.detailed_exitcode,
        true,
        json,
        color,
    );
    block_on(&args.connect, opts)
}

pub fn check(args: &ConnectArgs, json: bool, color: bool) -> anyhow::Result<Exit> {
    let opts = options(args, RunMode::Plan, true, true, json, color);
    block_on(args, opts)
}
