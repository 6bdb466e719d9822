//! `cargo xtask l1 -- CMD...`: run a command where real KVM is.
//!
//! On a host with hardware KVM the command runs directly. Otherwise it runs inside "L1", a
//! QEMU TCG virtual machine with an emulated AMD EPYC CPU that has SVM, where Debian's
//! `kvm_amd` gives a real `/dev/kvm` with nested paging. L1 sees the host's root filesystem
//! read-only and the workspace read-write at the same paths (virtio-9p), so host-built test
//! binaries and guest artifacts run there unchanged. The command's output streams back
//! live; its exit status becomes ours. See `docs/testing.md`.

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aci_vmm::host::KvmHost;
use anyhow::{bail, Context, Result};

use crate::{cmd, l1_image, paths};

/// How often a boot that did not reach the ready marker is tried.
const BOOT_ATTEMPTS: u32 = 3;

/// Console text that means L1's kernel is wedged (seen when QEMU's TCG loses an IPI while
/// L1's KVM enables SVM): waiting longer does not help.
const WEDGED: [&str; 2] = ["watchdog: BUG: soft lockup", "rcu_preempt detected stalls"];

/// How to run the command.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The whole run, boot included, must end within this.
    pub timeout: Duration,
    /// L1 must reach its ready marker within this; otherwise the boot is retried once.
    pub boot_timeout: Duration,
    /// L1 memory in MiB.
    pub mem_mib: u32,
    /// Use L1 even when the host has hardware KVM.
    pub force_l1: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        let env_secs = |name: &str, default: u64| {
            std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
        };
        Self {
            timeout: Duration::from_secs(env_secs("ACI_L1_TIMEOUT", 3600)),
            boot_timeout: Duration::from_secs(env_secs("ACI_L1_BOOT_TIMEOUT", 60)),
            mem_mib: u32::try_from(env_secs("ACI_L1_MEM_MIB", 4096)).unwrap_or(4096),
            force_l1: std::env::var_os("ACI_L1_FORCE").is_some(),
        }
    }
}

impl RunOptions {
    /// Parses `[--timeout SECS] [--mem MIB] [--force-l1] -- CMD...`.
    pub fn parse(args: &[String]) -> Result<(Self, Vec<String>)> {
        let mut options = Self::default();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--" => return Ok((options, it.cloned().collect())),
                "--timeout" => options.timeout = Duration::from_secs(number(it.next(), "--timeout")?),
                "--mem" => options.mem_mib = u32::try_from(number(it.next(), "--mem")?)?,
                "--force-l1" => options.force_l1 = true,
                other => bail!("l1: unknown option {other:?}; usage: cargo xtask l1 [--timeout SECS] [--mem MIB] [--force-l1] -- CMD..."),
            }
        }
        bail!("l1: missing `-- CMD...`")
    }
}

fn number(value: Option<&String>, flag: &str) -> Result<u64> {
    value.and_then(|v| v.parse().ok()).with_context(|| format!("{flag} needs a number"))
}

/// Runs `argv` with real KVM and returns its exit status.
pub fn run(argv: &[String], options: &RunOptions) -> Result<i32> {
    if argv.is_empty() {
        bail!("l1: no command given");
    }
    let host = KvmHost::detect();
    if host.is_hardware() && !options.force_l1 {
        eprintln!("xtask l1: the host has hardware KVM; running the command directly");
        let status = Command::new(&argv[0])
            .args(&argv[1..])
            .status()
            .with_context(|| format!("starting {}", argv[0]))?;
        return Ok(status.code().unwrap_or(128));
    }
    let reason = host.unusable_reason().unwrap_or("forced with --force-l1");
    eprintln!("xtask l1: {reason}; running the command inside the nested L1 VM");
    let image = l1_image::ensure()?;
    let run_dir = RunDir::create(argv)?;
    let mut last_err = None;
    for attempt in 1..=BOOT_ATTEMPTS {
        match boot_and_run(&image, &run_dir, options) {
            Ok(status) => {
                run_dir.remove();
                return Ok(status);
            }
            Err(Failure::Boot(err)) => {
                eprintln!("xtask l1: attempt {attempt}: L1 did not boot: {err:#}");
                last_err = Some(err);
            }
            Err(Failure::Run(err)) => return Err(err),
        }
    }
    Err(last_err.unwrap_or_else(|| anyhow::anyhow!("L1 did not boot")))
        .context(format!("the L1 VM failed to boot {BOOT_ATTEMPTS} times"))
}

/// The per-run directory in the workspace, shared with L1: the script to run, the logs and
/// the status file.
struct RunDir {
    path: PathBuf,
}

