//! KVM tier: the agent's init shim in a real guest. A shell that installs no signal handler
//! (`sh -c 'sleep 1000'`) is PID 1 of its container's pid namespace, where the kernel drops
//! SIGTERM; under the shim it gets the SIGTERM and stops at once, so a restart (SIGTERM,
//! SIGKILL after `stop_grace`) and a stop (the agent's SIGTERM, SIGKILL after 5 s) no
//! longer wait out their grace periods. Also: a SIGTERM trap's exit code is reported, and
//! orphans re-parented to the shim are reaped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod runtime_support;

use std::time::{Duration, Instant};

use aci_core::runtime::{ExecRequest, GroupState};
use aci_core::spec::{Container, ContainerGroup, RestartPolicy};
use runtime_support::{create, gate, registry, runtime, state_dir, BOOT_WAIT};

/// A shell with no handlers that leaves orphans behind, and one with a SIGTERM trap.
fn group(image: &str) -> ContainerGroup {
    let idle = "for i in 1 2 3; do (sleep 0.2 &); done; echo up; sleep 1000";
    let trap = "trap 'echo got-term; exit 7' TERM; echo up; while true; do sleep 0.1; done";
    ContainerGroup::builder("shim")
        .restart_policy(RestartPolicy::Always)
        .container(Container::new("idle", image).command(["/bin/sh", "-c", idle]).cpu(1.0).memory_gb(0.25))
        .container(Container::new("trap", image).command(["/bin/sh", "-c", trap]).cpu(1.0).memory_gb(0.25))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "KVM tier: boots guests; run by `cargo xtask test`"]
async fn signal_ignorant_shells_stop_promptly_under_the_init_shim() {
    if !gate("signal_ignorant_shells_stop_promptly_under_the_init_shim") {
        return;
    }
    let (reg, image) = registry();
    let state = state_dir("stop");
    // runtime_support's stop_grace: 2 s.
    let rt = runtime(&reg, state.path());
    create(&rt, group(&image)).await;
    rt.wait_for("shim", BOOT_WAIT, "both containers run", |s| {
        s.containers.iter().all(|c| c.state() == "Running")
    })
    .await
    .unwrap();

    // The orphans ended long ago; the shim (PID 1) reaped them: no zombie is left.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let out = rt.exec("shim", "idle", ExecRequest::new(["sh", "-c", "cat /proc/[0-9]*/stat"])).await.unwrap();
    let stat = String::from_utf8_lossy(&out.stdout).into_owned();
    let states: Vec<&str> = stat
        .lines()
        .filter_map(|l| l.rsplit_once(") ").and_then(|(_, t)| t.split_whitespace().next()))
        .collect();
    println!("stop: process states in the idle container: {states:?}\n{stat}");
    assert!(states.len() >= 2 && !states.contains(&"Z"), "{stat}");
    assert!(stat.starts_with("1 (init) S") || stat.contains("\n1 (init) S"), "PID 1 is the shim: {stat}");

    // Restart: SIGTERM to both; neither waits out the 2 s grace for its SIGKILL.
    let t = Instant::now();
    rt.restart("shim").await.unwrap();
    let s = rt
        .wait_for("shim", BOOT_WAIT, "both containers restarted", |s| {
            s.containers.iter().all(|c| c.restart_count >= 1 && c.state() == "Running")
        })
        .await
        .unwrap();
    let restart = t.elapsed();
    let previous = |name: &str| s.container(name).unwrap().previous_state.clone().unwrap().exit_code;
    println!(
        "stop: restart of both containers took {restart:?}; previous exits idle {:?}, trap {:?}",
        previous("idle"),
        previous("trap")
    );
    // Killed by SIGTERM (not SIGKILL's 137), and the trap's own exit code.
    assert_eq!(previous("idle"), Some(143));
    assert_eq!(previous("trap"), Some(7));

    // Stop: the agent's SIGTERM ends both at once instead of after its 5 s grace.
    let t = Instant::now();
    let stopped = rt.stop("shim").await.unwrap();
    let stop = t.elapsed();
    println!("stop: Runtime::stop of the group took {stop:?}");
    assert_eq!(stopped.state, GroupState::Stopped);
    assert!(stop < Duration::from_secs(5), "stop took {stop:?}: the shell did not get SIGTERM");
    rt.delete("shim").await.unwrap();
}
