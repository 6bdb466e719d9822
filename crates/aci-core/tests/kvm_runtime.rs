//! KVM tier: the quickstart group end to end in a real guest. busybox httpd and a sidecar
//! that fetches from it over 127.0.0.1 run in one microVM; their logs (with timestamps),
//! an exec with its exit code and the bill are checked.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod runtime_support;

use std::time::{Duration, Instant};

use aci_core::runtime::{EventName, ExecRequest, GroupState, LogOptions, RuntimeError};
use aci_core::spec::{Container, ContainerGroup};
use futures_util::StreamExt;
use runtime_support::{gate, registry, runtime, state_dir, BOOT_WAIT};

/// The quickstart group (the same as `examples/quickstart.rs`).
fn quickstart(image: &str) -> ContainerGroup {
    ContainerGroup::builder("quickstart")
        .container(
            Container::new("web", image)
                .command(["/bin/busybox", "httpd", "-f", "-v", "-p", "8080", "-h", "/etc"])
                .port(8080)
                .cpu(0.5)
                .memory_gb(0.25),
        )
        .container(
            Container::new("sidecar", image)
                .command([
                    "/bin/sh",
                    "-c",
                    "while true; do busybox wget -q -O - http://127.0.0.1:8080/motd && echo fetched-ok; \
                     busybox sleep 1; done",
                ])
                .cpu(0.5)
                .memory_gb(0.25),
        )
        .build()
        .unwrap()
}

