//! `cargo xtask demo`: the quickstart container group, end to end, in aci's own microVM.
//!
//! Builds the guest artifacts and the `quickstart` example (`examples/quickstart.rs`), then
//! runs the example where real KVM is (directly, or inside the nested L1 VM). The example
//! starts a loopback `docker-registry`, pushes a busybox image to it, deploys busybox httpd
//! plus a sidecar that fetches from it over 127.0.0.1, prints their logs, an exec and the
//! bill, and stops the group.

use std::process::{Command, ExitCode};

use anyhow::{Context, Result};

use crate::{cmd, guest, l1, paths};

/// Runs the demo.
pub fn run(_args: &[String]) -> Result<ExitCode> {
    let artifacts = guest::build()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    cmd::run(
        "building the quickstart example",
        Command::new(cargo).current_dir(paths::workspace()).args([
            "build",
            "--quiet",
            "--package",
            "aci",
            "--example",
            "quickstart",
        ]),
    )?;
    let quickstart = paths::target().join("debug/examples/quickstart");
    let guest_dir = artifacts.vmlinux.parent().context("the guest kernel has no directory")?;
    let argv: Vec<String> = vec![
        quickstart.to_string_lossy().into_owned(),
        "--guest-dir".into(),
        guest_dir.to_string_lossy().into_owned(),
    ];
    let status = l1::run(&argv, &l1::RunOptions::default()).context("running the demo")?;
    Ok(crate::exit_code(status))
}
