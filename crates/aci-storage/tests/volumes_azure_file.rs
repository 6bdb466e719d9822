//! azureFile volumes: the CIFS description, the server resolver, and the key kept apart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use aci_storage::volumes::{
    AzureFileDriver, AzureFileSource, GuestMountSource, Volume, VolumeError, VolumeRegistry, VolumeSource,
};

const KEY: &str = "c3RvcmFnZS1rZXktZm9yLXRlc3Rz/+Q==";

fn share(account: &str, share: &str, key: &str, read_only: bool) -> Volume {
    Volume::new(
        "data",
        VolumeSource::AzureFile(AzureFileSource {
            share_name: share.to_owned(),
            storage_account_name: account.to_owned(),
            storage_account_key: key.into(),
            read_only,
        }),
    )
}

fn local_registry() -> VolumeRegistry {
    VolumeRegistry::new().with(AzureFileDriver::new(|account: &str| {
        assert_eq!(account, "acct");
        "127.0.0.1".to_owned()
    }))
}

#[test]
fn custom_resolver_gives_a_cifs_mount_with_the_key_apart() {
    let volume = share("acct", "share1", KEY, true);
    let prepared = local_registry().prepare(Path::new("/nonexistent"), &volume).unwrap();
    let GuestMountSource::Cifs { unc, options, password } = &prepared.mount.source else {
        panic!("unexpected {:?}", prepared.mount.source);
    };
    assert_eq!(unc, "//127.0.0.1/share1");
    let opts: Vec<&str> = options.split(',').collect();
    assert!(opts.contains(&"vers=3.1.1"), "{options}");
    assert!(opts.contains(&"username=acct"), "{options}");
    assert!(!options.contains("password"), "{options}");
    assert_eq!(password.expose(), KEY.as_bytes());
    assert!(prepared.mount.read_only);
    assert!(prepared.host_share().is_none());

    let rw =
        local_registry().prepare(Path::new("/nonexistent"), &share("acct", "share1", KEY, false)).unwrap();
    assert!(!rw.mount.read_only);
}

#[test]
fn default_resolver_is_the_azure_public_cloud() {
    let prepared =
        VolumeRegistry::new().prepare(Path::new("/nonexistent"), &share("acct", "s", KEY, false)).unwrap();
    let GuestMountSource::Cifs { unc, .. } = &prepared.mount.source else {
        panic!("unexpected {:?}", prepared.mount.source);
    };
    assert_eq!(unc, "//acct.file.core.windows.net/s");
}

#[test]
fn the_key_is_absent_from_every_string_form() {
    let volume = share("acct", "share1", KEY, false);
    let registry = local_registry();
    let prepared = registry.prepare(Path::new("/nonexistent"), &volume).unwrap();
    let GuestMountSource::Cifs { unc, options, .. } = &prepared.mount.source else {
        panic!("unexpected {:?}", prepared.mount.source);
    };
    let bad = share("acct", "a/b", KEY, false);
    let err = registry.prepare(Path::new("/nonexistent"), &bad).unwrap_err();
    for shown in [
        format!("{volume:?}"),
        format!("{volume:#?}"),
        format!("{prepared:?}"),
        format!("{prepared:#?}"),
        format!("{registry:?}"),
        unc.clone(),
        options.clone(),
        err.to_string(),
        format!("{err:?}"),
    ] {
        assert!(!shown.contains(KEY), "{shown}");
        assert!(!shown.contains("c3RvcmFnZS1rZXk"), "{shown}");
    }
}

#[test]
fn fields_that_would_break_the_mount_are_refused() {
    let registry = local_registry();
    for (account, share_name, field) in [
        ("acct", "", "shareName"),
        ("acct", "a/b", "shareName"),
        ("acct", "a\\b", "shareName"),
        ("acct,password=x", "s", "storageAccountName"),
        ("", "s", "storageAccountName"),
        ("ac ct", "s", "storageAccountName"),
    ] {
        let err = registry.prepare(Path::new("/x"), &share(account, share_name, KEY, false)).unwrap_err();
        assert!(
            matches!(&err, VolumeError::InvalidAzureFile { volume, field: f, .. }
                if volume == "data" && *f == field),
            "{account}/{share_name}: {err:?}"
        );
    }
    let hostile = VolumeRegistry::new().with(AzureFileDriver::new(|_: &str| "srv,uid=0".to_owned()));
    let err = hostile.prepare(Path::new("/x"), &share("acct", "s", KEY, false)).unwrap_err();
    assert!(matches!(err, VolumeError::InvalidAzureFile { field: "server", .. }), "{err:?}");
    let err = registry.prepare(Path::new("/x"), &share("acct", "s", "", false)).unwrap_err();
    assert!(matches!(err, VolumeError::EmptyStorageAccountKey { .. }), "{err:?}");
}
