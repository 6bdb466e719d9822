//! `cargo xtask test`: every test tier, with its set-up.
//!
//! 1. Install what is missing (`setup`), build the guest artifacts (`guest`) and the static
//!    `aci-nettool` the networking tests' image carries (`nettool`).
//! 2. Host tier: `cargo test --workspace` (KVM-tier tests show as ignored here).
//! 3. KVM tier: every test binary named `kvm_*` (integration tests `tests/kvm_*.rs`) runs
//!    with `--include-ignored` through the L1 runner, so it gets real KVM. In CI a missing
//!    KVM, QEMU or L1 boot fails the run; it is never skipped.

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{bail, Context, Result};

use crate::{guest, l1, nettool, paths, setup};

/// A built KVM-tier test binary and the package directory to run it from.
struct TestBinary {
    executable: PathBuf,
    package_dir: PathBuf,
}

/// Runs both tiers; fails if either fails.
pub fn run(args: &[String]) -> Result<ExitCode> {
    let filter: Vec<String> = args.to_vec();
    setup::ensure()?;
    guest::build()?;
    // The networking tests' image carries the static network tool.
    nettool::build()?;
    let mut failed = Vec::new();

    eprintln!("xtask test: host tier (cargo test --workspace)");
    let host = Command::new(cargo())
        .current_dir(paths::workspace())
        .args(["test", "--workspace"])
        .arg("--")
        .args(&filter)
        .status()
        .context("running cargo test")?;
    if !host.success() {
        failed.push("host tier");
    }

    eprintln!("xtask test: KVM tier (tests/kvm_*.rs through the L1 runner)");
    let binaries = kvm_test_binaries()?;
    if binaries.is_empty() {
        bail!("no KVM-tier test binaries were built (expected tests/kvm_*.rs)");
    }
    let mut argv = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        KVM_TIER_SCRIPT.to_owned(),
        "kvm-tier".to_owned(),
        filter.join(" "),
    ];
    for b in &binaries {
        argv.push(b.package_dir.to_string_lossy().into_owned());
        argv.push(b.executable.to_string_lossy().into_owned());
    }
    let status = l1::run(&argv, &l1::RunOptions::default())?;
    if status != 0 {
        failed.push("KVM tier");
    }

    if failed.is_empty() {
        eprintln!("xtask test: all tiers passed");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("xtask test: FAILED: {}", failed.join(", "));
        Ok(ExitCode::FAILURE)
    }
}

/// Runs each (directory, binary) pair with the ignored KVM tests included.
const KVM_TIER_SCRIPT: &str = r#"
filter=$1; shift
fail=0
while [ $# -ge 2 ]; do
    dir=$1; bin=$2; shift 2
    echo "== KVM tier: $(basename "$bin") (in $dir)"
    (cd "$dir" && "$bin" --include-ignored --nocapture --test-threads=1 $filter) || fail=1
done
exit $fail
"#;

fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Builds the workspace's test binaries and returns the `kvm_*` ones.
fn kvm_test_binaries() -> Result<Vec<TestBinary>> {
    let out = Command::new(cargo())
        .current_dir(paths::workspace())
        .args(["test", "--workspace", "--no-run", "--message-format=json-render-diagnostics"])
        .stderr(Stdio::inherit())
        .output()
        .context("building the test binaries")?;
    if !out.status.success() {
        bail!("building the test binaries failed");
    }
    let mut found = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if msg["reason"] != "compiler-artifact" || msg["profile"]["test"] != true {
            continue;
        }
        let name = msg["target"]["name"].as_str().unwrap_or_default();
        let is_test_target = msg["target"]["kind"].as_array().is_some_and(|k| k.iter().any(|x| x == "test"));
        let (Some(exe), Some(manifest)) = (msg["executable"].as_str(), msg["manifest_path"].as_str()) else {
            continue;
        };
        if is_test_target && name.starts_with("kvm_") {
            let package_dir = PathBuf::from(manifest).parent().map(PathBuf::from).unwrap_or_default();
            found.push(TestBinary { executable: PathBuf::from(exe), package_dir });
        }
    }
    Ok(found)
}