impl RunDir {
    fn create(argv: &[String]) -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = paths::workspace().join("target/l1").join(format!("run-{}-{nanos:x}", std::process::id()));
        fs::create_dir_all(&path)?;
        let cwd = std::env::current_dir()?;
        let mut script = String::from("# written by cargo xtask l1\n");
        for (key, value) in std::env::vars() {
            let skip = ["PWD", "OLDPWD", "SHLVL", "_"].contains(&key.as_str());
            if !skip && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                script.push_str(&format!("export {key}={}\n", quote(&value)));
            }
        }
        script.push_str("export ACI_L1=1\n");
        script.push_str(&format!("export ACI_CACHE_DIR={}\n", quote(&paths::cache().to_string_lossy())));
        script.push_str(&format!("export ACI_GUEST_DIR={}\n", quote(&paths::guest_out().to_string_lossy())));
        script.push_str(&format!("cd {} || exit 97\n", quote(&cwd.to_string_lossy())));
        let words: Vec<String> = argv.iter().map(|a| quote(a)).collect();
        script.push_str(&format!("exec {}\n", words.join(" ")));
        fs::write(path.join("run.sh"), script)?;
        Ok(Self { path })
    }

    fn reset_logs(&self) {
        for f in ["console.log", "output.log", "qemu.log", "status"] {
            let _ = fs::remove_file(self.path.join(f));
        }
    }

    fn remove(&self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Single-quotes `s` for the POSIX shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

enum Failure {
    /// L1 did not reach its ready marker; a retry may help.
    Boot(anyhow::Error),
    /// L1 booted, but the run did not complete; not retried (the command may have acted).
    Run(anyhow::Error),
}

/// Kills and reaps QEMU when dropped, so no QEMU outlives the runner.
struct Qemu(Child);

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn qemu_command(image: &l1_image::L1Image, run: &Path, options: &RunOptions) -> Result<Command> {
    let work = paths::workspace();
    let nohold =
        if std::env::var_os("ACI_L1_HOLD_KVM").is_some_and(|v| v == "0") { " aci.nohold" } else { "" };
    let cache = paths::cache();
    std::fs::create_dir_all(&cache)?;
    for p in [&work, run, &cache] {
        if p.to_string_lossy().contains(char::is_whitespace) {
            bail!("l1: paths with whitespace are not supported: {}", p.display());
        }
    }
    let append = format!(
        "console=ttyS0 loglevel=4 mitigations=off panic=-1 8250.nr_uarts=2 aci.work={} aci.run={} aci.cache={}{nohold}",
        work.display(),
        run.display(),
        cache.display()
    );
    let mut c = Command::new("qemu-system-x86_64");
    let tcg_threads = std::env::var("ACI_L1_TCG_THREAD").unwrap_or_else(|_| "multi".to_owned());
    c.args(["-accel", &format!("tcg,thread={tcg_threads},tb-size=512"), "-cpu", "EPYC,+svm", "-smp", "2"])
        .arg("-m")
        .arg(options.mem_mib.to_string())
        .args(["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"])
        .arg("-kernel")
        .arg(&image.kernel)
        .arg("-initrd")
        .arg(&image.initramfs)
        .arg("-append")
        .arg(append)
        .arg("-chardev")
        .arg(format!("file,id=con,path={}", run.join("console.log").display()))
        .args(["-serial", "chardev:con"])
        .arg("-chardev")
        .arg(format!("file,id=out,path={}", run.join("output.log").display()))
        .args(["-serial", "chardev:out"])
        .args(["-fsdev", "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap"])
        .args(["-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot"])
        .arg("-fsdev")
        .arg(format!("local,id=work,path={},security_model=passthrough,multidevs=remap", work.display()))
        .args(["-device", "virtio-9p-pci,fsdev=work,mount_tag=work"])
        .arg("-fsdev")
        .arg(format!(
            "local,id=cache,path={},security_model=none,readonly=on,multidevs=remap",
            cache.display()
        ))
        .args(["-device", "virtio-9p-pci,fsdev=cache,mount_tag=cache"]);
    Ok(c)
}

fn boot_and_run(image: &l1_image::L1Image, run: &RunDir, options: &RunOptions) -> Result<i32, Failure> {
    run.reset_logs();
    let boot = |e: anyhow::Error| Failure::Boot(e);
    let mut command = qemu_command(image, &run.path, options).map_err(Failure::Run)?;
    let qemu_log = fs::File::create(run.path.join("qemu.log")).map_err(|e| boot(e.into()))?;
    let qemu_err = qemu_log.try_clone().map_err(|e| boot(e.into()))?;
    command.stdin(Stdio::null()).stdout(qemu_log).stderr(qemu_err);
    // SAFETY: the closure runs in the forked child before exec and only calls prctl, which
    // is async-signal-safe; it makes the kernel kill QEMU if the runner dies.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let started = Instant::now();
    let mut qemu = Qemu(
        command.spawn().map_err(|e| boot(anyhow::Error::new(e).context("starting qemu-system-x86_64")))?,
    );
    let console = run.path.join("console.log");
    let mut output = Tail::new(run.path.join("output.log"));
    let mut ready_at = None;
    loop {
        output.pump();
        let console_text = fs::read_to_string(&console).unwrap_or_default();
        if ready_at.is_none() && console_text.contains("ACI-L1-READY") {
            ready_at = Some(started.elapsed());
            eprintln!("xtask l1: L1 ready after {:.1} s", started.elapsed().as_secs_f64());
        }
        if let Some(sign) = WEDGED.iter().find(|w| console_text.contains(*w)) {
            let err =
                anyhow::anyhow!("L1's kernel is wedged ({sign}); console tail:\n{}", console_tail(&run.path));
            return Err(if ready_at.is_none() { boot(err) } else { Failure::Run(err) });
        }
        let exited = qemu.0.try_wait().map_err(|e| Failure::Run(e.into()))?;
        if exited.is_some() {
            break;
        }
        if ready_at.is_none() && started.elapsed() > options.boot_timeout {
            return Err(boot(anyhow::anyhow!(
                "no ready marker within {} s; console tail:\n{}",
                options.boot_timeout.as_secs(),
                console_tail(&run.path)
            )));
        }
        if started.elapsed() > options.timeout {
            return Err(Failure::Run(anyhow::anyhow!(
                "the L1 run timed out after {} s (ACI_L1_TIMEOUT); console tail:\n{}",
                options.timeout.as_secs(),
                console_tail(&run.path)
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    output.pump();
    let total = started.elapsed();
    let console_text = fs::read_to_string(&console).unwrap_or_default();
    if let Some(line) = console_text.lines().find(|l| l.contains("ACI-L1-FAIL")) {
        // The init script's own failures are deterministic: retrying would fail the same way.
        return Err(Failure::Run(anyhow::anyhow!("{line}; console tail:\n{}", console_tail(&run.path))));
    }
    if ready_at.is_none() {
        return Err(boot(anyhow::anyhow!(
            "QEMU exited before L1 was ready; QEMU said:\n{}\nconsole tail:\n{}",
            cmd::tail(&run.path.join("qemu.log"), 10),
            console_tail(&run.path)
        )));
    }
    let status = fs::read_to_string(run.path.join("status")).map_err(|_| {
        Failure::Run(anyhow::anyhow!(
            "L1 stopped without reporting the command's exit status; console tail:\n{}",
            console_tail(&run.path)
        ))
    })?;
    let status: i32 =
        status.trim().parse().map_err(|_| Failure::Run(anyhow::anyhow!("unreadable status {status:?}")))?;
    eprintln!("xtask l1: command exited with status {status}; L1 total {:.1} s", total.as_secs_f64());
    Ok(status)
}

fn console_tail(run: &Path) -> String {
    cmd::tail(&run.join("console.log"), 40)
}

/// Copies what is appended to a file onto our standard output.
struct Tail {
    path: PathBuf,
    offset: u64,
}

impl Tail {
    fn new(path: PathBuf) -> Self {
        Self { path, offset: 0 }
    }

    fn pump(&mut self) {
        let Ok(mut f) = fs::File::open(&self.path) else { return };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut buf = Vec::new();
        if let Ok(n) = f.read_to_end(&mut buf) {
            self.offset += n as u64;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&buf);
            let _ = out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_the_shell() {
        let nasty = "it's a \"test\" $HOME `x` \\";
        let out = Command::new("sh").arg("-c").arg(format!("printf %s {}", quote(nasty))).output().unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), nasty);
    }

    #[test]
    fn options_need_the_separator() {
        let args = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let (o, cmd) = RunOptions::parse(&args(&["--timeout", "5", "--", "true", "x"])).unwrap();
        assert_eq!(o.timeout, Duration::from_secs(5));
        assert_eq!(cmd, vec!["true", "x"]);
        assert!(RunOptions::parse(&args(&["true"])).is_err());
        assert!(RunOptions::parse(&args(&["--timeout", "x", "--", "true"])).is_err());
    }
}
