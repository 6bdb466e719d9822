//! Engine fast tier: real containers run by a real agent process, no microVM.
//!
//! Each test starts the agent binary as an ordinary process serving the protocol on a Unix
//! socket (`ACI_AGENT_LISTEN_UNIX`), builds a busybox root filesystem from the host's static
//! `/bin/busybox`, and drives containers through `aci-proto` calls.
//!
//! Needs root and cgroup v2 with the memory controller at `/sys/fs/cgroup` (the engine
//! creates `/aci/<name>` cgroups there). This machine's host has cgroup v1 for memory, so
//! `cargo xtask test` runs these (named `kvm_*`) inside L1, whose Debian kernel has cgroup
//! v2; outside CI they skip with the reason when the gate fails, in CI they fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aci_proto::channel::{Channel, ChannelError};
use aci_proto::container::{
    ContainerConfig, ContainerState, EnvVar, ExecConfig, LogStream, LogsRequest, Resources, TtySize,
};
use aci_proto::frame::FrameKind;
use aci_proto::message::{AgentEvent, Call, RemoteErrorKind, Reply, STDERR, STDIN, STDOUT};
use aci_proto::Secret;

/// Root, cgroup v2 with the memory controller, a static busybox.
fn gate(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let missing = if unsafe { libc::geteuid() } != 0 {
        Some("needs root (mounts, namespaces, cgroups)".to_owned())
    } else if !std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .is_ok_and(|c| c.split_whitespace().any(|w| w == "memory"))
    {
        Some("needs cgroup v2 with the memory controller at /sys/fs/cgroup (run in L1)".to_owned())
    } else if !static_agent().is_file() {
        Some(format!("needs the static guest agent {} (`cargo xtask guest`)", static_agent().display()))
    } else if !Path::new("/bin/busybox").is_file() {
        Some("needs /bin/busybox (Debian busybox-static)".to_owned())
    } else {
        None
    };
    aci_testkit::requirement(test, missing.as_deref())
}

/// The static agent `cargo xtask guest` builds: the containers' init shim in these tests.
fn static_agent() -> PathBuf {
    aci_testkit::guest_dir().join("aci-agent")
}

/// A busybox root: `/bin/busybox` and a link per applet, `/etc/passwd`, `/etc/group`, a
/// `/www/index.html`.
fn busybox_rootfs(dir: &Path) {
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "root", "www", "home/app"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8(list.stdout).unwrap().lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).unwrap();
        }
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\napp:x:1000:\nstaff:x:50:app\n").unwrap();
    std::fs::write(dir.join("www/index.html"), "hello from busybox\n").unwrap();
    std::os::unix::fs::chown(dir.join("home/app"), Some(1000), Some(1000)).unwrap();
}

/// The mount point, in PID 1's view, of this process's root when it is not PID 1's root
/// (L1 runs tests `chroot`ed into the host's root shared over 9p).
fn chroot_mount_point() -> Option<String> {
    let root_id = |info: &str, mount_point: Option<&str>, id: Option<&str>| -> Option<(String, String)> {
        info.lines().find_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let hit = mount_point.is_some_and(|m| f.get(4) == Some(&m))
                || id.is_some_and(|i| f.first() == Some(&i));
            hit.then(|| (f[0].to_owned(), f[4].to_owned()))
        })
    };
    let own = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let init = std::fs::read_to_string("/proc/1/mountinfo").ok()?;
    let (id, _) = root_id(&own, Some("/"), None)?;
    let (_, mount_point) = root_id(&init, None, Some(&id))?;
    (mount_point != "/").then_some(mount_point)
}

