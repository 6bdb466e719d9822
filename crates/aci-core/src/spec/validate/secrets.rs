//! Secrets read back as the redaction placeholder: their real value is missing.

use super::{workloads, Report};
use crate::spec::group::ContainerGroup;
use crate::spec::secret::Secret;

pub(super) fn check(group: &ContainerGroup, report: &mut Report) {
    let props = &group.properties;
    let mut withheld = |path: String, secret: &Secret| {
        if secret.is_withheld() {
            report.add(
                path,
                format!("the secret reads '{}', a placeholder; give the real value", Secret::REDACTED),
            );
        }
    };

    for workload in workloads(group) {
        for (i, var) in workload.env.iter().enumerate() {
            if let Some(secret) = &var.secure_value {
                withheld(
                    format!("{}.properties.environmentVariables[{i}].secureValue", workload.path),
                    secret,
                );
            }
        }
    }
    for (i, volume) in props.volumes.iter().enumerate() {
        let path = format!("properties.volumes[{i}]");
        if let Some(key) = volume.azure_file.as_ref().and_then(|a| a.storage_account_key.as_ref()) {
            withheld(format!("{path}.azureFile.storageAccountKey"), key);
        }
        for (file, content) in volume.secret.iter().flatten() {
            withheld(format!("{path}.secret.{file}"), content);
        }
    }
    for (i, credential) in props.image_registry_credentials.iter().enumerate() {
        if let Some(password) = &credential.password {
            withheld(format!("properties.imageRegistryCredentials[{i}].password"), password);
        }
    }
    if let Some(log) = props.diagnostics.as_ref().and_then(|d| d.log_analytics.as_ref()) {
        withheld("properties.diagnostics.logAnalytics.workspaceKey".to_owned(), &log.workspace_key);
    }
}
