//! Host tier: Microsoft's ACI ARM template samples load unchanged, validate, and round-trip;
//! ARM expressions are resolved or refused with the field's path.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use aci_core::spec::{
    ContainerGroup, Format, IpAddressType, LoadError, LoadOptions, OsType, Protocol, RestartPolicy,
    VolumeKind,
};

const SAMPLES: &[&str] =
    &["volume-emptydir-1.json", "volume-gitrepo-1.json", "volume-gitrepo-2.json", "volume-secret-2.json"];

fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/aci-samples").join(name)
}

fn load(name: &str) -> ContainerGroup {
    ContainerGroup::from_path(sample(name)).unwrap_or_else(|e| {
        panic!("{name}: {e} ({:?})", std::error::Error::source(&e).map(ToString::to_string))
    })
}

#[test]
fn every_sample_loads_unchanged_and_validates() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/aci-samples");
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    found.sort();
    assert_eq!(found, SAMPLES, "a sample was added or removed: list it here");

    for name in SAMPLES {
        let group = load(name);
        if let Err(errors) = group.validate() {
            panic!("{name}: {errors}");
        }
        assert_eq!(group.properties.os_type, OsType::Linux, "{name}");
        assert_eq!(group.properties.restart_policy, RestartPolicy::Always, "{name}");
        assert_eq!(group.location.as_deref(), Some(LoadOptions::LOCAL_LOCATION), "{name}");
        let ip = group.properties.ip_address.as_ref().unwrap();
        assert_eq!(ip.kind, IpAddressType::Public);
        assert_eq!(ip.ports.len(), 1);
        assert_eq!((ip.ports[0].port, ip.ports[0].protocol()), (80, Protocol::Tcp), "\"80\" and tcp");
        let app = &group.properties.containers[0];
        assert_eq!(app.name, "aci-tutorial-app", "[variables('container1name')]");
        assert_eq!(app.properties.resources.requests.memory_in_gb, 1.5, "memoryInGb");
        assert_eq!(app.properties.resources.requests.cpu, 1.0);
        assert_eq!(app.properties.resources.cpu_limit(), 1.0, "the limit defaults to the request");
    }
}

#[test]
fn samples_carry_their_details() {
    let empty = load("volume-emptydir-1.json");
    assert_eq!(empty.name, "volume-demo-emptydir");
    assert_eq!(empty.api_version.as_deref(), Some("2021-03-01"));
    let names: Vec<&str> = empty.properties.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["aci-tutorial-app", "aci-tutorial-sidecar"]);
    assert_eq!(
        empty.properties.containers[1].properties.image,
        "mcr.microsoft.com/azuredocs/aci-tutorial-sidecar"
    );
    assert!(matches!(empty.properties.volumes[0].kind(), Some(VolumeKind::EmptyDir(_))));
    assert_eq!(empty.total_cpu(), 2.0);
    assert_eq!(empty.total_memory_in_gb(), 3.0);

    let git = load("volume-gitrepo-2.json");
    assert_eq!(git.api_version.as_deref(), Some("2018-02-01-preview"));
    let repo2 = git.properties.volumes[1].git_repo.as_ref().unwrap();
    assert_eq!(repo2.directory.as_deref(), Some("my-custom-clone-directory"));
    assert_eq!(repo2.revision.as_deref(), Some("d5ccfcedc0d81f7ca5e3dbe6e5a7705b579101f1"));
    assert_eq!(git.properties.containers[0].properties.image, "microsoft/aci-helloworld:latest");

    let secret = load("volume-secret-2.json");
    let files = secret.properties.volumes[0].secret.as_ref().unwrap();
    assert_eq!(files["mysecret1"].expose(), Some("TXkgZmlyc3Qgc2VjcmV0IEZPTwo="));
    assert_eq!(files["mysecret2"].expose(), Some("TXkgc2Vjb25kIHNlY3JldCBCQVIK"));
}

#[test]
fn samples_round_trip_through_json_and_yaml() {
    for name in SAMPLES {
        let group = load(name);
        let json = group.to_json_string().unwrap();
        let yaml = group.to_yaml_string().unwrap();
        let from_json = ContainerGroup::from_json_str(&json).unwrap();
        let from_yaml = ContainerGroup::from_yaml_str(&yaml).unwrap();
        // Secrets come back withheld; everything else is equal, and so is the text.
        assert_eq!(from_json.to_json_string().unwrap(), json, "{name}");
        assert_eq!(from_yaml.to_yaml_string().unwrap(), yaml, "{name}");
        if name.contains("secret") {
            assert!(from_json.properties.volumes[0]
                .secret
                .as_ref()
                .unwrap()
                .values()
                .all(|s| s.is_withheld()));
        } else {
            assert_eq!(from_json, group, "{name}");
            assert_eq!(from_yaml, group, "{name}");
        }
    }
}

