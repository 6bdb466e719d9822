//! `cargo xtask bench net` (aci's `benches/net/`): guest↔host TCP throughput and 1-byte
//! round trips through a published port and over the network's bridge, against the same
//! `aci-nettool` transfers between two plain network namespaces joined by a veth pair, in the
//! same run; through the L1 runner (it needs real KVM and root).
//!
//! Environment (carried into L1): `ACI_BENCH_RUNS` runs per figure (default 3, medians
//! printed), `ACI_BENCH_NET_MIB` MiB per transfer (default 32), `ACI_BENCH_NET_RR` round trips
//! per latency run (default 500).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::{guest, l1, nettool, setup};

/// Builds the guest artifacts, the static tool and the bench (with `build_bench`), then runs
/// the bench through the L1 runner.
pub fn run(build_bench: fn(&str, &str) -> Result<PathBuf>) -> Result<ExitCode> {
    setup::ensure()?;
    guest::build()?;
    nettool::build()?;
    let exe = build_bench("aci", "net")?;
    let status = l1::run(&[exe.to_string_lossy().into_owned()], &l1::RunOptions::default())?;
    Ok(if status == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
