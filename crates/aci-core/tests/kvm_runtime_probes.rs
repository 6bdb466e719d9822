//! KVM tier: liveness and readiness probes end to end (`docs/probes.md`). The agent runs the
//! probes in a real guest; the runtime turns its reports into `Unhealthy` events, `ready`
//! flags and liveness restarts. Periods are 1 s so the tests stay short under nested TCG.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod runtime_support;

use std::time::{Duration, Instant};

use aci_core::runtime::{EventName, ExecRequest, GroupState, GroupStatus, Runtime, RuntimeError};
use aci_core::spec::{Container, ContainerGroup, Probe, RestartPolicy, SecurityContext};
use runtime_support::{gate, registry, runtime, state_dir, BOOT_WAIT};

/// Root in the container: the test image's `/tmp` belongs to root.
fn root() -> SecurityContext {
    SecurityContext { run_as_user: Some(0), run_as_group: Some(0), ..Default::default() }
}

fn app(image: &str, script: &str) -> Container {
    Container::new("app", image)
        .command(["/bin/sh", "-c", script])
        .cpu(1.0)
        .memory_gb(0.25)
        .security_context(root())
}

fn group(name: &str, policy: RestartPolicy, containers: Vec<Container>) -> ContainerGroup {
    let mut builder = ContainerGroup::builder(name).restart_policy(policy);
    for c in containers {
        builder = builder.container(c);
    }
    builder.build().unwrap()
}

/// The events named `name` of a container, as "message (count)".
fn events(s: &GroupStatus, container: &str, name: EventName) -> Vec<String> {
    s.container(container)
        .map(|c| {
            c.events
                .iter()
                .filter(|e| e.name.as_deref() == Some(name.as_str()))
                .map(|e| format!("{} ({})", e.message.as_deref().unwrap_or(""), e.count.unwrap_or(1)))
                .collect()
        })
        .unwrap_or_default()
}

/// How many `name` events the container has had (aggregated repeats counted).
fn count(s: &GroupStatus, container: &str, name: EventName) -> u32 {
    s.container(container).map_or(0, |c| {
        c.events
            .iter()
            .filter(|e| e.name.as_deref() == Some(name.as_str()))
            .map(|e| e.count.unwrap_or(1))
            .sum()
    })
}