#[test]
fn resource_group_location_is_configurable() {
    let text = std::fs::read_to_string(sample("volume-gitrepo-1.json")).unwrap();
    let options = LoadOptions { resource_group_location: "westeurope".into(), ..LoadOptions::default() };
    let group = ContainerGroup::from_str_as(&text, Format::Json, &options).unwrap();
    assert_eq!(group.location.as_deref(), Some("westeurope"));
}

const TEMPLATE: &str = r#"{
  "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
  "contentVersion": "1.0.0.0",
  "parameters": {
    "location": {"type": "string", "defaultValue": "[resourceGroup().location]"},
    "image": {"type": "string", "defaultValue": "[variables('defaultImage')]"},
    "cpu": {"type": "int"}
  },
  "variables": {"defaultImage": "docker.io/library/nginx:1.27", "name": "web"},
  "resources": [
    {"type": "Microsoft.Storage/storageAccounts", "name": "unrelated", "apiVersion": "2021-01-01"},
    {
      "type": "Microsoft.ContainerInstance/containerGroups",
      "apiVersion": "2021-03-01",
      "name": "[variables('name')]",
      "location": "[parameters('location')]",
      "dependsOn": ["[resourceId('Microsoft.Storage/storageAccounts', 'unrelated')]"],
      "properties": {
        "containers": [{"name": "app", "properties": {
          "image": "[parameters('image')]",
          "command": ["[[literal]"],
          "resources": {"requests": {"cpu": "CPU", "memoryInGB": 1}}
        }}],
        "osType": "Linux"
      }
    }
  ]
}"#;

#[test]
fn template_parameters_use_given_values_then_defaults() {
    let text = TEMPLATE.replace("\"CPU\"", "\"[parameters('cpu')]\"");
    let options = LoadOptions::default().parameter("cpu", 2);
    let group = ContainerGroup::from_str_as(&text, Format::Json, &options).unwrap();
    assert_eq!(group.name, "web");
    assert_eq!(group.location.as_deref(), Some("local"), "a default that is itself an expression");
    let app = &group.properties.containers[0].properties;
    assert_eq!(app.image, "docker.io/library/nginx:1.27");
    assert_eq!(app.command, ["[literal]"], "`[[` escapes a literal bracket");
    assert_eq!(app.resources.requests.cpu, 2.0);
    group.validate().unwrap();

    let options = LoadOptions::default().parameter("cpu", 1).parameter("image", "example.org/app:2");
    let group = ContainerGroup::from_str_as(&text, Format::Json, &options).unwrap();
    assert_eq!(group.properties.containers[0].properties.image, "example.org/app:2");
}

#[test]
fn template_expression_errors_name_the_field() {
    let cases = [
        ("[parameters('cpu')]", "parameter 'cpu' has no defaultValue"),
        ("[parameters('nope')]", "no parameter 'nope'"),
        ("[variables('nope')]", "no variable 'nope'"),
        ("[concat('1', '')]", "aci evaluates only"),
        ("[add(1, 1)]", "aci evaluates only"),
    ];
    for (expression, reason) in cases {
        let text = TEMPLATE.replace("\"CPU\"", &format!("\"{expression}\""));
        let err = ContainerGroup::from_json_str(&text).unwrap_err();
        let LoadError::Expression { path, expression: got, .. } = &err else { panic!("{expression}: {err}") };
        assert_eq!(path, "resources[1].properties.containers[0].properties.resources.requests.cpu");
        assert_eq!(got, expression);
        assert!(err.to_string().contains(reason), "{err}");
    }
}

#[test]
fn template_errors_inside_the_resource_carry_its_index() {
    let text = TEMPLATE.replace("\"CPU\"", "1").replace("\"osType\"", "\"osTypo\"");
    let err = ContainerGroup::from_json_str(&text).unwrap_err();
    let LoadError::Parse { path, message } = &err else { panic!("{err}") };
    assert_eq!(path, "resources[1].properties.osTypo");
    assert!(message.contains("unknown field `osTypo`"), "{message}");
}

#[test]
fn templates_need_exactly_one_container_group() {
    let none = r#"{"$schema": "x", "resources": []}"#;
    assert!(matches!(ContainerGroup::from_json_str(none), Err(LoadError::NoContainerGroup)));

    let one = r#"{"type": "Microsoft.ContainerInstance/containerGroups", "name": "a", "properties": {"containers": []}}"#;
    let two = format!(r#"{{"resources": [{one}, {one}]}}"#);
    let err = ContainerGroup::from_json_str(&two).unwrap_err();
    assert!(
        matches!(&err, LoadError::SeveralContainerGroups { paths } if paths == &["resources[0]", "resources[1]"]),
        "{err}"
    );
}
