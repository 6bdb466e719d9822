//! Host tier: loading errors name the field's path (and the file), and input is as lenient
//! as ACI's (enum case, numbers as strings) but no more.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::error::Error as _;
use std::path::PathBuf;

use aci_core::spec::{ContainerGroup, IpAddressType, LoadError, Protocol, RestartPolicy};

const YAML: &str = "
name: demo
properties:
  containers:
  - name: app
    properties:
      image: nginx
      resources:
        requests: {cpu: 1, memoryInGB: 1.5}
";

fn parse_error(result: Result<ContainerGroup, LoadError>) -> (String, String) {
    match result {
        Err(LoadError::Parse { path, message }) => (path, message),
        Err(other) => panic!("expected a parse error, got {other}"),
        Ok(group) => panic!("expected an error, got {group:?}"),
    }
}

#[test]
fn unknown_field_names_its_path_in_yaml() {
    let text = YAML.replace("image: nginx", "imagee: nginx");
    let (path, message) = parse_error(ContainerGroup::from_yaml_str(&text));
    assert_eq!(path, "properties.containers[0].properties.imagee");
    assert!(message.contains("unknown field `imagee`"), "{message}");
    let err = ContainerGroup::from_yaml_str(&text).unwrap_err();
    assert!(
        err.to_string().starts_with("properties.containers[0].properties.imagee: unknown field"),
        "{err}"
    );
}

#[test]
fn unknown_field_names_its_path_in_json() {
    let group = ContainerGroup::from_yaml_str(YAML).unwrap();
    let json = group.to_json_string().unwrap().replace("\"cpu\"", "\"cpus\"");
    let (path, message) = parse_error(ContainerGroup::from_json_str(&json));
    assert_eq!(path, "properties.containers[0].properties.resources.requests.cpus");
    assert!(message.contains("line"), "JSON errors keep line and column: {message}");
}

#[test]
fn unknown_fields_are_rejected_at_every_level() {
    let cases = [
        ("name: demo", "name: demo\nextra: 1", "extra"),
        ("  containers:", "  restartPolicyy: Never\n  containers:", "properties.restartPolicyy"),
        ("  - name: app", "  - name: app\n    label: x", "properties.containers[0].label"),
        (
            "{cpu: 1, memoryInGB: 1.5}",
            "{cpu: 1, memoryInGB: 1.5, disk: 3}",
            "properties.containers[0].properties.resources.requests.disk",
        ),
    ];
    for (from, to, want) in cases {
        let (path, _) = parse_error(ContainerGroup::from_yaml_str(&YAML.replace(from, to)));
        assert_eq!(path, want);
    }
}

#[test]
fn wrong_types_and_values_name_their_path() {
    let with_ports = format!("{YAML}  ipAddress:\n    type: Public\n    ports:\n    - port: PORT\n");
    let (path, message) = parse_error(ContainerGroup::from_yaml_str(&with_ports.replace("PORT", "eighty")));
    assert_eq!(path, "properties.ipAddress.ports[0].port");
    assert!(message.contains("expected an integer"), "{message}");
    let (path, message) = parse_error(ContainerGroup::from_yaml_str(&with_ports.replace("PORT", "70000")));
    assert_eq!(path, "properties.ipAddress.ports[0].port");
    assert!(message.contains("out of range"), "{message}");

    let text = YAML.replace("  containers:", "  restartPolicy: Sometimes\n  containers:");
    let (path, message) = parse_error(ContainerGroup::from_yaml_str(&text));
    assert_eq!(path, "properties.restartPolicy");
    assert!(message.contains("expected one of Always, OnFailure, Never"), "{message}");

    let (path, message) =
        parse_error(ContainerGroup::from_yaml_str(&YAML.replace("      image: nginx\n", "")));
    assert_eq!(path, "properties.containers[0].properties");
    assert!(message.contains("missing field `image`"), "{message}");
}

#[test]
fn enums_and_numbers_are_read_as_leniently_as_aci() {
    let text = YAML.replace("  containers:", "  restartPolicy: onfailure\n  osType: linux\n  containers:")
        + "  ipAddress:\n    type: public\n    ports:\n    - protocol: udp\n      port: '53'\n";
    let text = text.replace("{cpu: 1, memoryInGB: 1.5}", "{cpu: '0.5', memoryInGb: \"2\"}");
    let group = ContainerGroup::from_yaml_str(&text).unwrap();
    assert_eq!(group.properties.restart_policy, RestartPolicy::OnFailure);
    let ip = group.properties.ip_address.as_ref().unwrap();
    assert_eq!(
        (ip.kind, ip.ports[0].protocol(), ip.ports[0].port),
        (IpAddressType::Public, Protocol::Udp, 53)
    );
    let requests = &group.properties.containers[0].properties.resources.requests;
    assert_eq!((requests.cpu, requests.memory_in_gb), (0.5, 2.0));
    // Written back in ACI's casing, numbers as numbers.
    let yaml = group.to_yaml_string().unwrap();
    assert!(
        yaml.contains("restartPolicy: OnFailure")
            && yaml.contains("protocol: UDP")
            && yaml.contains("port: 53"),
        "{yaml}"
    );
}

#[test]
fn syntax_errors_are_reported() {
    let (path, message) = parse_error(ContainerGroup::from_json_str("{\"name\": "));
    assert_eq!(path, "name");
    assert!(message.contains("EOF"), "{message}");
    let (_, message) = parse_error(ContainerGroup::from_json_str(
        "{\"name\": \"a\", \"properties\": {\"containers\": []}} x",
    ));
    assert!(message.contains("trailing"), "{message}");
    assert!(ContainerGroup::from_yaml_str("name: [unclosed").is_err());
}

#[test]
fn file_errors_name_the_file() {
    let dir = std::env::temp_dir().join(format!("aci-spec-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let bad = dir.join("group.yml");
    std::fs::write(&bad, YAML.replace("image:", "imagee:")).unwrap();
    let err = ContainerGroup::from_path(&bad).unwrap_err();
    assert!(err.to_string().contains("group.yml"), "{err}");
    let source = err.source().unwrap().to_string();
    assert!(source.starts_with("properties.containers[0].properties.imagee"), "{source}");

    let missing = dir.join("missing.json");
    let err = ContainerGroup::from_path(&missing).unwrap_err();
    assert!(matches!(err, LoadError::Read { .. }) && err.to_string().contains("missing.json"), "{err}");

    let text = dir.join("group.txt");
    std::fs::write(&text, YAML).unwrap();
    let err = ContainerGroup::from_path(&text).unwrap_err();
    assert!(matches!(err, LoadError::UnknownFormat { .. }) && err.to_string().contains("group.txt"), "{err}");

    let good = dir.join("GROUP.YAML");
    std::fs::write(&good, YAML).unwrap();
    assert_eq!(ContainerGroup::from_path(&good).unwrap().name, "demo");

    std::fs::remove_dir_all(PathBuf::from(&dir)).unwrap();
}
