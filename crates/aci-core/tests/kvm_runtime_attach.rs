//! KVM tier: `Runtime::attach` against real guests: live stdout and stderr apart with the
//! run's exit code (and attaching again after the restart), stdin through the attachment
//! to `cat` and its end of file, two attachments at once, and the typed errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod runtime_support;

use std::time::{Duration, Instant};

use aci_core::runtime::{
    AttachChunk, AttachError, AttachOptions, Attachment, LogOptions, Runtime, RuntimeError,
};
use aci_core::spec::{Container, ContainerGroup, RestartPolicy};
use aci_proto::container::LogStream;
use futures_util::StreamExt;
use runtime_support::{gate, registry, runtime, state_dir, BOOT_WAIT};

/// Prints `out N` on stdout and `err N` on stderr every 0.2 s, `lines` times, then exits 3.
fn counter(lines: u32) -> String {
    format!(
        "i=0; while [ $i -lt {lines} ]; do echo out $i; echo err $i >&2; i=$((i+1)); sleep 0.2; done; exit 3"
    )
}

fn container(name: &str, image: &str, script: &str) -> Container {
    Container::new(name, image).command(["/bin/sh", "-c", script]).cpu(0.5).memory_gb(0.25)
}

/// The kept log lines of a container's stdout.
async fn stdout_log(rt: &Runtime, group: &str, container: &str) -> Vec<String> {
    let stream = rt.logs(group, container, LogOptions::default()).await.unwrap();
    stream
        .filter_map(|l| async move { l.ok().filter(|l| l.stream == LogStream::Stdout) })
        .map(|l| l.line)
        .collect()
        .await
}