/// Makes the agent's root the mount stacked on its mount namespace's `/`, as in the
/// guest (where the agent's root is the namespace's root): a process joining a
/// container's mount namespace (an exec) finds `/` by following the mounts stacked on the
/// namespace's root, so a chroot elsewhere would send execs to the wrong root. The agent
/// escapes to PID 1's root, takes a private mount namespace, and moves the mount that was
/// its root onto `/` (what `switch_root` does).
fn root_on_namespace_root(command: &mut Command, mount_point: &str) {
    use std::ffi::CString;
    use std::os::unix::process::CommandExt;
    let proc1 = CString::new("/proc/1/root").unwrap();
    let slash = CString::new("/").unwrap();
    let dot = CString::new(".").unwrap();
    let target = CString::new(mount_point).unwrap();
    let check = |rc: libc::c_int| if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) };
    // SAFETY: only async-signal-safe system calls on strings prepared before the fork.
    unsafe {
        command.pre_exec(move || {
            let fd = libc::open(proc1.as_ptr(), libc::O_PATH | libc::O_DIRECTORY);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            check(libc::fchdir(fd))?;
            check(libc::chroot(dot.as_ptr()))?;
            check(libc::unshare(libc::CLONE_NEWNS))?;
            check(libc::mount(
                std::ptr::null(),
                slash.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            check(libc::chdir(target.as_ptr()))?;
            check(libc::mount(
                target.as_ptr(),
                slash.as_ptr(),
                std::ptr::null(),
                libc::MS_MOVE,
                std::ptr::null(),
            ))?;
            check(libc::chroot(dot.as_ptr()))?;
            check(libc::chdir(slash.as_ptr()))
        });
    }
}

/// A running agent process and a directory with the busybox root.
struct Agent {
    child: Child,
    socket: PathBuf,
    image: tempfile::TempDir,
}

impl Agent {
    fn start(name: &str) -> Self {
        Self::start_with(name, static_agent())
    }

    /// An agent whose init shim is `shim` (a dynamically linked one is refused: the agent
    /// then runs commands directly, as before the shim existed).
    fn start_with(name: &str, shim: PathBuf) -> Self {
        let image = tempfile::Builder::new().prefix(&format!("aci-engine-{name}-")).tempdir().unwrap();
        busybox_rootfs(image.path());
        let socket = std::env::temp_dir().join(format!("aci-engine-{name}-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&socket);
        let mut command = Command::new(env!("CARGO_BIN_EXE_aci-agent"));
        command.env("ACI_AGENT_LISTEN_UNIX", &socket).stdin(Stdio::piped());
        // The init shim must be a static binary (the host build is not): the guest's agent.
        command.env("ACI_AGENT_INIT_SHIM", shim);
        if let Some(root) = chroot_mount_point() {
            root_on_namespace_root(&mut command, &root);
        }
        let child = command.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "the agent did not listen on {}", socket.display());
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, socket, image }
    }

    fn channel(&self) -> Channel<UnixStream> {
        let stream = UnixStream::connect(&self.socket).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        let mut ch = Channel::new(stream);
        ch.hello("kvm_engine").unwrap();
        ch
    }

    fn config(&self, name: &str, args: &[&str]) -> ContainerConfig {
        ContainerConfig {
            name: name.into(),
            image_root: self.image.path().to_str().unwrap().into(),
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            ..ContainerConfig::default()
        }
    }

    fn logs(&self, name: &str) -> Vec<aci_proto::container::LogEntry> {
        let mut ch = self.channel();
        let reply =
            ch.call(Call::Logs(LogsRequest { container: name.into(), tail: None, follow: false })).unwrap();
        assert_eq!(reply, Reply::Streaming);
        let mut lines = Vec::new();
        loop {
            match ch.next_event().unwrap() {
                Some(AgentEvent::Log(entry)) => lines.push(entry),
                Some(AgentEvent::LogEnd) | None => return lines,
                Some(other) => panic!("unexpected event {other:?}"),
            }
        }
    }
}

impl Agent {
    /// Asks the agent to power off (it stops its containers: SIGTERM, SIGKILL after 5 s)
    /// and returns how long that took.
    fn power_off(&mut self) -> Duration {
        let t = Instant::now();
        self.child.stdin.take().unwrap().write_all(b"poweroff\n").unwrap();
        while self.child.try_wait().unwrap().is_none() {
            assert!(t.elapsed() < Duration::from_secs(30), "the agent did not power off");
            std::thread::sleep(Duration::from_millis(10));
        }
        t.elapsed()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // Closing its console makes the agent stop its containers and exit.
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.write_all(b"poweroff\n");
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

fn remote_kind(err: ChannelError) -> (RemoteErrorKind, String) {
    match err {
        ChannelError::Remote(e) => (e.kind, e.message),
        other => panic!("expected a remote error, got {other}"),
    }
}

fn run_to_end(agent: &Agent, ch: &mut Channel<UnixStream>, config: ContainerConfig) -> Vec<String> {
    let name = config.name.clone();
    ch.call(Call::CreateContainer(config)).unwrap();
    ch.call(Call::StartContainer { name: name.clone() }).unwrap();
    let Reply::Exited(status) = ch.call(Call::WaitContainer { name: name.clone() }).unwrap() else {
        panic!()
    };
    assert_eq!(status.code, 0, "{name} failed: {:?}", agent.logs(&name));
    agent.logs(&name).into_iter().map(|e| e.line).collect()
}

#[test]
#[ignore = "KVM tier (engine fast tier): needs root and cgroup v2; run in L1 by `cargo xtask test`"]
fn containers_have_their_own_pid_namespace_hostname_and_view() {
    if !gate("containers_have_their_own_pid_namespace_hostname_and_view") {
        return;
    }
    let agent = Agent::start("iso");
    let mut ch = agent.channel();
    let mut c = agent.config(
        "iso",
        &[
            "sh",
            "-c",
            "echo pid=$$; echo init=$(cat /proc/1/comm); echo host=$(hostname); echo procs=$(ls -d /proc/[0-9]* | wc -l); \
             echo uts=$(readlink /proc/self/ns/uts); echo pidns=$(readlink /proc/self/ns/pid); \
             echo user=$(id -u):$(id -g); echo cwd=$(pwd); echo secret=$SECRET; touch /home/app/written",
        ],
    );
    c.user = Some("app".into());
    c.working_dir = Some("/home/app".into());
    c.env = vec![EnvVar { name: "SECRET".into(), value: Secret::new("s3cr3t-value"), secure: true }];
    let started = Instant::now();
    let lines = run_to_end(&agent, &mut ch, c);
    println!("kvm_engine: create+start+run+wait of a one-shot container took {:?}", started.elapsed());
    let get = |key: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} in {lines:?}"))
    };
    // PID 1 is the init shim (`/.aci/init`), the command its child.
    assert_eq!(get("pid"), "2");
    assert_eq!(get("init"), "init");
    let outer_host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(get("host"), outer_host.trim());
    let procs: usize = get("procs").parse().unwrap();
    assert!(procs <= 5, "the container sees {procs} processes: {lines:?}");
    assert_ne!(get("uts"), std::fs::read_link("/proc/self/ns/uts").unwrap().to_str().unwrap());
    assert_ne!(get("pidns"), std::fs::read_link("/proc/self/ns/pid").unwrap().to_str().unwrap());
    assert_eq!(get("user"), "1000:1000");
    assert_eq!(get("cwd"), "/home/app");
    assert_eq!(get("secret"), "s3cr3t-value");
    // The writable layer is the container's: the image directory is untouched.
    assert!(!agent.image.path().join("home/app/written").exists());
    ch.call(Call::RemoveContainer { name: "iso".into() }).unwrap();

    // A container on a terminal: its output (one stream) is logged as stdout.
    let mut term = agent.config("term", &["sh", "-c", "stty size; tty; echo tty-done"]);
    term.tty = true;
    let lines = run_to_end(&agent, &mut ch, term);
    assert!(lines.contains(&"24 80".to_string()) && lines.contains(&"tty-done".to_string()), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("/dev/pts/") || l == "/dev/console"), "{lines:?}");
    ch.call(Call::RemoveContainer { name: "term".into() }).unwrap();
}

