//! A real `git daemon` on 127.0.0.1 serving one small repository (gitRepo volume tests).

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `git daemon` serving a bare `repo.git` built in a temp dir; the daemon and its per-
/// connection children are killed on drop.
///
/// History: c1 (README=v1, annotated tag `v1.0`) → c2 (README=v2) on `main`; branch
/// `feature` from c1 adds `feature.txt`.
pub struct GitDaemon {
    child: Child,
    port: u16,
    c1: String,
    _base: tempfile::TempDir,
}

impl GitDaemon {
    /// Builds the repository and starts the daemon; returns once it accepts connections.
    pub fn start() -> Self {
        let base = tempfile::tempdir().unwrap();
        let work = base.path().join("work");
        std::fs::create_dir(&work).unwrap();
        git(&work, &["init", "--quiet", "-b", "main"]);
        std::fs::write(work.join("README"), "v1").unwrap();
        git(&work, &["add", "README"]);
        git(&work, &["commit", "--quiet", "-m", "c1"]);
        let c1 = git(&work, &["rev-parse", "HEAD"]);
        git(&work, &["tag", "-a", "v1.0", "-m", "release 1.0"]);
        git(&work, &["checkout", "--quiet", "-b", "feature"]);
        std::fs::write(work.join("feature.txt"), "feat").unwrap();
        git(&work, &["add", "feature.txt"]);
        git(&work, &["commit", "--quiet", "-m", "feature"]);
        git(&work, &["checkout", "--quiet", "main"]);
        std::fs::write(work.join("README"), "v2").unwrap();
        git(&work, &["commit", "--quiet", "-am", "c2"]);
        git(base.path(), &["clone", "--quiet", "--bare", "work", "repo.git"]);

        // A free port: bound, then released for the daemon.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("git")
            .arg("daemon")
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={port}"))
            .args(["--export-all", "--reuseaddr"])
            .arg(format!("--base-path={}", base.path().display()))
            .arg(base.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // The readiness probe below makes the daemon log a hang-up; keep it quiet.
            .stderr(Stdio::null())
            // `git daemon` runs `git-daemon` as a child, which forks per connection: give
            // them a process group of their own so drop can end them all.
            .process_group(0)
            .spawn()
            .unwrap();
        let server = Self { child, port, c1, _base: base };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "git daemon did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// The daemon's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `git://127.0.0.1:<port>/repo.git`.
    pub fn url(&self) -> String {
        format!("git://127.0.0.1:{}/repo.git", self.port)
    }

    /// The full hash of the first commit (c1, tagged `v1.0`).
    pub fn first_commit(&self) -> &str {
        &self.c1
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let pgid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: signals the process group this fixture created (`process_group(0)` made
        // the child its leader); no memory is involved.
        unsafe { libc::kill(-pgid, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// Runs git in `dir` with a fixed identity and no user or system configuration; its
/// trimmed stdout (panics when git fails).
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=aci", "-c", "user.email=aci@example.invalid"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
