//! `cargo xtask bench`: build the benchmark binaries and run them where real KVM is.

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{bail, Context, Result};

use crate::{guest, l1, paths};

/// Builds the guest and the `boot` bench, then runs it through the L1 runner.
pub fn run() -> Result<ExitCode> {
    guest::build()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(paths::workspace())
        .args(["bench", "--package", "aci", "--bench", "boot", "--no-run", "--message-format=json-render-diagnostics"])
        .stderr(Stdio::inherit())
        .output()
        .context("building the boot bench")?;
    if !out.status.success() {
        bail!("building the boot bench failed");
    }
    let exe = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "boot")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .context("cargo built no boot bench executable")?;
    let status = l1::run(&[exe.to_string_lossy().into_owned()], &l1::RunOptions::default())?;
    Ok(crate::exit_code(status))
}
