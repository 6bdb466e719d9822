//! Volumes: exactly one kind each, and each kind's own rules.

use std::path::{Component, Path};

use super::Report;
use crate::spec::group::ContainerGroup;
use crate::spec::volume::VolumeKind;

pub(super) fn check(group: &ContainerGroup, report: &mut Report) {
    for (i, volume) in group.properties.volumes.iter().enumerate() {
        let path = format!("properties.volumes[{i}]");
        let kinds = volume.kinds();
        if kinds.len() != 1 {
            let found: Vec<&str> = kinds.iter().map(|k| kind_name(*k)).collect();
            let found = if found.is_empty() { "none".to_owned() } else { found.join(", ") };
            report.add(
                &path,
                format!("a volume needs exactly one of azureFile, emptyDir, secret, gitRepo or hostPath; found {found}"),
            );
        }
        for kind in kinds {
            check_kind(kind, &path, report);
        }
    }
}

fn kind_name(kind: VolumeKind<'_>) -> &'static str {
    match kind {
        VolumeKind::AzureFile(_) => "azureFile",
        VolumeKind::EmptyDir(_) => "emptyDir",
        VolumeKind::Secret(_) => "secret",
        VolumeKind::GitRepo(_) => "gitRepo",
        VolumeKind::HostPath(_) => "hostPath",
    }
}

fn check_kind(kind: VolumeKind<'_>, path: &str, report: &mut Report) {
    match kind {
        VolumeKind::EmptyDir(_) => {}
        VolumeKind::AzureFile(share) => {
            if share.share_name.is_empty() {
                report.add(format!("{path}.azureFile.shareName"), "the share name is required");
            }
            if share.storage_account_name.is_empty() {
                report.add(
                    format!("{path}.azureFile.storageAccountName"),
                    "the storage account name is required",
                );
            }
        }
        VolumeKind::Secret(files) => {
            for (file, content) in files {
                let at = format!("{path}.secret.{file}");
                let bad_name = file.is_empty() || file == "." || file == ".." || file.contains('/');
                if bad_name {
                    report.add(&at, format!("'{file}' is not a valid file name"));
                }
                if content.expose().is_some_and(|c| !is_base64(c)) {
                    report.add(&at, "the content must be base64");
                }
            }
        }
        VolumeKind::GitRepo(git) => {
            if git.repository.trim().is_empty() {
                report.add(format!("{path}.gitRepo.repository"), "the repository URL is required");
            }
            if let Some(dir) = &git.directory {
                let at = format!("{path}.gitRepo.directory");
                if dir.starts_with('/') {
                    report.add(&at, format!("'{dir}' must be relative to the volume"));
                }
                if Path::new(dir).components().any(|c| c == Component::ParentDir) {
                    report.add(&at, format!("'{dir}' must not contain '..'"));
                }
            }
        }
        VolumeKind::HostPath(host) => {
            if !host.path.starts_with('/') {
                report.add(
                    format!("{path}.hostPath.path"),
                    format!("'{}' must be an absolute host path", host.path),
                );
            }
        }
    }
}

/// Whether `text` is standard base64 (padding optional, whitespace ignored).
fn is_base64(text: &str) -> bool {
    let body: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let data = body.strip_suffix(b"==").or_else(|| body.strip_suffix(b"=")).unwrap_or(&body);
    let alphabet = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/';
    let padded_ok = body.len() == data.len() || body.len() % 4 == 0;
    data.iter().all(alphabet) && data.len() % 4 != 1 && padded_ok
}

#[cfg(test)]
mod tests {
    use super::is_base64;

    #[test]
    fn recognises_base64() {
        for good in ["TXkgZmlyc3Qgc2VjcmV0IEZPTwo=", "YQ==", "YWI", "", "YWJj\nZGVm"] {
            assert!(is_base64(good), "{good}");
        }
        for bad in ["not base64!", "Y", "YQ=", "Y=Q="] {
            assert!(!is_base64(bad), "{bad}");
        }
    }
}
