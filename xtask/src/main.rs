//! # xtask — aci's project tooling
//!
//! `cargo xtask <command>` (an alias in `.cargo/config.toml`):
//!
//! - `setup`  installs the Debian packages the build and tests need (idempotent).
//! - `guest`  builds the guest kernel (cached by its inputs), the static agent and the
//!   guest initramfs into `target/guest/`.
//! - `l1 [--timeout SECS] -- CMD...`  runs CMD where real KVM is: directly on a host with
//!   hardware KVM, otherwise inside a nested QEMU TCG VM ("L1") with emulated AMD SVM.
//! - `test`   set-up, guest build, host unit tests, then the KVM tier through `l1`.
//! - `demo`   boots the guest in aci's VMM and shows it reaching its ready line.
//! - `bench`  runs the benchmark binaries where real KVM is (boot time against QEMU).

mod bench;
mod bench_net;
mod bench_tcg;
mod cache;
mod cmd;
mod demo;
mod guest;
mod kernel;
mod l1;
mod l1_image;
mod nettool;
mod paths;
mod setup;
mod static_build;
mod test;

use std::process::ExitCode;

use anyhow::{bail, Result};

const USAGE: &str =
    "usage: cargo xtask <setup | guest | l1 [--timeout SECS] -- CMD... | test | demo | bench [boot|images]>";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<ExitCode> {
    let Some((command, rest)) = args.split_first() else {
        bail!("{USAGE}");
    };
    match command.as_str() {
        "setup" => setup::ensure().map(|()| ExitCode::SUCCESS),
        "guest" => {
            let artifacts = guest::build()?;
            artifacts.print();
            Ok(ExitCode::SUCCESS)
        }
        "l1" => {
            let (options, argv) = l1::RunOptions::parse(rest)?;
            let status = l1::run(&argv, &options)?;
            Ok(exit_code(status))
        }
        "test" => test::run(rest),
        "demo" => demo::run(rest),
        "bench" => bench::run(rest),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => bail!("unknown command {other:?}\n{USAGE}"),
    }
}

/// Maps a child's exit status (0..=255) onto this process's exit code.
fn exit_code(status: i32) -> ExitCode {
    ExitCode::from(u8::try_from(status).unwrap_or(1))
}
