//! Running external commands with errors that name the step.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// Runs `cmd` to completion; fails naming `step` and the exit status.
pub fn run(step: &str, cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("{step}: could not start {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!("{step} failed ({status})");
    }
    Ok(())
}

/// Runs `cmd` with its output sent to `log`; on failure, the error carries the log's tail.
pub fn run_logged(step: &str, cmd: &mut Command, log: &Path) -> Result<()> {
    let file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let err_file = file.try_clone()?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err_file)
        .status()
        .with_context(|| format!("{step}: could not start {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!("{step} failed ({status}); last lines of {}:\n{}", log.display(), tail(log, 30));
    }
    Ok(())
}

/// Runs `cmd` and returns its standard output as text.
pub fn output(step: &str, cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("{step}: could not start {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!("{step} failed ({})", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The last `lines` lines of a text file ("" when unreadable).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
