//! Host tier: secrets are readable by the runtime but never shown back, in Debug, Display,
//! JSON or YAML; a secret read back as the placeholder is flagged by validation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use aci_core::spec::{Container, ContainerGroup, ImageRegistryCredential, Secret, Volume};

const SECRETS: &[&str] = &[
    "init-token-value",
    "db-password-value",
    "registry-password-value",
    "storage-key-value",
    "workspace-key-value",
    "Y2VydGlmaWNhdGU=",
    "cHJpdmF0ZSBrZXk=",
];

fn full() -> ContainerGroup {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/yaml/reference-full.yaml");
    ContainerGroup::from_path(path).unwrap()
}

#[test]
fn secrets_never_show_in_debug_or_serialization() {
    let group = full();
    let shown = [
        format!("{group:?}"),
        format!("{group:#?}"),
        group.to_json_string().unwrap(),
        group.to_yaml_string().unwrap(),
        serde_json::to_string(&group).unwrap(),
    ];
    for text in &shown {
        for secret in SECRETS {
            assert!(!text.contains(secret), "{secret} leaked");
        }
        assert!(text.contains(Secret::REDACTED));
    }
    // Plain values stay visible.
    assert!(shown[0].contains("LOG_LEVEL") && shown[2].contains("\"info\""));
}

#[test]
fn the_runtime_can_read_every_secret() {
    let group = full();
    let props = &group.properties;
    let web = &props.containers[0].properties;
    let mut read = vec![
        props.init_containers[0].properties.environment_variables[1].effective_value(),
        web.environment_variables[1].effective_value(),
        props.image_registry_credentials[0].password.as_ref().and_then(Secret::expose),
        props.volumes[1]
            .azure_file
            .as_ref()
            .and_then(|a| a.storage_account_key.as_ref())
            .and_then(Secret::expose),
        props
            .diagnostics
            .as_ref()
            .and_then(|d| d.log_analytics.as_ref())
            .and_then(|l| l.workspace_key.expose()),
    ];
    read.extend(props.volumes[2].secret.as_ref().unwrap().values().map(Secret::expose));
    let read: Vec<&str> = read.into_iter().map(Option::unwrap).collect();
    assert_eq!(read, SECRETS);
}

#[test]
fn secrets_read_back_are_withheld_and_rejected() {
    let group = full();
    group.validate().unwrap();
    let again = ContainerGroup::from_yaml_str(&group.to_yaml_string().unwrap()).unwrap();
    let web = &again.properties.containers[0].properties;
    assert!(web.environment_variables[1].secure_value.as_ref().unwrap().is_withheld());
    assert_eq!(web.environment_variables[1].effective_value(), None);
    assert_eq!(web.environment_variables[0].effective_value(), Some("info"));

    let errors = again.validate().unwrap_err();
    for path in [
        "properties.containers[0].properties.environmentVariables[1].secureValue",
        "properties.initContainers[0].properties.environmentVariables[1].secureValue",
        "properties.volumes[1].azureFile.storageAccountKey",
        "properties.volumes[2].secret.tls.crt",
        "properties.volumes[2].secret.tls.key",
        "properties.imageRegistryCredentials[0].password",
        "properties.diagnostics.logAnalytics.workspaceKey",
    ] {
        assert!(errors.has_path(path), "{path} missing from:\n{errors}");
    }
    assert_eq!(errors.violations().len(), 7, "{errors}");
}

#[test]
fn builder_secrets_are_redacted_too() {
    let group = ContainerGroup::builder("s")
        .container(
            Container::new("app", "nginx").secure_env("TOKEN", "builder-secret").volume_mount("s", "/s"),
        )
        .volume(Volume::secret("s", [("key", "YnVpbGRlci1maWxl")]))
        .image_registry_credential(ImageRegistryCredential::new("r.example", "u", "builder-password"))
        .build()
        .unwrap();
    let text = format!("{group:?}{}", group.to_json_string().unwrap());
    for secret in ["builder-secret", "YnVpbGRlci1maWxl", "builder-password"] {
        assert!(!text.contains(secret), "{secret} leaked");
    }
    let secret = Secret::new("x");
    assert_eq!(format!("{secret} {secret:?}"), "<redacted> Secret(<redacted>)");
}