/// Waits until the container's stdout log has a line `out N` with N >= `at_least`; returns
/// the highest N seen.
async fn wait_for_count(rt: &Runtime, group: &str, container: &str, at_least: u32) -> u32 {
    let deadline = Instant::now() + BOOT_WAIT;
    loop {
        let last = stdout_log(rt, group, container).await.iter().filter_map(|l| number(l, "out ")).max();
        if let Some(n) = last.filter(|n| *n >= at_least) {
            return n;
        }
        assert!(Instant::now() < deadline, "{container} never printed out {at_least}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn number(line: &str, prefix: &str) -> Option<u32> {
    line.strip_prefix(prefix)?.trim().parse().ok()
}

/// Everything an attachment delivers until it ends: (stdout, stderr).
async fn drain(attached: &mut Attachment) -> (String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let read = async {
        while let Some(AttachChunk { stream, bytes }) = attached.next().await {
            match stream {
                LogStream::Stdout => out.extend_from_slice(&bytes),
                LogStream::Stderr => err.extend_from_slice(&bytes),
            }
        }
    };
    tokio::time::timeout(BOOT_WAIT, read).await.expect("the attachment never ended");
    (String::from_utf8_lossy(&out).into_owned(), String::from_utf8_lossy(&err).into_owned())
}

/// The numbers of `prefix N` lines, checking every line has the prefix and they count up by
/// one.
fn counted(text: &str, prefix: &str) -> Vec<u32> {
    let numbers: Vec<u32> = text
        .lines()
        .map(|l| number(l, prefix).unwrap_or_else(|| panic!("line {l:?} is not {prefix:?}N in {text:?}")))
        .collect();
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "not consecutive: {numbers:?}");
    numbers
}

/// Reads stdout until it holds `want`, or panics after `BOOT_WAIT`.
async fn read_until(attached: &mut Attachment, want: &str) -> String {
    let mut out = String::new();
    let read = async {
        while !out.contains(want) {
            match attached.next().await {
                Some(AttachChunk { stream: LogStream::Stdout, bytes }) => {
                    out.push_str(&String::from_utf8_lossy(&bytes))
                }
                Some(_) => {}
                None => break,
            }
        }
    };
    tokio::time::timeout(BOOT_WAIT, read).await.expect("no output in time");
    assert!(out.contains(want), "the attachment ended before {want:?}: {out:?}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "KVM tier: boots a guest; run by `cargo xtask test`"]
async fn attach_streams_new_stdout_and_stderr_apart_and_ends_with_the_exit_code() {
    if !gate("attach_streams_new_stdout_and_stderr_apart_and_ends_with_the_exit_code") {
        return;
    }
    let (reg, image) = registry();
    let state = state_dir("attach-counter");
    let rt = runtime(&reg, state.path());
    let group = ContainerGroup::builder("counter")
        .restart_policy(RestartPolicy::Always)
        .container(container("app", &image, &counter(60)))
        .build()
        .unwrap();
    runtime_support::create(&rt, group).await;

    let seen = wait_for_count(&rt, "counter", "app", 2).await;
    let started = Instant::now();
    let mut attached = rt.attach("counter", "app", AttachOptions::default()).await.unwrap();
    println!("attach: connected in {:?}", started.elapsed());
    assert!(attached.take_stdin().is_none(), "no stdin was asked for");
    let (out, err) = drain(&mut attached).await;
    let exit = attached.exit().await.unwrap();
    assert_eq!(exit.exit_code, 3, "{exit:?}");

    let outs = counted(&out, "out ");
    let errs = counted(&err, "err ");
    println!(
        "attach: stdout {}..={}, stderr {}..={} (logs had out {seen} before)",
        outs[0],
        outs[outs.len() - 1],
        errs[0],
        errs[errs.len() - 1]
    );
    assert!(outs[0] >= seen, "the attachment replayed history: first {} but the log had {seen}", outs[0]);
    assert_eq!(outs.last(), Some(&59), "{out}");
    assert_eq!(errs.last(), Some(&59), "{err}");
    assert!(outs.len() >= 5 && errs.len() >= 5, "{outs:?} {errs:?}");

    // Restart policy Always: the next run starts; a new attachment follows it.
    let deadline = Instant::now() + BOOT_WAIT;
    let mut next = loop {
        match rt.attach("counter", "app", AttachOptions::default()).await {
            Ok(a) => break a,
            Err(AttachError::ContainerNotRunning { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("re-attaching after the restart: {e:?}"),
        }
    };
    let again = read_until(&mut next, "\n").await;
    assert!(again.starts_with("out "), "{again:?}");
    drop(next); // detach: the container runs on
    let status = rt.get("counter").unwrap();
    assert!(status.container("app").unwrap().restart_count >= 1, "{status:?}");
    rt.delete("counter").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "KVM tier: boots a guest; run by `cargo xtask test`"]
async fn attach_writes_stdin_to_cat_and_closing_it_ends_cat_with_zero() {
    if !gate("attach_writes_stdin_to_cat_and_closing_it_ends_cat_with_zero") {
        return;
    }
    let (reg, image) = registry();
    let state = state_dir("attach-stdin");
    let rt = runtime(&reg, state.path());
    let group = ContainerGroup::builder("stdin")
        .restart_policy(RestartPolicy::Always)
        .container(Container::new("cat", &image).command(["/bin/cat"]).cpu(0.5).memory_gb(0.25).stdin(true))
        .build()
        .unwrap();
    runtime_support::create(&rt, group).await;

    let mut attached = rt.attach("stdin", "cat", AttachOptions { stdin: true }).await.unwrap();
    let mut stdin = attached.take_stdin().expect("stdin was asked for");
    let started = Instant::now();
    stdin.write(b"hello through attach\n").await.unwrap();
    read_until(&mut attached, "hello through attach\n").await;
    println!("attach: a line round trip through cat took {:?}", started.elapsed());
    stdin.write(b"second line\n").await.unwrap();
    read_until(&mut attached, "second line\n").await;
    stdin.close().await.unwrap();
    let (rest, err) = drain(&mut attached).await;
    assert_eq!((rest.as_str(), err.as_str()), ("", ""));
    let exit = attached.exit().await.unwrap();
    assert_eq!(exit.exit_code, 0, "cat ends with 0 at end of input: {exit:?}");
    rt.delete("stdin").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "KVM tier: boots a guest; run by `cargo xtask test`"]
async fn two_attachments_at_once_both_get_the_output() {
    if !gate("two_attachments_at_once_both_get_the_output") {
        return;
    }
    let (reg, image) = registry();
    let state = state_dir("attach-two");
    let rt = runtime(&reg, state.path());
    let group = ContainerGroup::builder("two")
        .restart_policy(RestartPolicy::Never)
        .container(container("app", &image, &counter(40)))
        .container(container("idle", &image, "exec sleep 3600"))
        .build()
        .unwrap();
    runtime_support::create(&rt, group).await;
    wait_for_count(&rt, "two", "app", 1).await;

    let mut first = rt.attach("two", "app", AttachOptions::default()).await.unwrap();
    let mut second = rt.attach("two", "app", AttachOptions::default()).await.unwrap();
    let ((out1, _), (out2, err2)) = tokio::join!(drain(&mut first), drain(&mut second));
    let (exit1, exit2) = (first.exit().await.unwrap(), second.exit().await.unwrap());
    assert_eq!((exit1.exit_code, exit2.exit_code), (3, 3));
    let (n1, n2) = (counted(&out1, "out "), counted(&out2, "out "));
    println!(
        "attach: first got out {}..={}, second out {}..={}",
        n1[0],
        n1[n1.len() - 1],
        n2[0],
        n2[n2.len() - 1]
    );
    assert_eq!((n1.last(), n2.last()), (Some(&39), Some(&39)));
    assert!(n2.len() >= 5, "{n2:?}");
    assert!(n1.ends_with(&n2) || n2.ends_with(&n1), "one saw lines the other missed: {n1:?} {n2:?}");
    assert_eq!(counted(&err2, "err ").last(), Some(&39));
    rt.delete("two").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "KVM tier: boots a guest; run by `cargo xtask test`"]
async fn attach_errors_are_typed_and_name_the_container() {
    if !gate("attach_errors_are_typed_and_name_the_container") {
        return;
    }
    let (reg, image) = registry();
    let state = state_dir("attach-errors");
    let rt = runtime(&reg, state.path());
    let group = ContainerGroup::builder("errs")
        .restart_policy(RestartPolicy::Never)
        .container(container("idle", &image, "exec sleep 3600"))
        .container(container("done", &image, "exit 0"))
        .build()
        .unwrap();
    runtime_support::create(&rt, group).await;
    rt.wait_for("errs", BOOT_WAIT, "done ends", |s| {
        s.container("done").is_some_and(|c| c.state() == "Terminated")
    })
    .await
    .unwrap();

    let none = AttachOptions::default();
    let err = rt.attach("nope", "idle", none).await.unwrap_err();
    assert!(matches!(err, AttachError::Runtime(RuntimeError::NotFound(ref g)) if g == "nope"), "{err:?}");
    let err = rt.attach("errs", "ghost", none).await.unwrap_err();
    assert!(matches!(err, AttachError::Runtime(RuntimeError::NoSuchContainer { .. })), "{err:?}");
    assert!(err.to_string().contains("\"ghost\""), "{err}");
    let err = rt.attach("errs", "idle", AttachOptions { stdin: true }).await.unwrap_err();
    assert!(
        matches!(err, AttachError::StdinNotEnabled { ref container, .. } if container == "idle"),
        "{err:?}"
    );
    assert!(err.to_string().contains("\"idle\""), "{err}");
    let err = rt.attach("errs", "done", none).await.unwrap_err();
    assert!(
        matches!(err, AttachError::ContainerNotRunning { ref container, .. } if container == "done"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), r#"container group "errs": container "done" is not running"#);

    // The running one still attaches; a stopped group is NotRunning.
    drop(rt.attach("errs", "idle", none).await.unwrap());
    rt.stop("errs").await.unwrap();
    let err = rt.attach("errs", "idle", none).await.unwrap_err();
    assert!(matches!(err, AttachError::Runtime(RuntimeError::NotRunning(_))), "{err:?}");
    rt.delete("errs").await.unwrap();
}
