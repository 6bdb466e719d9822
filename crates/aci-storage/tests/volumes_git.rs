//! gitRepo volumes cloned with the real `git` from a real `git daemon` on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aci_storage::volumes::{
    GitRepoDriver, GitRepoSource, GuestMountSource, Volume, VolumeError, VolumeRegistry, VolumeSource,
};
use aci_testkit::{git, require_tools, GitDaemon};

/// A free TCP port on 127.0.0.1 (bound, then released for the daemon).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn git_volume(name: &str, repository: &str, directory: Option<&str>, revision: Option<&str>) -> Volume {
    Volume::new(
        name,
        VolumeSource::GitRepo(GitRepoSource {
            repository: repository.to_owned(),
            directory: directory.map(str::to_owned),
            revision: revision.map(str::to_owned),
        }),
    )
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn clones_by_branch_tag_and_commit() {
    if !require_tools("clones_by_branch_tag_and_commit", &["git"]) {
        return;
    }
    let server = GitDaemon::start();
    let state = tempfile::tempdir().unwrap();
    let group = state.path().join("group");
    let short = &server.first_commit()[..8];
    let volumes = [
        git_volume("default", &server.url(), None, None),
        git_volume("branch", &server.url(), Some("."), Some("feature")),
        git_volume("tag", &server.url(), Some("./sub/dir/"), Some("v1.0")),
        git_volume("commit", &server.url(), None, Some(server.first_commit())),
        git_volume("short", &server.url(), Some("src"), Some(short)),
    ];
    let registry = VolumeRegistry::new();
    let prepared = registry.prepare_all(&group, &volumes).unwrap();

    // No revision: the default branch, in a directory named after the repository.
    assert_eq!(read(group.join("default/repo/README")), "v2");
    // A branch, cloned into the volume's root.
    assert_eq!(read(group.join("branch/README")), "v1");
    assert_eq!(read(group.join("branch/feature.txt")), "feat");
    // An annotated tag, into a nested directory.
    assert_eq!(read(group.join("tag/sub/dir/README")), "v1");
    assert!(!group.join("tag/sub/dir/feature.txt").exists());
    // A full and an abbreviated commit hash.
    assert_eq!(read(group.join("commit/repo/README")), "v1");
    assert_eq!(read(group.join("short/src/README")), "v1");
    let head = git(&group.join("short/src"), &["rev-parse", "HEAD"]);
    assert_eq!(head, server.first_commit());

    // Shared into the guest as a read-write virtio-fs share of the volume's directory.
    let share = prepared[1].host_share().unwrap();
    assert_eq!(share.host_dir, group.join("branch"));
    assert_eq!(share.tag, "aci-branch");
    assert!(!share.read_only);
    assert!(matches!(
        &prepared[1].mount.source,
        GuestMountSource::VirtioFs { tag, .. } if tag == "aci-branch"
    ));

    // Release removes every clone and the group directory.
    registry.release(&group, &prepared[0]).unwrap();
    assert!(!group.join("default").exists());
    assert!(group.join("branch").exists());
    registry.release_all(&group, &prepared).unwrap();
    assert!(!group.exists());
}

#[test]
fn bad_revision_is_a_checkout_error_naming_the_repository() {
    if !require_tools("bad_revision_is_a_checkout_error", &["git"]) {
        return;
    }
    let server = GitDaemon::start();
    let state = tempfile::tempdir().unwrap();
    let volume = git_volume("src", &server.url(), None, Some("no-such-branch"));
    let err = VolumeRegistry::new().prepare(state.path(), &volume).unwrap_err();
    match &err {
        VolumeError::CheckoutRevision { volume, repository, revision, .. } => {
            assert_eq!(volume, "src");
            assert_eq!(repository, &server.url());
            assert_eq!(revision, "no-such-branch");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains(&server.url()), "{err}");
    // The half clone is gone.
    assert!(!state.path().join("src").exists());
}

#[test]
fn unreachable_repository_is_a_clone_error_without_credentials() {
    if !require_tools("unreachable_repository_is_a_clone_error", &["git"]) {
        return;
    }
    let state = tempfile::tempdir().unwrap();
    // Nothing listens on this port: the connection is refused.
    let port = free_port();
    for url in [
        format!("git://127.0.0.1:{port}/repo.git"),
        format!("http://deploy:s3cretpw@127.0.0.1:{port}/repo.git"),
    ] {
        let volume = git_volume("src", &url, None, None);
        let driver = GitRepoDriver::default().with_timeout(Duration::from_secs(60));
        let registry = VolumeRegistry::empty().with(driver);
        let err = registry.prepare(state.path(), &volume).unwrap_err();
        let VolumeError::CloneRepository { repository, .. } = &err else {
            panic!("unexpected {err:?}");
        };
        let shown = url.replace("deploy:s3cretpw@", "");
        assert_eq!(repository, &shown);
        for text in [err.to_string(), format!("{err:?}"), format!("{volume:?}")] {
            assert!(text.contains(&shown), "{text}");
            assert!(!text.contains("s3cretpw"), "{text}");
        }
        assert!(!state.path().join("src").exists());
    }
}

#[test]
fn directory_and_revision_are_checked_before_cloning() {
    let state = tempfile::tempdir().unwrap();
    let registry = VolumeRegistry::new();
    let url = "git://127.0.0.1:1/repo.git";
    for dir in ["../escape", "a/../../b", "/etc", "/"] {
        let err = registry.prepare(state.path(), &git_volume("src", url, Some(dir), None)).unwrap_err();
        assert!(
            matches!(&err, VolumeError::InvalidGitDirectory { volume, directory, .. }
                if volume == "src" && directory == dir),
            "{dir}: {err:?}"
        );
    }
    for rev in ["--upload-pack=touch /tmp/x", "", "a b"] {
        let err = registry.prepare(state.path(), &git_volume("src", url, None, Some(rev))).unwrap_err();
        assert!(matches!(err, VolumeError::InvalidGitRevision { .. }), "{rev}: {err:?}");
    }
    for repo in ["", "--upload-pack=x", "git://127.0.0.1:1/.."] {
        let err = registry.prepare(state.path(), &git_volume("src", repo, None, None)).unwrap_err();
        assert!(matches!(err, VolumeError::InvalidRepository { .. }), "{repo}: {err:?}");
    }
    assert!(std::fs::read_dir(state.path()).unwrap().next().is_none());
}

#[test]
fn a_silent_server_times_out() {
    if !require_tools("a_silent_server_times_out", &["git"]) {
        return;
    }
    // Accepts connections (in the kernel backlog) and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let url = format!("git://127.0.0.1:{port}/repo.git");
    let state = tempfile::tempdir().unwrap();
    let driver = GitRepoDriver::default().with_timeout(Duration::from_secs(1));
    let registry = VolumeRegistry::empty().with(driver);
    let started = Instant::now();
    let err = registry.prepare(state.path(), &git_volume("src", &url, None, None)).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        matches!(&err, VolumeError::CloneRepository { detail, .. } if detail.contains("timed out")),
        "{err:?}"
    );
    assert!(!state.path().join("src").exists());
}
