//! KVM tier: restart policies, init containers, the meter and records that outlive the
//! runtime, with real guests. The groups of one test run concurrently, in separate VMs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod runtime_support;

use std::time::{Duration, Instant};

use aci_core::runtime::{EventName, GroupState, GroupStatus, Runtime, RuntimeError, Step, StepError};
use aci_core::spec::{Container, ContainerGroup, InitContainer, RestartPolicy};
use runtime_support::{gate, registry, runtime, state_dir, BOOT_WAIT};

fn group(name: &str, image: &str, policy: RestartPolicy, script: &str) -> ContainerGroup {
    ContainerGroup::builder(name)
        .restart_policy(policy)
        .container(Container::new("app", image).command(["/bin/sh", "-c", script]).cpu(1.0).memory_gb(0.25))
        .build()
        .unwrap()
}

/// The kept (or live) log lines of a container, without timestamps.
async fn log_lines(rt: &Runtime, group: &str, container: &str) -> Vec<String> {
    use futures_util::StreamExt;
    let options = aci_core::runtime::LogOptions::default();
    let stream = rt.logs(group, container, options).await.unwrap();
    stream.map(|l| l.unwrap().line).collect().await
}

async fn ended(rt: &Runtime, name: &str) -> GroupStatus {
    rt.wait_for(name, BOOT_WAIT, "the group ends", |s| !s.state.is_active()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "KVM tier: boots guests; run by `cargo xtask test`"]
async fn restart_policies_back_off_fail_and_succeed_per_aci() {
    if !gate("restart_policies_back_off_fail_and_succeed_per_aci") {
        return;
    }
    let (reg, image) = registry();
    let state = state_dir("restart");
    let rt = runtime(&reg, state.path());

    tokio::join!(
        runtime_support::create(
            &rt,
            group("crashloop", &image, RestartPolicy::OnFailure, "echo run; exit 1")
        ),
        runtime_support::create(&rt, group("never", &image, RestartPolicy::Never, "exit 3")),
        runtime_support::create(&rt, group("done", &image, RestartPolicy::OnFailure, "echo ok")),
    );

    // OnFailure + exit 1: restarted with a growing back-off, restartCount grows.
    let s = rt
        .wait_for("crashloop", BOOT_WAIT, "3 restarts", |s| {
            s.container("app").is_some_and(|c| c.restart_count >= 3)
        })
        .await
        .unwrap();
    let app = s.container("app").unwrap();
    assert_eq!(s.state, GroupState::Running);
    assert!(app.has_event(EventName::BackOff), "{app:?}");
    let backoff = app.events.iter().find(|e| e.name.as_deref() == Some("BackOff")).unwrap();
    assert!(backoff.count.unwrap() >= 3, "{backoff:?}");
    let previous = app.previous_state.as_ref().unwrap();
    assert_eq!((previous.state.as_deref(), previous.exit_code), (Some("Terminated"), Some(1)));

    // Never + exit 3: the group fails, the container keeps its exit code.
    let s = ended(&rt, "never").await;
    assert_eq!(s.state, GroupState::Failed, "{s:?}");
    assert_eq!(s.container("app").unwrap().exit_code(), Some(3));
    assert_eq!(s.container("app").unwrap().restart_count, 0);

    // OnFailure + exit 0: the group succeeds, no restart.
    let s = ended(&rt, "done").await;
    assert_eq!(s.state, GroupState::Succeeded, "{s:?}");
    assert_eq!(s.container("app").unwrap().exit_code(), Some(0));
    // Its VM is gone; the logs kept at the end still answer.
    assert_eq!(log_lines(&rt, "done", "app").await, ["ok"]);

    // One group's failure did not touch the others: the crash loop still runs.
    assert_eq!(rt.get("crashloop").unwrap().state, GroupState::Running);
    let stopped = rt.stop("crashloop").await.unwrap();
    assert_eq!(stopped.state, GroupState::Stopped);
    println!(
        "restart: crashloop restarts {}, back-off events {}",
        stopped.container("app").unwrap().restart_count,
        backoff.count.unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "KVM tier: boots guests; run by `cargo xtask test`"]
async fn init_containers_run_first_and_their_failure_fails_the_group() {
    if !gate("init_containers_run_first_and_their_failure_fails_the_group") {
        return;
    }
    let (reg, image) = registry();
    let state = state_dir("init");
    let rt = runtime(&reg, state.path());
    let app = |image: &str| {
        Container::new("app", image).command(["/bin/sh", "-c", "busybox sleep 60"]).cpu(1.0).memory_gb(0.25)
    };

    let good = ContainerGroup::builder("init-ok")
        .init_container(InitContainer::new("first", &image).command(["/bin/sh", "-c", "busybox sleep 1"]))
        .init_container(InitContainer::new("second", &image).command(["/bin/sh", "-c", "exit 0"]))
        .container(app(&image))
        .build()
        .unwrap();
    let bad = ContainerGroup::builder("init-bad")
        .init_container(InitContainer::new("broken", &image).command([
            "/bin/sh",
            "-c",
            "echo broken-init >&2; exit 4",
        ]))
        .container(app(&image))
        .build()
        .unwrap();
    let (s, bad) = tokio::join!(runtime_support::create(&rt, good), rt.create(bad));

    let (first, second, app) =
        (s.container("first").unwrap(), s.container("second").unwrap(), s.container("app").unwrap());
    assert!(first.init && second.init && !app.init);
    assert_eq!((first.exit_code(), second.exit_code()), (Some(0), Some(0)));
    let finished = |c: &aci_core::runtime::ContainerStatus| c.current_state.finish_time.clone().unwrap();
    let app_start = app.current_state.start_time.clone().unwrap();
    assert!(finished(first) <= second.current_state.start_time.clone().unwrap());
    assert!(finished(second) <= app_start, "{second:?} {app:?}");
    assert_eq!(app.state(), "Running");

    let err = bad.unwrap_err();
    match &err {
        RuntimeError::Deploy { step: Step::InitContainers, source, .. } => {
            assert!(
                matches!(**source, StepError::InitFailed { ref container, exit_code: 4 } if container == "broken")
            )
        }
        other => panic!("unexpected {other:?}"),
    }
    let s = rt.get("init-bad").unwrap();
    assert_eq!(s.state, GroupState::Failed);
    assert!(s.reason.as_deref().unwrap().contains("broken"), "{:?}", s.reason);
    assert!(!s.container("app").unwrap().has_event(EventName::Started));
    assert!(s.container("broken").unwrap().has_event(EventName::Failed));
    assert_eq!(log_lines(&rt, "init-bad", "broken").await, ["broken-init"]);
    rt.delete("init-ok").await.unwrap();
    assert!(matches!(rt.get("init-ok"), Err(RuntimeError::NotFound(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "KVM tier: boots a guest; run by `cargo xtask test`"]
async fn a_three_second_group_is_billed_from_the_pull_and_its_record_outlives_the_runtime() {
    if !gate("a_three_second_group_is_billed_from_the_pull_and_its_record_outlives_the_runtime") {
        return;
    }
    let (reg, image) = registry();
    let state = state_dir("bill");
    let rt = runtime(&reg, state.path());
    let spec = ContainerGroup::builder("billed")
        .restart_policy(RestartPolicy::Never)
        .container(
            Container::new("app", &image)
                .command(["/bin/sh", "-c", "echo slept; busybox sleep 3"])
                .cpu(1.0)
                .memory_gb(0.5),
        )
        .build()
        .unwrap();
    let t0 = Instant::now();
    runtime_support::create(&rt, spec).await;
    let s = ended(&rt, "billed").await;
    let wall = t0.elapsed();
    assert_eq!(s.state, GroupState::Succeeded);
    let u = s.current_usage().unwrap();
    let metered = Duration::from_millis(u.meter.stopped_at_ms.unwrap() - u.meter.started_at_ms);
    println!("bill: wall {wall:?}, metered {metered:?}, charge {:?}", u.charge);
    assert!(metered <= wall && wall - metered < Duration::from_secs(1), "wall {wall:?} metered {metered:?}");
    let billed = u.charge.billed_seconds as f64;
    assert!((billed - wall.as_secs_f64()).abs() < 1.0, "billed {billed} s for {wall:?}");
    assert_eq!((u.charge.vcpu_seconds, u.charge.gb_seconds), (billed * 1.0, billed * 0.5));

    // A new runtime over the same state directory lists the group and what ran.
    drop(rt);
    let again = runtime(&reg, state.path());
    let listed = again.list();
    assert_eq!(listed.len(), 1);
    let s = &listed[0];
    assert_eq!((s.name.as_str(), s.state), ("billed", GroupState::Succeeded));
    assert_eq!(s.container("app").unwrap().exit_code(), Some(0));
    assert_eq!(s.current_usage().unwrap().charge.billed_seconds, u.charge.billed_seconds);
    assert_eq!(log_lines(&again, "billed", "app").await, ["slept"]);
    let view = s.to_container_group();
    assert_eq!(view.properties.instance_view.unwrap().state.as_deref(), Some("Succeeded"));
}

/// Set in the child process of the test below: the state directory and registry to use.
const CHILD_ENV: &str = "ACI_RUNTIME_TEST_CHILD";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "KVM tier: boots a guest; run by `cargo xtask test`"]
async fn a_group_whose_process_died_is_reported_stopped_not_lost() {
    if let Ok(child) = std::env::var(CHILD_ENV) {
        // The child: run a group, then die abruptly with its VM.
        let (host, dir) = child.split_once('|').unwrap();
        let rt = runtime_support::runtime_at(host, std::path::Path::new(dir));
        let image = format!("{host}/busybox:1");
        rt.create(group("orphan", &image, RestartPolicy::Always, "busybox sleep 600")).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        std::process::abort();
    }
    if !gate("a_group_whose_process_died_is_reported_stopped_not_lost") {
        return;
    }
    let (reg, _image) = registry();
    let state = state_dir("orphan");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "a_group_whose_process_died_is_reported_stopped_not_lost", "--include-ignored"])
        .env(CHILD_ENV, format!("{}|{}", reg.host(), state.path().display()))
        .output()
        .unwrap();
    assert!(!out.status.success(), "the child should have aborted");
    let rt = runtime(&reg, state.path());
    let s = rt.get("orphan").unwrap_or_else(|e| {
        panic!(
            "{e}; child output:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    println!("orphan: {:?} reason {:?}", s.state, s.reason);
    assert_eq!(s.state, GroupState::Stopped);
    assert!(s.reason.as_deref().unwrap().contains("ended with the process"), "{:?}", s.reason);
    assert!(s.container("app").unwrap().has_event(EventName::Started));
    let u = s.current_usage().unwrap();
    assert!(u.meter.stopped_at_ms.is_some() && u.charge.billed_seconds > 0, "{u:?}");
    // It can be started again in this process.
    assert_eq!(rt.start("orphan").await.unwrap().state, GroupState::Running);
    assert_eq!(rt.stop("orphan").await.unwrap().state, GroupState::Stopped);
}