async fn lines(rt: &aci_core::runtime::Runtime, container: &str) -> Vec<String> {
    let options = LogOptions { tail: None, timestamps: true, follow: false };
    let mut stream = rt.logs("quickstart", container, options).await.unwrap();
    let mut out = Vec::new();
    while let Some(line) = stream.next().await {
        out.push(line.unwrap().to_string());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "KVM tier: boots a guest; run by `cargo xtask test`"]
async fn quickstart_runs_httpd_and_sidecar_with_logs_exec_and_bill() {
    if !gate("quickstart_runs_httpd_and_sidecar_with_logs_exec_and_bill") {
        return;
    }
    let (reg, image) = registry();
    let state = state_dir("quickstart");
    let rt = runtime(&reg, state.path());
    let mut events = rt.subscribe();
    let mut usage_feed = rt.subscribe_usage();

    let started = Instant::now();
    let status = runtime_support::create(&rt, quickstart(&image)).await;
    let created = started.elapsed();
    let phases: Vec<String> =
        status.deploy_phases.iter().map(|p| format!("{} {:.0} ms", p.step, p.ms)).collect();
    println!("quickstart: deploy phases: {}", phases.join(", "));
    assert!(status.deploy_phases.iter().any(|p| p.step == "boot the VM"), "{phases:?}");
    assert_eq!(status.state, GroupState::Running);
    for c in ["web", "sidecar"] {
        let c = status.container(c).unwrap();
        assert_eq!(c.state(), "Running", "{c:?}");
        assert!(c.has_event(EventName::Pulled) && c.has_event(EventName::Started), "{c:?}");
    }

    // The sidecar's fetch succeeds: its log has the page and the marker; httpd logged it.
    let deadline = Instant::now() + BOOT_WAIT;
    let (web, sidecar) = loop {
        let (web, sidecar) = (lines(&rt, "web").await, lines(&rt, "sidecar").await);
        if sidecar.iter().any(|l| l.ends_with("fetched-ok")) || Instant::now() > deadline {
            break (web, sidecar);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!("web log:\n{}\nsidecar log:\n{}", web.join("\n"), sidecar.join("\n"));
    assert!(sidecar.iter().any(|l| l.ends_with("hello from aci")), "{sidecar:?}");
    assert!(sidecar.iter().any(|l| l.ends_with("fetched-ok")), "{sidecar:?}");
    // httpd -v logs each answered request with the client address.
    assert!(web.iter().any(|l| l.contains("127.0.0.1") && l.contains("response:200")), "{web:?}");
    // Timestamps: RFC 3339 UTC with nanoseconds, in this century.
    for line in web.iter().chain(&sidecar) {
        assert!(line.starts_with("20") && line.as_bytes().get(10) == Some(&b'T'), "{line}");
        assert!(line.split(' ').next().unwrap().ends_with('Z'), "{line}");
    }

    let out = rt.exec("quickstart", "web", ExecRequest::new(["cat", "/etc/motd"])).await.expect("exec");
    assert_eq!((out.exit_code, out.stdout_text().as_str()), (0, "hello from aci\n"), "{out:?}");
    let out = rt
        .exec("quickstart", "sidecar", ExecRequest::new(["sh", "-c", "echo out; echo err >&2; exit 7"]))
        .await;
    let out = out.expect("exec");
    assert_eq!(
        (out.exit_code, out.stdout_text().as_str(), out.stderr.as_slice()),
        (7, "out\n", &b"err\n"[..])
    );

    // A terminal for an exec.
    let tty = ExecRequest {
        tty: Some(aci_proto::container::TtySize { rows: 24, cols: 80 }),
        ..ExecRequest::new(["busybox", "tty"])
    };
    let out = rt.exec("quickstart", "web", tty).await.expect("exec with a tty");
    assert!(out.exit_code == 0 && out.stdout_text().contains("/dev/pts/"), "{out:?}");

    // Following: new lines arrive on the stream as the sidecar writes them.
    let follow = LogOptions { tail: Some(0), timestamps: false, follow: true };
    let mut live = rt.logs("quickstart", "sidecar", follow).await.unwrap();
    let next = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let line = live.next().await.expect("the stream ended").unwrap();
            if line.line == "fetched-ok" {
                return line;
            }
        }
    })
    .await
    .expect("a followed line within 60 s");
    assert!(!next.timestamps && next.to_string() == "fetched-ok");
    drop(live);

    // restart: every container restarts in place, in the same VM (same deployment).
    let restarted = rt.restart("quickstart").await.expect("restart");
    assert_eq!((restarted.state, restarted.deployment), (GroupState::Running, 1));
    let s = rt
        .wait_for("quickstart", BOOT_WAIT, "both containers restarted", |s| {
            s.containers.iter().all(|c| c.restart_count == 1 && c.state() == "Running")
        })
        .await
        .unwrap();
    let web = s.container("web").unwrap();
    assert!(web.has_event(EventName::Killing), "{web:?}");
    assert_eq!(web.previous_state.as_ref().unwrap().state.as_deref(), Some("Terminated"));
    let out = rt
        .exec("quickstart", "web", ExecRequest::new(["cat", "/etc/motd"]))
        .await
        .expect("exec after restart");
    assert_eq!(out.exit_code, 0);

    let stopped = rt.stop("quickstart").await.unwrap();
    assert_eq!(stopped.state, GroupState::Stopped);
    assert!(matches!(
        rt.exec("quickstart", "web", ExecRequest::new(["true"])).await,
        Err(RuntimeError::NotRunning(_))
    ));
    let usage = rt.usage("quickstart").unwrap();
    let bill = &usage.last().unwrap().charge;
    println!(
        "quickstart: create {created:?}; billed {} s, {} vCPU-s, {} GB-s, {:.7} {}",
        bill.billed_seconds, bill.vcpu_seconds, bill.gb_seconds, bill.cost, bill.currency
    );
    assert!(bill.billed_seconds > 0 && bill.cost > 0.0, "{bill:?}");
    assert_eq!(bill.vcpu_seconds, bill.billed_seconds as f64 * 1.0);
    assert_eq!(bill.gb_seconds, bill.billed_seconds as f64 * 0.5);

    // Usage records were broadcast while it ran (and at the end), with measured usage.
    let mut fed = Vec::new();
    while let Ok(u) = usage_feed.try_recv() {
        fed.push(u);
    }
    assert!(fed.len() >= 2, "{fed:?}");
    assert!(fed.last().unwrap().meter.stopped_at_ms.is_some());
    assert!(
        fed.iter().any(|u| u.measured.iter().any(|m| m.container == "web" && m.memory_peak_bytes > 0)),
        "{fed:?}"
    );
    println!("{}", usage.last().unwrap());

    // start: a new deployment of the same spec, metered separately.
    let started_again = rt.start("quickstart").await.expect("start");
    assert_eq!((started_again.state, started_again.deployment), (GroupState::Running, 2));
    assert!(started_again.containers.iter().all(|c| c.restart_count == 0));
    rt.delete("quickstart").await.unwrap();
    assert!(rt.list().is_empty());

    let mut names = Vec::new();
    while let Ok(e) = events.try_recv() {
        names.push((e.container.clone(), e.name));
    }
    for want in
        [EventName::Pulling, EventName::Pulled, EventName::Created, EventName::Started, EventName::Killing]
    {
        assert!(
            names.iter().any(|(c, n)| c.as_deref() == Some("web") && *n == want),
            "{want:?} in {names:?}"
        );
    }
    assert!(names.iter().any(|(c, n)| c.is_none() && *n == EventName::Stopped), "{names:?}");
}