async fn wait(rt: &Runtime, name: &str, what: &str, condition: impl Fn(&GroupStatus) -> bool) -> GroupStatus {
    match rt.wait_for(name, BOOT_WAIT, what, condition).await {
        Ok(s) => s,
        Err(err) => {
            panic!("{err}\nstatus: {:#?}\nconsole:\n{}", rt.get(name), runtime_support::console(rt, name))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "KVM tier: boots guests; run by `cargo xtask test`"]
async fn a_failing_liveness_probe_restarts_the_container_in_place() {
    if !gate("a_failing_liveness_probe_restarts_the_container_in_place") {
        return;
    }
    let (reg, image) = registry();
    let state = state_dir("liveness");
    let rt = runtime(&reg, state.path());
    // Healthy for 4 s, then the health file goes: every run does the same.
    let script = ": > /tmp/healthy; busybox sleep 4; busybox rm /tmp/healthy; busybox sleep 600";
    let liveness =
        Probe::exec(["cat", "/tmp/healthy"]).period_seconds(1).timeout_seconds(5).failure_threshold(2);
    let spec = group("liveness", RestartPolicy::Always, vec![app(&image, script).liveness_probe(liveness)]);
    let started = Instant::now();
    let s = runtime_support::create(&rt, spec).await;
    let created = started.elapsed();
    assert!(s.container("app").unwrap().is_ready(), "no readiness probe: ready when running {s:#?}");

    let s = wait(&rt, "liveness", "a restart by the liveness probe", |s| {
        s.container("app").is_some_and(|c| c.restart_count >= 1)
    })
    .await;
    let first = started.elapsed();
    let kills = events(&s, "app", EventName::Killing);
    assert!(kills.iter().any(|k| k.contains("failed liveness probe")), "{kills:?}");
    let unhealthy = events(&s, "app", EventName::Unhealthy);
    assert!(
        unhealthy
            .iter()
            .any(|u| u.starts_with("Liveness probe failed: [\"cat\", \"/tmp/healthy\"] exited 1")),
        "{unhealthy:?}"
    );
    assert!(s.container("app").unwrap().has_event(EventName::BackOff), "restarts go through the back-off");
    let previous = s.container("app").unwrap().previous_state.clone().unwrap();
    assert_eq!(previous.state.as_deref(), Some("Terminated"), "{previous:?}");

    // The new run is healthy again for a while, then fails again: the cycle repeats.
    let s = wait(&rt, "liveness", "a second liveness restart", |s| {
        s.container("app").is_some_and(|c| c.restart_count >= 2 && c.state() == "Running")
    })
    .await;
    let second = started.elapsed();
    assert_eq!(s.state, GroupState::Running);
    assert!(count(&s, "app", EventName::Killing) >= 2, "{:?}", events(&s, "app", EventName::Killing));
    println!(
        "liveness: create {:.1}s, first restart at {:.1}s, second at {:.1}s; unhealthy {unhealthy:?}",
        created.as_secs_f64(),
        first.as_secs_f64(),
        second.as_secs_f64()
    );
    rt.stop("liveness").await.unwrap();
}

/// A CGI answering 200 while `/tmp/ok` exists and 500 otherwise; busybox httpd starts on
/// `port` 3 s after the container (readiness fails on a refused connection first).
fn httpd_script(port: u16) -> String {
    format!(
        r#"busybox mkdir -p /www/cgi-bin
cat > /www/cgi-bin/status <<'EOF'
#!/bin/sh
if [ -e /tmp/ok ]; then
  printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nok\n'
else
  printf 'HTTP/1.0 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\nnot ok\n'
fi
EOF
busybox chmod 755 /www/cgi-bin/status
busybox sleep 3
exec busybox httpd -f -p {port} -h /www"#
    )
}

/// The web container: the CGI server on `port` with an httpGet readiness probe on it.
fn web(image: &str, port: u16) -> Container {
    let readiness =
        Probe::http_get("/cgi-bin/status", port).period_seconds(1).timeout_seconds(3).failure_threshold(1);
    Container::new("web", image)
        .command(["/bin/sh".to_string(), "-c".to_string(), httpd_script(port)])
        .port(port)
        .cpu(0.5)
        .memory_gb(0.25)
        .security_context(root())
        .readiness_probe(readiness)
}

async fn sh(rt: &Runtime, group: &str, container: &str, script: &str) {
    let out = rt.exec(group, container, ExecRequest::new(["/bin/sh", "-c", script])).await.unwrap();
    assert_eq!(out.exit_code, 0, "{script}: {out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "KVM tier: boots guests; run by `cargo xtask test`"]
async fn an_http_readiness_probe_follows_the_server_and_wait_ready_names_what_is_not_ready() {
    if !gate("an_http_readiness_probe_follows_the_server_and_wait_ready_names_what_is_not_ready") {
        return;
    }
    let (reg, image) = registry();
    let state = state_dir("readiness");
    let rt = runtime(&reg, state.path());
    let web = web(&image, 8080);
    let sidecar = Container::new("sidecar", &image)
        .command(["/bin/sh", "-c", "busybox sleep 600"])
        .cpu(0.5)
        .memory_gb(0.25);
    runtime_support::create(&rt, group("ready", RestartPolicy::Always, vec![web, sidecar])).await;

    // The server answers 500: not ready, and wait_ready says which container holds it back.
    let s = wait(&rt, "ready", "a 500 from the readiness probe", |s| {
        events(s, "web", EventName::Unhealthy).iter().any(|e| e.contains("500"))
    })
    .await;
    assert!(!s.is_ready() && !s.container("web").unwrap().is_ready(), "{s:#?}");
    assert!(s.container("sidecar").unwrap().is_ready(), "no readiness probe: ready when running");
    let view = s.to_container_group();
    assert_eq!(view.properties.instance_view.as_ref().unwrap().ready, Some(false));
    match rt.wait_ready("ready", Duration::from_secs(3)).await {
        Err(RuntimeError::NotReady { containers, .. }) => assert_eq!(containers, ["web"]),
        other => panic!("expected NotReady naming web, got {other:?}"),
    }

    // 200: ready.
    sh(&rt, "ready", "web", ": > /tmp/ok").await;
    let flipped = Instant::now();
    let s = rt.wait_ready("ready", BOOT_WAIT).await.unwrap();
    let to_ready = flipped.elapsed();
    assert!(s.container("web").unwrap().is_ready());
    let view = s.to_container_group();
    assert_eq!(view.properties.instance_view.as_ref().unwrap().ready, Some(true));
    let web_view = view.properties.containers.iter().find(|c| c.name == "web").unwrap();
    assert_eq!(web_view.properties.instance_view.as_ref().unwrap().ready, Some(true));

    // 500 again: not ready again (the container keeps running: readiness never restarts).
    sh(&rt, "ready", "web", "busybox rm /tmp/ok").await;
    let flipped = Instant::now();
    let s = wait(&rt, "ready", "not ready again", |s| !s.container("web").unwrap().is_ready()).await;
    let to_not_ready = flipped.elapsed();
    assert!(!s.is_ready());
    let web = s.container("web").unwrap();
    assert_eq!((web.state(), web.restart_count), ("Running", 0));
    println!(
        "readiness: ready {:.1}s after the 200, not ready {:.1}s after the 500; unhealthy {:?}",
        to_ready.as_secs_f64(),
        to_not_ready.as_secs_f64(),
        events(&s, "web", EventName::Unhealthy)
    );
    rt.stop("ready").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "KVM tier: boots guests; run by `cargo xtask test`"]
async fn a_hanging_probe_fails_at_its_timeout() {
    if !gate("a_hanging_probe_fails_at_its_timeout") {
        return;
    }
    let (reg, image) = registry();
    let state = state_dir("hang");
    let rt = runtime(&reg, state.path());
    let mut events_rx = rt.subscribe();
    let hang =
        Probe::exec(["busybox", "sleep", "30"]).period_seconds(1).timeout_seconds(1).failure_threshold(1);
    let spec =
        group("hang", RestartPolicy::Always, vec![app(&image, "busybox sleep 600").readiness_probe(hang)]);
    runtime_support::create(&rt, spec).await;

    // From the container's start to the first failed attempt: about timeoutSeconds, not 30 s.
    let (mut started_ms, mut unhealthy) = (None, None);
    let deadline = Instant::now() + BOOT_WAIT;
    while unhealthy.is_none() && Instant::now() < deadline {
        let event = tokio::time::timeout(Duration::from_secs(5), events_rx.recv()).await;
        let Ok(Ok(event)) = event else { continue };
        if event.group != "hang" {
            continue;
        }
        match event.name {
            EventName::Started => started_ms = Some(event.time_ms),
            EventName::Unhealthy => unhealthy = Some((event.time_ms, event.message)),
            _ => {}
        }
    }
    let (at_ms, message) = unhealthy.expect("an Unhealthy event");
    let after = Duration::from_millis(at_ms - started_ms.expect("a Started event"));
    assert!(message.contains("did not finish within 1000 ms"), "{message}");
    assert!(after < Duration::from_secs(10), "first failure {after:?} after the start: {message}");
    let s = rt.get("hang").unwrap();
    assert!(!s.is_ready());
    assert_eq!(s.container("app").unwrap().restart_count, 0, "readiness never restarts");
    println!("hang: first Unhealthy {:.2}s after Started: {message}", after.as_secs_f64());
    rt.stop("hang").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "KVM tier: boots guests; run by `cargo xtask test`"]
async fn restart_policy_never_keeps_an_unhealthy_container_running() {
    if !gate("restart_policy_never_keeps_an_unhealthy_container_running") {
        return;
    }
    let (reg, image) = registry();
    let state = state_dir("never");
    let rt = runtime(&reg, state.path());
    let liveness =
        Probe::exec(["cat", "/tmp/missing"]).period_seconds(1).timeout_seconds(5).failure_threshold(1);
    let spec =
        group("never", RestartPolicy::Never, vec![app(&image, "busybox sleep 600").liveness_probe(liveness)]);
    runtime_support::create(&rt, spec).await;

    let s = wait(&rt, "never", "3 failed liveness attempts", |s| count(s, "app", EventName::Unhealthy) >= 3)
        .await;
    let app = s.container("app").unwrap();
    assert_eq!(s.state, GroupState::Running, "{s:#?}");
    assert_eq!((app.state(), app.restart_count), ("Running", 0), "{app:#?}");
    assert!(!app.has_event(EventName::Killing), "{:?}", events(&s, "app", EventName::Killing));
    assert!(app.is_ready(), "no readiness probe: ready while it runs");
    println!("never: {:?}", events(&s, "app", EventName::Unhealthy));
    rt.stop("never").await.unwrap();
}

/// Whether 127.0.0.1:`port` refuses connections (nothing listens).
fn refused(port: u16) -> bool {
    std::net::TcpStream::connect((std::net::Ipv4Addr::LOCALHOST, port))
        .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "KVM tier: boots a guest on a real network; run by `cargo xtask test`"]
async fn published_ports_follow_readiness_when_the_runtime_says_so() {
    let test = "published_ports_follow_readiness_when_the_runtime_says_so";
    if !runtime_support::net_gate(test) {
        return;
    }
    let (reg, image) = registry();
    let state = state_dir("readyports");
    let prefix = format!("acipr{}-", std::process::id() % 100_000);
    let _cleanup = runtime_support::Namespaces(prefix.clone());
    let mut net = runtime_support::net_settings(state.path(), &prefix, 96, false);
    net.publish_when_ready = true;
    let rt = runtime_support::guest_builder(&reg.host(), state.path())
        .stats_interval(Duration::from_millis(500))
        .networking(net)
        .build()
        .unwrap();
    let port = runtime_support::free_port();
    let spec = ContainerGroup::builder("gated")
        .container(web(&image, port))
        .ip_address(aci_core::spec::IpAddress::public([port]))
        .build()
        .unwrap();
    let s = runtime_support::create(&rt, spec).await;

    // Not ready (the CGI answers 500 or the server is not up): nothing published.
    assert!(s.published.is_empty(), "{:?}", s.published);
    let s = wait(&rt, "gated", "a failed readiness attempt", |s| count(s, "web", EventName::Unhealthy) >= 2)
        .await;
    assert!(!s.is_ready() && s.published.is_empty(), "{:?}", s.published);
    assert!(refused(port), "port {port} must be closed while the group is not ready");

    // Ready: published, and the host reaches the server through it.
    sh(&rt, "gated", "web", ": > /tmp/ok").await;
    let s = wait(&rt, "gated", "ports published", |s| !s.published.is_empty()).await;
    assert_eq!(s.published, [format!("127.0.0.1:{port}")]);
    let page = tokio::task::spawn_blocking(move || runtime_support::host_http_get(port, "/cgi-bin/status"))
        .await
        .unwrap()
        .unwrap();
    assert!(page.starts_with("HTTP/1.0 200"), "{page}");

    // Not ready again: closed again.
    sh(&rt, "gated", "web", "busybox rm /tmp/ok").await;
    let s = wait(&rt, "gated", "ports closed", |s| s.published.is_empty()).await;
    assert!(!s.is_ready());
    let closed_by = Instant::now() + Duration::from_secs(5);
    while !refused(port) {
        assert!(Instant::now() < closed_by, "port {port} still open 5 s after the group became not ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("ready ports: 127.0.0.1:{port} published while ready, closed otherwise");
    rt.stop("gated").await.unwrap();
}