#[test]
#[ignore = "KVM tier (engine fast tier): needs root and cgroup v2; run in L1 by `cargo xtask test`"]
fn memory_limit_exceeded_is_reported_as_oom_killed() {
    if !gate("memory_limit_exceeded_is_reported_as_oom_killed") {
        return;
    }
    let agent = Agent::start("oom");
    let mut ch = agent.channel();
    let mut c =
        agent.config("hog", &["sh", "-c", "echo before; exec dd if=/dev/zero of=/dev/null bs=96M count=1"]);
    c.resources = Resources { memory_bytes: Some(32 << 20), cpu_millis: Some(500), pids_max: Some(64) };
    ch.call(Call::CreateContainer(c)).unwrap();
    ch.call(Call::StartContainer { name: "hog".into() }).unwrap();
    let Reply::Exited(status) = ch.call(Call::WaitContainer { name: "hog".into() }).unwrap() else {
        panic!()
    };
    let lines: Vec<String> = agent.logs("hog").into_iter().map(|e| e.line).collect();
    println!("kvm_engine: OOM run ended {status:?}, logs {lines:?}");
    assert!(status.oom_killed, "{status:?} {lines:?}");
    assert_eq!((status.signal, status.code), (Some(9), 137), "{status:?}");
    assert!(lines.contains(&"before".to_string()));
    // Limits are in the cgroup.
    let cg = Path::new("/sys/fs/cgroup/aci/hog");
    assert_eq!(std::fs::read_to_string(cg.join("memory.max")).unwrap().trim(), (32u64 << 20).to_string());
    assert_eq!(std::fs::read_to_string(cg.join("cpu.max")).unwrap().trim(), "50000 100000");
    assert_eq!(std::fs::read_to_string(cg.join("pids.max")).unwrap().trim(), "64");
    ch.call(Call::RemoveContainer { name: "hog".into() }).unwrap();
    assert!(!cg.exists(), "the cgroup is removed with the container");
}

