//! Host tier: ACI YAML files (the YAML reference's shape) load, validate and round-trip; the
//! builder's output loads back equal.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use aci_core::spec::{
    Container, ContainerGroup, DnsNameLabelScope, InitContainer, Priority, Probe, ProbeTiming, Protocol,
    RestartPolicy, Scheme, Sku, Volume, VolumeKind,
};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/yaml").join(name)
}

fn load(name: &str) -> ContainerGroup {
    let group = ContainerGroup::from_path(fixture(name)).unwrap_or_else(|e| {
        panic!("{name}: {e}: {}", std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default())
    });
    if let Err(errors) = group.validate() {
        panic!("{name}: {errors}");
    }
    group
}

#[test]
fn tutorial_multi_container_yaml_loads() {
    let group = load("multi-container.yaml");
    assert_eq!(group.api_version.as_deref(), Some("2019-12-01"), "an unquoted date stays a string");
    assert_eq!(group.location.as_deref(), Some("eastus"));
    assert_eq!(group.tags["exampleTag"], "tutorial");
    assert_eq!(group.properties.containers.len(), 2);
    let ports: Vec<u16> =
        group.properties.ip_address.as_ref().unwrap().ports.iter().map(|p| p.port).collect();
    assert_eq!(ports, [80, 8080]);
}

#[test]
fn reference_shaped_yaml_loads_every_field() {
    let group = load("reference-full.yaml");
    let props = &group.properties;
    assert_eq!(props.restart_policy, RestartPolicy::OnFailure);
    assert_eq!(props.sku, Some(Sku::Standard));
    assert_eq!(props.priority, Some(Priority::Regular));
    let ip = props.ip_address.as_ref().unwrap();
    assert_eq!(ip.dns_name_label.as_deref(), Some("full-group-demo"));
    assert_eq!(ip.auto_generated_domain_name_label_scope, Some(DnsNameLabelScope::TenantReuse));
    assert_eq!(props.dns_config.as_ref().unwrap().name_servers, ["10.0.0.10", "10.0.0.11"]);
    assert_eq!(
        props.image_registry_credentials[0].password.as_ref().unwrap().expose(),
        Some("registry-password-value")
    );
    assert_eq!(group.identity.as_ref().unwrap().kind, "UserAssigned");

    let init = &props.init_containers[0];
    assert_eq!(init.name, "fetch-config");
    assert_eq!(init.properties.environment_variables[1].effective_value(), Some("init-token-value"));

    let web = &props.containers[0].properties;
    assert_eq!(web.command, ["/bin/web", "--listen=:80"]);
    assert_eq!(web.ports[1].protocol, Some(Protocol::Udp), "udp in lower case");
    assert_eq!(web.resources.requests.memory_in_gb, 2.0, "memoryInGB");
    assert_eq!(web.resources.cpu_limit(), 2.0);
    assert_eq!(web.resources.memory_limit_in_gb(), 2.5);
    assert_eq!(web.volume_mounts[0].read_only, Some(true));
    let live = web.liveness_probe.as_ref().unwrap();
    let get = live.http_get.as_ref().unwrap();
    assert_eq!((get.path.as_deref(), get.port, get.scheme), (Some("/healthz"), 80, Some(Scheme::Http)));
    assert_eq!(get.http_headers[0].value, "liveness");
    let expected = ProbeTiming {
        initial_delay: Duration::from_secs(10),
        period: Duration::from_secs(5),
        timeout: Duration::from_secs(2),
        success_threshold: 1,
        failure_threshold: 3,
    };
    assert_eq!(live.timing(), expected);
    let ready = web.readiness_probe.as_ref().unwrap();
    assert_eq!(ready.exec.as_ref().unwrap().command, ["cat", "/etc/web/ready"]);
    let timing = ready.timing();
    assert_eq!((timing.period, timing.success_threshold), (Duration::from_secs(3), 2));
    assert_eq!(timing.timeout, Duration::from_secs(1), "Kubernetes default");
    assert_eq!(timing.failure_threshold, 3, "Kubernetes default");
    let security = web.security_context.as_ref().unwrap();
    assert_eq!(security.capabilities.as_ref().unwrap().drop, ["ALL"]);
    assert_eq!(security.run_as_user, Some(1000));

    let kinds: Vec<&str> = props
        .volumes
        .iter()
        .map(|v| match v.kind().unwrap() {
            VolumeKind::EmptyDir(_) => "emptyDir",
            VolumeKind::AzureFile(_) => "azureFile",
            VolumeKind::Secret(_) => "secret",
            VolumeKind::GitRepo(_) => "gitRepo",
            VolumeKind::HostPath(_) => "hostPath",
        })
        .collect();
    assert_eq!(kinds, ["emptyDir", "azureFile", "secret", "gitRepo"]);
    let share = props.volumes[1].azure_file.as_ref().unwrap();
    assert_eq!(share.storage_account_key.as_ref().unwrap().expose(), Some("storage-key-value"));
    let log = props.diagnostics.as_ref().unwrap().log_analytics.as_ref().unwrap();
    assert_eq!(log.workspace_key.expose(), Some("workspace-key-value"));
}

