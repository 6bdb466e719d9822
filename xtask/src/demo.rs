//! `cargo xtask demo`: boot the aci guest in aci's own VMM and show it come up.
//!
//! Builds the guest artifacts and the `aci-vmm` `boot` example, then runs the example where
//! real KVM is (directly, or inside the nested L1 VM): the guest kernel boots, the agent
//! prints its ready line and powers the VM off.

use std::process::{Command, ExitCode};

use anyhow::{Context, Result};

use crate::{cmd, guest, l1, paths};

/// Runs the demo.
pub fn run(_args: &[String]) -> Result<ExitCode> {
    let artifacts = guest::build()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    cmd::run(
        "building the boot example",
        Command::new(cargo).current_dir(paths::workspace()).args([
            "build",
            "--quiet",
            "--package",
            "aci-vmm",
            "--example",
            "boot",
        ]),
    )?;
    let boot = paths::target().join("debug/examples/boot");
    let argv: Vec<String> = vec![
        boot.to_string_lossy().into_owned(),
        "--kernel".into(),
        artifacts.vmlinux.to_string_lossy().into_owned(),
        "--initrd".into(),
        artifacts.initramfs.to_string_lossy().into_owned(),
        "--append".into(),
        "aci.poweroff=ready".into(),
    ];
    let status = l1::run(&argv, &l1::RunOptions::default()).context("running the demo")?;
    Ok(crate::exit_code(status))
}
