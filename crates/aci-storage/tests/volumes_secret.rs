//! secret volumes: base64 decoding, file-name checks, redaction, nothing on host disk.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

use aci_storage::volumes::{
    GuestMountSource, SecretValue, Volume, VolumeError, VolumeRegistry, VolumeSource, SECRET_FILE_MODE,
};

const PLAIN: &str = "correct-horse-battery";
// base64 of PLAIN.
const ENCODED: &str = "Y29ycmVjdC1ob3JzZS1iYXR0ZXJ5";

fn secret_volume(files: &[(&str, &str)]) -> Volume {
    let files: BTreeMap<String, SecretValue> =
        files.iter().map(|(k, v)| ((*k).to_owned(), SecretValue::from(*v))).collect();
    Volume::new("creds", VolumeSource::Secret(files))
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flat_map(|e| {
            let path = e.unwrap().path();
            if path.is_dir() {
                files_under(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

#[test]
fn decodes_files_into_a_read_only_memory_mount() {
    let state = tempfile::tempdir().unwrap();
    let group = state.path().join("group");
    // Line-wrapped base64 (as `base64` prints it) is accepted.
    let wrapped = "aGVs\nbG8=\n";
    let volume = secret_volume(&[("token", ENCODED), ("greeting", wrapped), ("empty", "")]);
    let prepared = VolumeRegistry::new().prepare(&group, &volume).unwrap();
    assert!(prepared.mount.read_only);
    assert!(prepared.host_share().is_none());
    let GuestMountSource::SecretFiles { files } = &prepared.mount.source else {
        panic!("unexpected {:?}", prepared.mount.source);
    };
    let by_name: BTreeMap<&str, &[u8]> =
        files.iter().map(|f| (f.name.as_str(), f.contents.expose())).collect();
    assert_eq!(by_name["token"], PLAIN.as_bytes());
    assert_eq!(by_name["greeting"], b"hello");
    assert_eq!(by_name["empty"], b"");
    assert!(files.iter().all(|f| f.mode == SECRET_FILE_MODE));
    // Nothing reached the host's disk.
    assert!(files_under(state.path()).is_empty());
}

#[test]
fn invalid_base64_names_the_volume_and_file_but_not_the_value() {
    let volume = secret_volume(&[("ok", ENCODED), ("bad", "not base64!!")]);
    let err = VolumeRegistry::new().prepare(Path::new("/nonexistent"), &volume).unwrap_err();
    assert!(
        matches!(&err, VolumeError::DecodeSecret { volume, file } if volume == "creds" && file == "bad"),
        "{err:?}"
    );
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("creds") && shown.contains("bad"), "{shown}");
    assert!(!shown.contains("not base64!!"), "{shown}");
}

#[test]
fn file_names_must_be_one_path_component() {
    for name in ["", ".", "..", "a/b", "../escape", "/etc/passwd", "nul\0"] {
        let volume = secret_volume(&[(name, ENCODED)]);
        let err = VolumeRegistry::new().prepare(Path::new("/nonexistent"), &volume).unwrap_err();
        assert!(
            matches!(&err, VolumeError::InvalidSecretFileName { volume, file }
                if volume == "creds" && file == name),
            "{name:?}: {err:?}"
        );
        assert!(err.to_string().contains("creds"), "{err}");
    }
}

#[test]
fn debug_output_never_shows_contents() {
    let volume = secret_volume(&[("token", ENCODED)]);
    let prepared = VolumeRegistry::new().prepare(Path::new("/nonexistent"), &volume).unwrap();
    for shown in [
        format!("{volume:?}"),
        format!("{volume:#?}"),
        format!("{prepared:?}"),
        format!("{prepared:#?}"),
        format!("{:?}", prepared.mount),
    ] {
        assert!(!shown.contains(PLAIN), "{shown}");
        assert!(!shown.contains(ENCODED), "{shown}");
        assert!(shown.contains(SecretValue::REDACTED), "{shown}");
    }
    // The name is not secret and stays visible.
    assert!(format!("{prepared:?}").contains("token"));
}
