//! Host tier: validation of volumes and probes; each rule fails naming the right field.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod spec_support;

use aci_core::spec::{AzureFileVolume, ContainerGroup, Probe, Secret, Volume};
use spec_support::{base, fails_at, P0};

#[test]
fn volumes() {
    fails_at("properties.volumes[0]", "exactly one of", |g| g.properties.volumes[0].empty_dir = None);
    fails_at("properties.volumes[0]", "found emptyDir, gitRepo", |g| {
        g.properties.volumes[0].git_repo = Volume::git_repo("x", "https://example.org/r.git").git_repo;
    });
    let with_git_dir = |dir: &str| {
        let dir = dir.to_owned();
        move |g: &mut ContainerGroup| {
            let mut volume = Volume::git_repo("data", "https://example.org/r.git");
            volume.git_repo.as_mut().unwrap().directory = Some(dir);
            g.properties.volumes[0] = volume;
        }
    };
    fails_at("properties.volumes[0].gitRepo.directory", "must not contain '..'", with_git_dir("a/../../etc"));
    fails_at("properties.volumes[0].gitRepo.directory", "must not contain '..'", with_git_dir(".."));
    fails_at("properties.volumes[0].gitRepo.directory", "relative", with_git_dir("/etc"));
    let mut ok = base();
    with_git_dir(".")(&mut ok);
    ok.validate().unwrap();

    fails_at("properties.volumes[0].gitRepo.repository", "required", |g| {
        g.properties.volumes[0] = Volume::git_repo("data", "");
    });
    fails_at("properties.volumes[0].secret.x", "base64", |g| {
        g.properties.volumes[0] = Volume::secret("data", [("x", "not base64!")]);
    });
    fails_at("properties.volumes[0].secret.a/b", "not a valid file name", |g| {
        g.properties.volumes[0] = Volume::secret("data", [("a/b", "YQ==")]);
    });
    fails_at("properties.volumes[0].azureFile.shareName", "required", |g| {
        let share = AzureFileVolume {
            share_name: String::new(),
            storage_account_name: "acct".into(),
            storage_account_key: Some(Secret::new("k")),
            read_only: None,
        };
        g.properties.volumes[0] = Volume::azure_file("data", share);
    });
    fails_at("properties.volumes[0].hostPath.path", "absolute", |g| {
        g.properties.volumes[0] = Volume::host_path("data", "relative/dir");
    });
}

#[test]
fn probes() {
    let live = format!("{P0}.livenessProbe");
    let ready = format!("{P0}.readinessProbe");
    let set_live = |probe: Probe| {
        move |g: &mut ContainerGroup| g.properties.containers[0].properties.liveness_probe = Some(probe)
    };
    let set_ready = |probe: Probe| {
        move |g: &mut ContainerGroup| g.properties.containers[0].properties.readiness_probe = Some(probe)
    };

    fails_at(&live, "needs one of exec, httpGet or tcpSocket", set_live(Probe::default()));
    let mut both = Probe::http_get("/", 80);
    both.exec = Probe::exec(["true"]).exec;
    fails_at(&live, "found exec, httpGet", set_live(both));
    fails_at(&format!("{live}.exec.command"), "empty", set_live(Probe::exec(Vec::<String>::new())));
    fails_at(&format!("{live}.httpGet.path"), "start with '/'", set_live(Probe::http_get("healthz", 80)));
    fails_at(&format!("{live}.httpGet.port"), "1 to 65535", set_live(Probe::http_get("/", 0)));
    fails_at(&format!("{live}.tcpSocket.port"), "1 to 65535", set_live(Probe::tcp_socket(0)));
    fails_at(
        &format!("{live}.periodSeconds"),
        "at least 1",
        set_live(Probe::tcp_socket(80).period_seconds(0)),
    );
    fails_at(
        &format!("{live}.timeoutSeconds"),
        "at least 1",
        set_live(Probe::tcp_socket(80).timeout_seconds(0)),
    );
    fails_at(
        &format!("{live}.failureThreshold"),
        "at least 1",
        set_live(Probe::tcp_socket(80).failure_threshold(0)),
    );
    fails_at(
        &format!("{live}.initialDelaySeconds"),
        "at least 0",
        set_live(Probe::tcp_socket(80).initial_delay_seconds(-1)),
    );
    fails_at(
        &format!("{ready}.successThreshold"),
        "at least 1",
        set_ready(Probe::tcp_socket(80).success_threshold(0)),
    );
    fails_at(
        &format!("{live}.successThreshold"),
        "must be 1 for a liveness probe",
        set_live(Probe::tcp_socket(80).success_threshold(2)),
    );

    let mut group = base();
    set_ready(Probe::tcp_socket(80).success_threshold(2))(&mut group);
    group.validate().unwrap();
    let timing = Probe::exec(["true"]).timing();
    assert_eq!(
        (timing.period.as_secs(), timing.timeout.as_secs(), timing.initial_delay.as_secs()),
        (10, 1, 0)
    );
    assert_eq!((timing.success_threshold, timing.failure_threshold), (1, 3));
}
