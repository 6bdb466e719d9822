//! Boots a guest kernel, streams its serial console to stdout, and reports how it ended.
//!
//! ```text
//! cargo run -p aci-vmm --example boot -- --kernel PATH [--initrd PATH] [--cmdline "..."]
//!     [--append "..."] [--vcpus N] [--mem MiB] [--timeout SECS] [--timestamps]
//! ```

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use aci_vmm::{SerialOutput, Vm, VmConfig};

/// The line the guest agent prints once it is up.
const READY_MARKER: &str = "aci-agent ready";

/// Copies console bytes to stdout and notes when the ready line first appears.
struct ConsoleTee {
    started: Instant,
    line: Vec<u8>,
    ready: Arc<OnceLock<Duration>>,
    /// Prefix each line with the time since start.
    timestamps: bool,
}

impl Write for ConsoleTee {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.timestamps {
            io::stdout().write_all(buf)?;
        }
        for &b in buf {
            if b == b'\n' {
                if self.timestamps {
                    let at = self.started.elapsed().as_secs_f64();
                    let line = String::from_utf8_lossy(&self.line);
                    println!("[{at:8.3}] {}", line.trim_end_matches('\r'));
                }
                if self.line.windows(READY_MARKER.len()).any(|w| w == READY_MARKER.as_bytes()) {
                    let _ = self.ready.set(self.started.elapsed());
                }
                self.line.clear();
            } else {
                self.line.push(b);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stdout().flush()
    }
}

fn usage() -> String {
    "usage: boot --kernel PATH [--initrd PATH] [--cmdline STR] [--append STR] [--vcpus N] [--mem MiB] \
     [--timeout SECS] [--timestamps]"
        .to_string()
}

/// Options of this example beyond the VM configuration.
struct Options {
    timeout: Duration,
    timestamps: bool,
}

fn parse_args() -> Result<(VmConfig, Options), String> {
    let mut args = std::env::args().skip(1);
    let mut config = VmConfig::new("");
    let mut kernel = None;
    let mut append = Vec::new();
    let mut options = Options { timeout: Duration::from_secs(60), timestamps: false };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value\n{}", usage()));
        match flag.as_str() {
            "--kernel" => kernel = Some(value()?),
            "--initrd" => config.initrd = Some(value()?.into()),
            "--cmdline" => config.cmdline = value()?,
            "--append" => append.push(value()?),
            "--vcpus" => config.vcpus = value()?.parse().map_err(|e| format!("--vcpus: {e}"))?,
            "--mem" => config.memory_mib = value()?.parse().map_err(|e| format!("--mem: {e}"))?,
            "--timeout" => {
                let secs = value()?.parse().map_err(|e| format!("--timeout: {e}"))?;
                options.timeout = Duration::from_secs(secs);
            }
            "--timestamps" => options.timestamps = true,
            "-h" | "--help" => return Err(usage()),
            other => return Err(format!("unknown argument {other}\n{}", usage())),
        }
    }
    config.kernel = kernel.ok_or_else(usage)?.into();
    for extra in append {
        config.cmdline = format!("{} {extra}", config.cmdline);
    }
    Ok((config, options))
}

fn main() -> ExitCode {
    let (mut config, options) = match parse_args() {
        Ok(parsed) => parsed,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let ready = Arc::new(OnceLock::new());
    config.serial_output = SerialOutput::Writer(Box::new(ConsoleTee {
        started,
        line: Vec::new(),
        ready: ready.clone(),
        timestamps: options.timestamps,
    }));
    let mut vm = match Vm::build(config) {
        Ok(vm) => vm,
        Err(e) => {
            let mut msg = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                msg.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("boot: {msg}");
            return ExitCode::FAILURE;
        }
    };
    let built = started.elapsed();
    let timeout = options.timeout;
    let exit = vm.wait_timeout(timeout).unwrap_or_else(|| {
        eprintln!("boot: no exit after {timeout:?}; stopping the VM");
        vm.stop()
    });
    let total = started.elapsed();
    let stats = vm.stats();
    eprintln!();
    let steps: Vec<String> =
        vm.build_timings().iter().map(|(step, took)| format!("{step} {took:.1?}")).collect();
    eprintln!("boot: kernel format {:?}, build {built:.1?} ({})", vm.kernel_format(), steps.join(", "));
    match ready.get() {
        Some(at) => eprintln!("boot: '{READY_MARKER}' after {at:?}"),
        None => eprintln!("boot: '{READY_MARKER}' not seen"),
    }
    eprintln!("boot: exit {:?} after {:?} (wall {total:?})", exit.reason, exit.elapsed);
    eprintln!("boot: exits {} ({stats:?})", stats.total());
    let ports: Vec<String> =
        vm.port_counts().iter().take(24).map(|(port, r, w)| format!("{port:#x}: {r}r/{w}w")).collect();
    eprintln!("boot: busiest ports {}", ports.join(", "));
    if ready.get().is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