#[test]
fn yaml_fixtures_round_trip() {
    for name in ["multi-container.yaml", "reference-full.yaml"] {
        let group = load(name);
        let yaml = group.to_yaml_string().unwrap();
        let again = ContainerGroup::from_yaml_str(&yaml).unwrap();
        assert_eq!(again.to_yaml_string().unwrap(), yaml, "{name}");
        let json = group.to_json_string().unwrap();
        assert_eq!(ContainerGroup::from_json_str(&json).unwrap().to_json_string().unwrap(), json, "{name}");
    }
    // Without secrets the groups themselves are equal.
    let group = load("multi-container.yaml");
    assert_eq!(ContainerGroup::from_yaml_str(&group.to_yaml_string().unwrap()).unwrap(), group);
}

#[test]
fn the_same_group_loads_from_yaml_and_json() {
    let yaml = load("multi-container.yaml");
    let json = ContainerGroup::from_json_str(&serde_json::to_string(&yaml).unwrap()).unwrap();
    assert_eq!(json, yaml);
}

#[test]
fn builder_output_loads_back_equal() {
    let group = ContainerGroup::builder("web")
        .location("local")
        .tag("team", "platform")
        .init_container(InitContainer::new("init", "docker.io/library/busybox:1.36").command(["true"]))
        .container(
            Container::new("app", "docker.io/library/nginx:1.27")
                .cpu(1.0)
                .memory_gb(1.5)
                .cpu_limit(1.5)
                .port(80)
                .udp_port(5353)
                .env("A", "1")
                .volume_mount("cache", "/cache")
                .read_only_volume_mount("repo", "/repo")
                .liveness_probe(Probe::tcp_socket(80).initial_delay_seconds(2).failure_threshold(5))
                .readiness_probe(Probe::http_get("/ready", 80).timeout_seconds(3).success_threshold(2)),
        )
        .container(Container::new("sidecar", "docker.io/library/busybox:1.36").cpu(0.5).memory_gb(0.25))
        .volume(Volume::empty_dir("cache"))
        .volume(Volume::git_repo("repo", "https://github.com/Azure-Samples/aci-helloworld"))
        .public_port(80)
        .dns_name_label("web-demo")
        .restart_policy(RestartPolicy::Never)
        .build()
        .unwrap();
    let yaml = group.to_yaml_string().unwrap();
    assert_eq!(ContainerGroup::from_yaml_str(&yaml).unwrap(), group);
    assert_eq!(ContainerGroup::from_json_str(&group.to_json_string().unwrap()).unwrap(), group);
    for needle in ["restartPolicy: Never", "memoryInGB: 1.5", "tcpSocket:", "protocol: UDP", "type: Public"] {
        assert!(yaml.contains(needle), "{needle} in\n{yaml}");
    }
}