#[test]
#[ignore = "KVM tier (engine fast tier): needs root and cgroup v2; run in L1 by `cargo xtask test`"]
fn logs_exec_stats_signal_and_restart_in_place() {
    if !gate("logs_exec_stats_signal_and_restart_in_place") {
        return;
    }
    let agent = Agent::start("svc");
    let mut events = agent.channel();
    assert_eq!(events.call(Call::Events).unwrap(), Reply::Streaming);
    let mut ch = agent.channel();
    let c = agent.config(
        "svc",
        &[
            "sh",
            "-c",
            "[ -e /kept ] && echo layer-kept; touch /kept; echo run-start >&2; i=0; \
             while true; do echo tick $i; i=$((i+1)); sleep 0.2; done",
        ],
    );
    ch.call(Call::CreateContainer(c.clone())).unwrap();
    let err = ch.call(Call::CreateContainer(c)).unwrap_err();
    assert_eq!(remote_kind(err).0, RemoteErrorKind::InvalidState);
    let t = Instant::now();
    let Reply::Started { pid } = ch.call(Call::StartContainer { name: "svc".into() }).unwrap() else {
        panic!()
    };
    println!("kvm_engine: StartContainer took {:?}", t.elapsed());
    assert!(pid > 1);
    assert_eq!(events.next_event().unwrap(), Some(AgentEvent::ContainerStarted { name: "svc".into(), pid }));

    // Follow the logs: new lines arrive live, with timestamps.
    let mut follow = agent.channel();
    follow.call(Call::Logs(LogsRequest { container: "svc".into(), tail: Some(0), follow: true })).unwrap();
    let mut ticks = Vec::new();
    while ticks.len() < 3 {
        match follow.next_event().unwrap() {
            Some(AgentEvent::Log(e)) if e.stream == LogStream::Stdout => ticks.push(e),
            Some(AgentEvent::Log(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(ticks.windows(2).all(|w| w[0].time_unix_ns <= w[1].time_unix_ns && w[0].time_unix_ns > 0));
    assert!(ticks.iter().all(|e| e.line.starts_with("tick ") && e.run == 0), "{ticks:?}");
    drop(follow);
    let kept = agent.logs("svc");
    assert!(kept.iter().any(|e| e.stream == LogStream::Stderr && e.line == "run-start"), "{kept:?}");

    // Exec with arguments: output on both streams, exit code.
    let mut exec = agent.channel();
    let call = Call::Exec(ExecConfig {
        container: "svc".into(),
        args: [
            "sh",
            "-c",
            "read line; echo out $1 $line $(cat /www/index.html); echo err $2 >&2; exit 3",
            "x",
            "a b",
            "c",
        ]
        .map(String::from)
        .to_vec(),
        ..ExecConfig::default()
    });
    let Reply::ExecStarted { pid: exec_pid } = exec.call(call).unwrap() else { panic!() };
    assert!(exec_pid > 1);
    exec.send_data(STDIN, b"from-stdin\n").unwrap();
    exec.send_eof(STDIN).unwrap();
    let (mut out, mut err, mut exited) = (Vec::new(), Vec::new(), None);
    while exited.is_none() {
        let frame = exec.next_frame().unwrap();
        match (frame.kind, frame.stream) {
            (FrameKind::Data, STDOUT) => out.extend(frame.payload),
            (FrameKind::Data, STDERR) => err.extend(frame.payload),
            (FrameKind::Event, _) => {
                exited = Some(serde_json::from_slice::<AgentEvent>(&frame.payload).unwrap())
            }
            _ => {}
        }
    }
    // The file is only in the image: the exec runs in the container's root.
    assert_eq!(String::from_utf8_lossy(&out), "out a b from-stdin hello from busybox\n");
    assert_eq!(String::from_utf8_lossy(&err), "err c\n");
    let Some(AgentEvent::ExecExited(status)) = exited else { panic!("{exited:?}") };
    assert_eq!((status.code, status.signal), (3, None));

    // Exec on a terminal: sized, resizable.
    let mut tty = agent.channel();
    let call = Call::Exec(ExecConfig {
        container: "svc".into(),
        args: ["sh", "-c", "stty size; read x; stty size; tty"].map(String::from).to_vec(),
        tty: Some(TtySize { rows: 30, cols: 100 }),
        ..ExecConfig::default()
    });
    assert!(matches!(tty.call(call).unwrap(), Reply::ExecStarted { .. }));
    let mut screen = Vec::new();
    let mut resized = false;
    tty.get_ref().set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    loop {
        let frame = tty
            .next_frame()
            .unwrap_or_else(|e| panic!("{e} after terminal output {:?}", String::from_utf8_lossy(&screen)));
        match frame.kind {
            FrameKind::Data => screen.extend(frame.payload),
            FrameKind::Event => break,
            _ => {}
        }
        if !resized && String::from_utf8_lossy(&screen).contains("30 100") {
            assert_eq!(tty.call(Call::ResizeTty(TtySize { rows: 40, cols: 120 })).unwrap(), Reply::Done);
            tty.send_data(STDIN, b"\n").unwrap();
            resized = true;
        }
    }
    let screen = String::from_utf8_lossy(&screen);
    assert!(screen.contains("40 120") && screen.contains("/dev/pts/"), "{screen:?}");

    // Exec of a missing command: StartFailed naming the container and the command.
    let mut bad = agent.channel();
    let call = Call::Exec(ExecConfig {
        container: "svc".into(),
        args: vec!["nope-cmd".into()],
        ..ExecConfig::default()
    });
    let (kind, message) = remote_kind(bad.call(call).unwrap_err());
    assert_eq!(kind, RemoteErrorKind::StartFailed, "{message}");
    assert!(message.contains("svc") && message.contains("nope-cmd"), "{message}");

    // Stats from the cgroup.
    let Reply::Stats(stats) = ch.call(Call::Stats).unwrap() else { panic!() };
    let s = stats.containers.iter().find(|s| s.name == "svc").unwrap();
    println!("kvm_engine: stats {s:?}");
    assert!(
        s.cpu_usage_usec > 0 && s.memory_current_bytes > 0 && s.memory_peak_bytes > 0 && s.pids_current >= 1,
        "{s:?}"
    );

    // Signal: the run ends with that signal (SIGKILL reaches the init shim itself).
    ch.call(Call::Signal { name: "svc".into(), signal: 9 }).unwrap();
    let Reply::Exited(status) = ch.call(Call::WaitContainer { name: "svc".into() }).unwrap() else {
        panic!()
    };
    assert_eq!((status.signal, status.code, status.oom_killed), (Some(9), 137, false));
    assert!(status.finished_at_ms >= status.started_at_ms && status.started_at_ms > 0);
    match events.next_event().unwrap() {
        Some(AgentEvent::ContainerExited { name, status: s }) => {
            assert_eq!((name.as_str(), s), ("svc", status))
        }
        other => panic!("{other:?}"),
    }
    let Reply::Containers { containers: list } = ch.call(Call::ListContainers).unwrap() else { panic!() };
    assert_eq!(list[0].state, ContainerState::Exited);
    let err = ch.call(Call::Signal { name: "svc".into(), signal: 15 }).unwrap_err();
    assert_eq!(remote_kind(err).0, RemoteErrorKind::InvalidState);

    // Restart in place: same name, logs kept, run number 1.
    let Reply::Started { pid: pid2 } = ch.call(Call::StartContainer { name: "svc".into() }).unwrap() else {
        panic!()
    };
    assert_ne!(pid, pid2);
    std::thread::sleep(Duration::from_millis(800));
    let logs = agent.logs("svc");
    assert!(
        logs.iter().any(|e| e.run == 0) && logs.iter().any(|e| e.run == 1 && e.line.starts_with("tick")),
        "{logs:?}"
    );
    // The writable layer survived the restart; the first run had none of it.
    assert!(logs.iter().any(|e| e.run == 1 && e.line == "layer-kept"), "{logs:?}");
    assert!(!logs.iter().any(|e| e.run == 0 && e.line == "layer-kept"), "{logs:?}");
    ch.call(Call::RemoveContainer { name: "svc".into() }).unwrap();
    let err = ch.call(Call::WaitContainer { name: "svc".into() }).unwrap_err();
    assert_eq!(remote_kind(err).0, RemoteErrorKind::NoSuchContainer);
}

#[test]
#[ignore = "KVM tier (engine fast tier): needs root and cgroup v2; run in L1 by `cargo xtask test`"]
fn an_unknown_command_fails_by_name_and_others_keep_running() {
    if !gate("an_unknown_command_fails_by_name_and_others_keep_running") {
        return;
    }
    let agent = Agent::start("fail");
    let mut ch = agent.channel();
    ch.call(Call::CreateContainer(agent.config("keeper", &["sleep", "1000"]))).unwrap();
    ch.call(Call::StartContainer { name: "keeper".into() }).unwrap();
    ch.call(Call::CreateContainer(agent.config("broken", &["no-such-command", "--flag"]))).unwrap();
    let (kind, message) = remote_kind(ch.call(Call::StartContainer { name: "broken".into() }).unwrap_err());
    println!("kvm_engine: start of a missing command: {message}");
    assert_eq!(kind, RemoteErrorKind::StartFailed);
    assert!(message.contains("broken") && message.contains("no-such-command"), "{message}");
    let mut bad_cwd = agent.config("badcwd", &["true"]);
    bad_cwd.working_dir = Some("/does/not/exist".into());
    ch.call(Call::CreateContainer(bad_cwd)).unwrap();
    let (kind, message) = remote_kind(ch.call(Call::StartContainer { name: "badcwd".into() }).unwrap_err());
    println!("kvm_engine: start with a missing working directory: {message}");
    assert_eq!(kind, RemoteErrorKind::StartFailed);
    assert!(message.contains("badcwd") && message.contains("/does/not/exist"), "{message}");
    let mut bad_user = agent.config("baduser", &["true"]);
    bad_user.user = Some("nobody-here".into());
    let (kind, message) = remote_kind(ch.call(Call::CreateContainer(bad_user)).unwrap_err());
    assert_eq!(kind, RemoteErrorKind::StartFailed);
    assert!(message.contains("baduser") && message.contains("nobody-here"), "{message}");

    let (kind, _) = remote_kind(ch.call(Call::StartContainer { name: "ghost".into() }).unwrap_err());
    assert_eq!(kind, RemoteErrorKind::NoSuchContainer);
    let Reply::Containers { containers: list } = ch.call(Call::ListContainers).unwrap() else { panic!() };
    let keeper = list.iter().find(|c| c.name == "keeper").unwrap();
    assert_eq!(keeper.state, ContainerState::Running, "{list:?}");
    for name in ["keeper", "broken", "badcwd"] {
        ch.call(Call::RemoveContainer { name: name.into() }).unwrap();
    }
    let Reply::Containers { containers: list } = ch.call(Call::ListContainers).unwrap() else { panic!() };
    assert!(list.is_empty(), "{list:?}");
}

#[test]
#[ignore = "KVM tier (engine fast tier): needs root and cgroup v2; run in L1 by `cargo xtask test`"]
fn exec_probes_run_through_the_engine_and_report_on_events() {
    use aci_proto::probe::{ContainerProbes, ProbeAction, ProbeConfig, ProbeRole};
    if !gate("exec_probes_run_through_the_engine_and_report_on_events") {
        return;
    }
    let agent = Agent::start("probe");
    let mut ch = agent.channel();
    let mut events = agent.channel();
    assert_eq!(events.call(Call::Events).unwrap(), Reply::Streaming);
    ch.call(Call::CreateContainer(
        agent.config("probed", &["sh", "-c", "sleep 1; touch /tmp/healthy; exec sleep 1000"]),
    ))
    .unwrap();
    let liveness = ProbeConfig {
        // Chatty on purpose: the output is drained, not left to block the command.
        action: ProbeAction::Exec {
            command: ["sh", "-c", "yes | head -c 300000; test -e /tmp/healthy"].map(String::from).to_vec(),
        },
        initial_delay_ms: 0,
        period_ms: 300,
        timeout_ms: 10_000,
        success_threshold: 1,
        failure_threshold: 1,
    };
    let probes = ContainerProbes { container: "probed".into(), liveness: Some(liveness), readiness: None };
    ch.call(Call::SetProbes(probes)).unwrap();
    ch.call(Call::StartContainer { name: "probed".into() }).unwrap();
    events.get_ref().set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let (mut failed, mut passed) = (false, false);
    while !passed {
        match events.next_event().unwrap() {
            Some(AgentEvent::Probe(report)) => {
                println!("kvm_engine: probe report {report:?}");
                assert_eq!(
                    (report.container.as_str(), report.role, report.run),
                    ("probed", ProbeRole::Liveness, 0)
                );
                failed |= !report.attempt_ok;
                passed = report.attempt_ok && report.passing;
            }
            Some(_) => {}
            None => panic!("the event stream ended"),
        }
    }
    assert!(failed, "the attempts before /tmp/healthy existed failed");
    ch.call(Call::RemoveContainer { name: "probed".into() }).unwrap();
}

/// Runs `script` in `container` with an exec; its stdout and exit code.
fn exec_sh(agent: &Agent, container: &str, script: &str) -> (String, i32) {
    let mut exec = agent.channel();
    let call = Call::Exec(ExecConfig {
        container: container.into(),
        args: ["sh", "-c", script].map(String::from).to_vec(),
        ..ExecConfig::default()
    });
    assert!(matches!(exec.call(call).unwrap(), Reply::ExecStarted { .. }));
    let mut out = Vec::new();
    loop {
        let frame = exec.next_frame().unwrap();
        match (frame.kind, frame.stream) {
            (FrameKind::Data, STDOUT) => out.extend(frame.payload),
            (FrameKind::Event, _) => match serde_json::from_slice::<AgentEvent>(&frame.payload).unwrap() {
                AgentEvent::ExecExited(status) => {
                    return (String::from_utf8_lossy(&out).into_owned(), status.code)
                }
                other => panic!("unexpected {other:?}"),
            },
            _ => {}
        }
    }
}

/// Waits until `container`'s logs have a line `line`.
fn wait_for_line(agent: &Agent, container: &str, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !agent.logs(container).iter().any(|e| e.line == line) {
        assert!(Instant::now() < deadline, "{container} never printed {line:?}: {:?}", agent.logs(container));
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start(ch: &mut Channel<UnixStream>, config: ContainerConfig) {
    let name = config.name.clone();
    ch.call(Call::CreateContainer(config)).unwrap();
    ch.call(Call::StartContainer { name }).unwrap();
}

fn wait(ch: &mut Channel<UnixStream>, name: &str) -> aci_proto::container::ExitStatus {
    let Reply::Exited(status) = ch.call(Call::WaitContainer { name: name.into() }).unwrap() else { panic!() };
    status
}

#[test]
#[ignore = "KVM tier (engine fast tier): needs root and cgroup v2; run in L1 by `cargo xtask test`"]
fn the_init_shim_forwards_signals_reports_exits_and_reaps_orphans() {
    if !gate("the_init_shim_forwards_signals_reports_exits_and_reaps_orphans") {
        return;
    }
    let agent = Agent::start("shim");
    let mut ch = agent.channel();

    // A shell that handles no signal: SIGTERM (to the shim, forwarded) ends it at once,
    // reported as killed by SIGTERM.
    start(&mut ch, agent.config("idle", &["sh", "-c", "echo up; sleep 1000"]));
    wait_for_line(&agent, "idle", "up");
    let t = Instant::now();
    ch.call(Call::Signal { name: "idle".into(), signal: libc::SIGTERM }).unwrap();
    let status = wait(&mut ch, "idle");
    let took = t.elapsed();
    println!("kvm_engine: SIGTERM to `sh -c 'sleep 1000'` -> exit {status:?} after {took:?}");
    assert_eq!((status.signal, status.code), (Some(libc::SIGTERM), 143), "{status:?}");
    assert!(took < Duration::from_secs(3), "stopping took {took:?}");

    // A script with a SIGTERM trap sees the signal; its exit code is the container's.
    let trap = "trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.1; done";
    start(&mut ch, agent.config("trap", &["sh", "-c", trap]));
    wait_for_line(&agent, "trap", "ready");
    ch.call(Call::Signal { name: "trap".into(), signal: libc::SIGTERM }).unwrap();
    let status = wait(&mut ch, "trap");
    assert_eq!((status.signal, status.code), (None, 7), "{status:?}");
    assert!(agent.logs("trap").iter().any(|e| e.line == "got-term"));

    // A command killed by SIGKILL (its own, from inside) is still reported as signal 9,
    // and a plain exit code passes through.
    start(&mut ch, agent.config("killed", &["sh", "-c", "kill -KILL $$"]));
    let status = wait(&mut ch, "killed");
    assert_eq!((status.signal, status.code, status.oom_killed), (Some(9), 137, false), "{status:?}");
    start(&mut ch, agent.config("code", &["sh", "-c", "exit 42"]));
    assert_eq!(wait(&mut ch, "code").code, 42);

    // Orphans re-parented to the shim are reaped: no zombies in the container.
    let orphans = "for i in 1 2 3 4; do (sleep 0.2 &); done; echo spawned; sleep 1000";
    start(&mut ch, agent.config("orphans", &["sh", "-c", orphans]));
    wait_for_line(&agent, "orphans", "spawned");
    std::thread::sleep(Duration::from_secs(2));
    let (stat, code) = exec_sh(&agent, "orphans", "cat /proc/[0-9]*/stat");
    assert_eq!(code, 0);
    let states: Vec<(&str, &str)> = stat
        .lines()
        .filter_map(|l| {
            let (head, tail) = l.rsplit_once(") ")?;
            Some((head.split_once(" (")?.1, tail.split_whitespace().next()?))
        })
        .collect();
    println!("kvm_engine: processes in the orphans container: {states:?}");
    assert!(states.contains(&("init", "S")) && states.iter().any(|(c, _)| *c == "sleep"), "{stat}");
    assert!(!states.iter().any(|(_, s)| *s == "Z"), "zombies: {stat}");
    ch.call(Call::Signal { name: "orphans".into(), signal: libc::SIGTERM }).unwrap();
    assert_eq!(wait(&mut ch, "orphans").signal, Some(libc::SIGTERM));

    // An unknown command still fails the start (the shim's command is checked).
    let err = ch
        .call(Call::CreateContainer(agent.config("nocmd", &["no-such-cmd"])))
        .and_then(|_| ch.call(Call::StartContainer { name: "nocmd".into() }));
    let (kind, message) = remote_kind(err.unwrap_err());
    assert_eq!(kind, RemoteErrorKind::StartFailed, "{message}");
    assert!(message.contains("no-such-cmd"), "{message}");
}

#[test]
#[ignore = "KVM tier (engine fast tier): needs root and cgroup v2; run in L1 by `cargo xtask test`"]
fn a_full_writable_layer_gives_enospc_and_spares_the_neighbours() {
    if !gate("a_full_writable_layer_gives_enospc_and_spares_the_neighbours") {
        return;
    }
    let agent = Agent::start("full");
    let mut ch = agent.channel();
    start(&mut ch, agent.config("neighbour", &["sh", "-c", "echo up; sleep 1000"]));
    wait_for_line(&agent, "neighbour", "up");
    // 64 MiB of memory: a 32 MiB writable layer; writing 48 MiB fails with ENOSPC.
    let mut c = agent.config(
        "filler",
        &["sh", "-c", "dd if=/dev/zero of=/big bs=1M count=48; echo dd=$?; df -k / | tail -1; sleep 1000"],
    );
    c.resources.memory_bytes = Some(64 << 20);
    start(&mut ch, c);
    let deadline = Instant::now() + Duration::from_secs(60);
    let lines = loop {
        let lines: Vec<String> = agent.logs("filler").into_iter().map(|e| e.line).collect();
        if lines.iter().any(|l| l.starts_with("overlay") || l.contains('%')) || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    println!("kvm_engine: filling the writable layer: {lines:?}");
    assert!(lines.iter().any(|l| l.contains("No space left on device")), "{lines:?}");
    let code = lines.iter().find_map(|l| l.strip_prefix("dd=")).unwrap_or_else(|| panic!("{lines:?}"));
    assert_ne!(code, "0", "{lines:?}");
    // Still running (not OOM-killed), and so is the neighbour.
    let Reply::Containers { containers } = ch.call(Call::ListContainers).unwrap() else { panic!() };
    assert!(containers.iter().all(|c| c.state == ContainerState::Running), "{containers:?}");
    let (out, code) = exec_sh(&agent, "neighbour", "echo alive; echo x > /f && cat /f");
    assert_eq!((out.as_str(), code), ("alive\nx\n", 0));
    let (size, _) = exec_sh(&agent, "filler", "ls -l /big | awk '{print $5}'");
    let size: u64 = size.trim().parse().unwrap();
    assert!(size <= 32 << 20 && size > 16 << 20, "the layer took {size} bytes");
}

#[test]
#[ignore = "KVM tier (engine fast tier): needs root and cgroup v2; run in L1 by `cargo xtask test`"]
fn power_off_stops_a_signal_ignorant_shell_at_once_only_under_the_shim() {
    if !gate("power_off_stops_a_signal_ignorant_shell_at_once_only_under_the_shim") {
        return;
    }
    let mut took = Vec::new();
    // The host build of the agent is dynamically linked, so it is refused as a shim.
    for (label, shim) in [
        ("without the shim", PathBuf::from(env!("CARGO_BIN_EXE_aci-agent"))),
        ("with the shim", static_agent()),
    ] {
        let mut agent = Agent::start_with("poweroff", shim);
        let mut ch = agent.channel();
        start(&mut ch, agent.config("idle", &["sh", "-c", "echo up; sleep 1000"]));
        wait_for_line(&agent, "idle", "up");
        let (init, _) = exec_sh(&agent, "idle", "cat /proc/1/comm");
        let stop = agent.power_off();
        println!(
            "kvm_engine: {label} (PID 1 {:?}): power-off with a running `sh -c 'sleep 1000'` took {stop:?}",
            init.trim()
        );
        took.push(stop);
    }
    // Without: SIGTERM is dropped, the agent waits its 5 s grace and SIGKILLs.
    assert!(took[0] >= Duration::from_secs(5), "{took:?}");
    assert!(took[1] < Duration::from_secs(2), "{took:?}");
}
