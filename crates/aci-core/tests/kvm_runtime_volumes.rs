//! KVM tier: volumes wired into the runtime, with real services.
//!
//! - `azureFile`: a real `smbd` (aci_testkit::Smbd) in a network namespace of its own whose
//!   veth sits on the group network's bridge, so the guest's CIFS client reaches it like a
//!   file server on the group's subnet; the runtime maps the storage account to its address
//!   (`RuntimeBuilder::azure_file_server`). Data outlives the group, `smbclient` sees it, a
//!   wrong key fails only the container that mounts that volume.
//! - `emptyDir` shared by two containers across a restart; `secret` files readable in the
//!   container and nowhere on the host; `readOnly` mounts refusing writes.
//! - `gitRepo` cloned from a real `git daemon` on 127.0.0.1 at a given revision, and a
//!   `hostPath` share, both over virtio-fs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod runtime_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aci_core::runtime::{ExecRequest, GroupState, GroupStatus, Runtime, VOLUME_MOUNT_FAILED};
use aci_core::spec::{AzureFileVolume, Container, ContainerGroup, RestartPolicy, Volume};
use runtime_support::{create, registry, state_dir, BOOT_WAIT};

/// The SMB account, share and key of the azureFile test (the key is storage-key-like).
const ACCOUNT: &str = "acistore";
const SHARE: &str = "data";
const KEY: &str = "Zm9vYmFyLXN0b3JhZ2Uta2V5LTk4NzY1NDMyMTA=";
/// The secret volume's value: unlikely to appear anywhere by chance.
const SECRET_TEXT: &str = "s3cret-7d1f0c9a-token";

/// Runs `args` in `container` of `group`; returns (exit code, stdout + stderr).
async fn sh(rt: &Runtime, group: &str, container: &str, script: &str) -> (i32, String) {
    let out = rt
        .exec(group, container, ExecRequest::new(["/bin/sh", "-c", script]))
        .await
        .unwrap_or_else(|e| panic!("exec in {group}/{container}: {e:?}"));
    let text = format!("{}{}", out.stdout_text(), String::from_utf8_lossy(&out.stderr));
    (out.exit_code, text)
}

fn container(name: &str, image: &str, script: &str) -> Container {
    Container::new(name, image).command(["/bin/sh", "-c", script]).cpu(0.5).memory_gb(0.25)
}

/// Every event message of the group and its containers.
fn events(s: &GroupStatus) -> Vec<String> {
    s.events
        .iter()
        .chain(s.containers.iter().flat_map(|c| c.events.iter()))
        .filter_map(|e| e.message.clone())
        .collect()
}

/// Every regular file under `dir` whose contents hold `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return found };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if kind.is_file() {
            let data = std::fs::read(&path).unwrap_or_default();
            if data.windows(needle.len()).any(|w| w == needle) {
                found.push(path);
            }
        }
    }
    found
}

/// The network namespaces and links of the azureFile test, deleted even when it fails.
struct NetFixture {
    prefix: String,
    smb_ns: String,
}

impl Drop for NetFixture {
    fn drop(&mut self) {
        for ns in aci_net::netns::list(&self.prefix).unwrap_or_default() {
            let _ = aci_net::netns::delete(&ns);
        }
        let _ = aci_net::netns::delete(&self.smb_ns);
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "KVM tier: boots guests on a real network with a real smbd; run by `cargo xtask test`"]
async fn azure_file_data_outlives_the_group_and_a_wrong_key_fails_only_its_container() {
    let test = "azure_file_data_outlives_the_group_and_a_wrong_key_fails_only_its_container";
    if !runtime_support::root_gate(test, &["ip", "nft", "smbd", "smbpasswd"]) {
        return;
    }
    let (reg, image) = registry();
    let state = state_dir("azfile");
    let id = std::process::id() % 100_000;
    let fixture = NetFixture { prefix: format!("acivol{id}-"), smb_ns: format!("acismb{id}") };
    let net = runtime_support::net_settings(state.path(), &fixture.prefix, 96, false);

    // The group network exists before the runtime (same state, so the runtime adopts it);
    // smbd's namespace hangs off its bridge with 10.96.0.250.
    let nets = aci_net::NetworkManager::open(net.manager.clone()).unwrap();
    let network = nets.default_network().await.unwrap();
    let group_ns = nets.namespace_of(&network);
    drop(nets);
    aci_net::netns::create(&fixture.smb_ns).unwrap();
    let (veth_bridge, veth_smb) = (format!("vsb{id}"), format!("vss{id}"));
    ip(&["link", "add", &veth_bridge, "type", "veth", "peer", "name", &veth_smb]);
    ip(&["link", "set", &veth_bridge, "netns", &group_ns]);
    ip(&["-n", &group_ns, "link", "set", &veth_bridge, "master", "br0", "up"]);
    ip(&["link", "set", &veth_smb, "netns", &fixture.smb_ns]);
    ip(&["-n", &fixture.smb_ns, "addr", "add", "10.96.0.250/24", "dev", &veth_smb]);
    ip(&["-n", &fixture.smb_ns, "link", "set", &veth_smb, "up"]);
    ip(&["-n", &fixture.smb_ns, "link", "set", "lo", "up"]);
    let smbd = aci_net::netns::run_in(&fixture.smb_ns, || {
        aci_testkit::Smbd::start("10.96.0.250".parse().unwrap(), 445, SHARE, ACCOUNT, KEY)
    })
    .unwrap();

    let rt = runtime_support::guest_builder(&reg.host(), state.path())
        .networking(net)
        .azure_file_server(ACCOUNT, "10.96.0.250")
        .azure_file_server("wrongkey", "10.96.0.250")
        .build()
        .unwrap();
    let share = |account: &str, key: &str, read_only| AzureFileVolume {
        share_name: SHARE.into(),
        storage_account_name: account.into(),
        storage_account_key: Some(key.into()),
        read_only: Some(read_only),
    };

    // 1. A writer and a reader (read-only mount of the same volume, another path).
    let group = ContainerGroup::builder("azgroup")
        .volume(Volume::azure_file("share", share(ACCOUNT, KEY, false)))
        .container(
            container("writer", &image, "echo written-by-the-guest > /mnt/share/note.txt; exec sleep 3600")
                .volume_mount("share", "/mnt/share"),
        )
        .container(container("reader", &image, "exec sleep 3600").read_only_volume_mount("share", "/in"))
        .build()
        .unwrap();
    let t = Instant::now();
    create(&rt, group).await;
    eprintln!("azgroup running after {:?}", t.elapsed());
    let deadline = Instant::now() + BOOT_WAIT;
    let seen = loop {
        let (code, out) = sh(&rt, "azgroup", "reader", "cat /in/note.txt").await;
        if code == 0 || Instant::now() > deadline {
            break out;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(seen.trim(), "written-by-the-guest");
    let (code, out) = sh(&rt, "azgroup", "reader", "echo x > /in/denied.txt").await;
    assert_ne!(code, 0, "a readOnly mount took a write: {out}");
    assert!(out.contains("Read-only file system"), "{out}");
    rt.delete("azgroup").await.unwrap();

    // The data is on the server: its directory and smbclient see it.
    let on_host = std::fs::read_to_string(smbd.share_dir().join("note.txt")).unwrap();
    assert_eq!(on_host.trim(), "written-by-the-guest");
    assert!(!smbd.share_dir().join("denied.txt").exists());
    {
        assert!(
            aci_testkit::which("smbclient").is_some(),
            "smbclient is missing (`cargo xtask setup` installs it)"
        );
        let out = Command::new("ip")
            .args(["netns", "exec", &fixture.smb_ns, "smbclient", "//10.96.0.250/data"])
            .args(["-U", &format!("{ACCOUNT}%{KEY}"), "-m", "SMB3", "-c", "get note.txt -"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("written-by-the-guest"),
            "smbclient: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // 2. Re-created: the data is there. A second volume with a wrong key fails only the
    // container that mounts it; the other keeps running.
    let wrong = "d3Jvbmcta2V5LW5vdC10aGUtcmVhbC1vbmU=";
    let until_told = "while [ ! -f /data/reader.done ]; do sleep 0.2; done";
    let group = ContainerGroup::builder("azgroup")
        .restart_policy(RestartPolicy::Never)
        .volume(Volume::azure_file("share", share(ACCOUNT, KEY, false)))
        .volume(Volume::azure_file("badshare", share("wrongkey", wrong, false)))
        .container(container("reader", &image, until_told).volume_mount("share", "/data"))
        .container(container("broken", &image, "exec sleep 3600").volume_mount("badshare", "/bad"))
        .build()
        .unwrap();
    let status = create(&rt, group).await;
    assert_eq!(status.state, GroupState::Running);
    let (code, out) = sh(&rt, "azgroup", "reader", "cat /data/note.txt").await;
    assert_eq!((code, out.trim()), (0, "written-by-the-guest"));
    let status = rt.get("azgroup").unwrap();
    let broken = status.container("broken").unwrap();
    assert_eq!(broken.state(), "Terminated", "{broken:?}");
    assert_eq!(broken.current_state.detail_status.as_deref(), Some(VOLUME_MOUNT_FAILED));
    let failure = broken.events.iter().filter_map(|e| e.message.clone()).find(|m| m.contains("badshare"));
    let failure = failure.unwrap_or_else(|| panic!("no mount event on broken: {:?}", broken.events));
    assert!(failure.contains("Permission denied") || failure.contains("os error 13"), "{failure}");
    assert_eq!(status.container("reader").unwrap().state(), "Running");
    let all = events(&status).join("\n");
    let json = serde_json::to_string(&status).unwrap();
    for key in [KEY, wrong] {
        assert!(!all.contains(key) && !json.contains(key), "a storage key leaked:\n{all}");
        let leaks = files_containing(state.path(), key.as_bytes());
        assert!(leaks.is_empty(), "a storage key is on host disk: {leaks:?}");
    }
    eprintln!("mount failure event: {failure}");
    // The reader ends with 0; the group still ends Failed: one container never started.
    let (code, out) = sh(&rt, "azgroup", "reader", "touch /data/reader.done").await;
    assert_eq!(code, 0, "{out}");
    let ended = rt.wait_for("azgroup", BOOT_WAIT, "the group ends", |s| !s.state.is_active()).await.unwrap();
    assert_eq!(ended.state, GroupState::Failed, "{:?}", ended.reason);
    assert!(
        ended.reason.as_deref().is_some_and(|r| r.contains("\"broken\" was not started")),
        "{:?}",
        ended.reason
    );
    rt.delete("azgroup").await.unwrap();
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "KVM tier: boots a guest; run by `cargo xtask test`"]
async fn empty_dir_survives_a_restart_and_secrets_stay_in_guest_memory() {
    let test = "empty_dir_survives_a_restart_and_secrets_stay_in_guest_memory";
    if !runtime_support::gate(test) {
        return;
    }
    let (reg, image) = registry();
    let state = state_dir("emptydir");
    let rt = runtime_support::runtime(&reg, state.path());
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(SECRET_TEXT);
    // "a" leaves a mark and fails its first run; restarted (OnFailure), it finds the mark.
    let crashy = "echo from-a >> /scratch/runs; \
                  if [ -f /scratch/crashed ]; then exec sleep 3600; fi; touch /scratch/crashed; exit 3";
    let group = ContainerGroup::builder("scratch")
        .restart_policy(RestartPolicy::OnFailure)
        .volume(Volume::empty_dir("work"))
        .volume(Volume::secret("creds", [("token", encoded.as_str())]))
        .container(container("a", &image, crashy).volume_mount("work", "/scratch"))
        .container(
            container("b", &image, "exec sleep 3600")
                .read_only_volume_mount("work", "/shared")
                .volume_mount("creds", "/etc/creds"),
        )
        .build()
        .unwrap();
    create(&rt, group).await;
    let s = rt
        .wait_for("scratch", BOOT_WAIT, "a restarted and running", |s| {
            s.container("a").is_some_and(|c| c.restart_count >= 1 && c.state() == "Running")
        })
        .await
        .unwrap();
    assert_eq!(s.container("a").unwrap().previous_state.as_ref().and_then(|p| p.exit_code), Some(3));
    // Both runs wrote to the same tmpfs, and b sees it at its own path.
    let (code, out) = sh(&rt, "scratch", "b", "cat /shared/runs; ls /shared").await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches("from-a").count(), 2, "{out}");
    assert!(out.contains("crashed"), "{out}");
    let (code, out) = sh(&rt, "scratch", "b", "touch /shared/nope").await;
    assert_ne!(code, 0, "a readOnly emptyDir mount took a write: {out}");
    let (code, out) = sh(&rt, "scratch", "a", "touch /scratch/yes && ls /scratch").await;
    assert_eq!(code, 0, "{out}");

    // The secret: readable in the container, read-only there, nowhere on the host.
    let (code, out) = sh(&rt, "scratch", "b", "cat /etc/creds/token").await;
    assert_eq!((code, out.as_str()), (0, SECRET_TEXT));
    let (code, out) = sh(&rt, "scratch", "b", "echo x > /etc/creds/token").await;
    assert_ne!(code, 0, "the secret volume took a write: {out}");
    let status = rt.get("scratch").unwrap();
    let json = serde_json::to_string(&status).unwrap();
    let spec_json = serde_json::to_string(&status.to_container_group()).unwrap();
    rt.delete("scratch").await.unwrap();
    for needle in [SECRET_TEXT, encoded.as_str()] {
        assert!(!json.contains(needle) && !spec_json.contains(needle), "a secret is in get output");
        assert!(!events(&status).join("\n").contains(needle));
        let leaks = files_containing(state.path(), needle.as_bytes());
        assert!(leaks.is_empty(), "a secret is on host disk: {leaks:?}");
    }
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "KVM tier: boots a guest with virtio-fs shares; run by `cargo xtask test`"]
async fn git_repo_revision_and_a_host_share_over_virtio_fs() {
    let test = "git_repo_revision_and_a_host_share_over_virtio_fs";
    if !runtime_support::gate(test) || !aci_testkit::require_tools(test, &["git"]) {
        return;
    }
    let (reg, image) = registry();
    let state = state_dir("gitrepo");
    let rt = runtime_support::runtime(&reg, state.path());
    let server = aci_testkit::GitDaemon::start();
    let host_dir = tempfile::Builder::new().prefix("aci-share-").tempdir_in(std::env::temp_dir()).unwrap();
    std::fs::write(host_dir.path().join("from-host.txt"), "hello from the host\n").unwrap();
    // The container runs as the image's user (1000): let it write the shared directory.
    std::fs::set_permissions(host_dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();

    let mut repo = Volume::git_repo("src", server.url());
    if let Some(g) = repo.git_repo.as_mut() {
        g.directory = Some("app".into());
        g.revision = Some(server.first_commit().to_owned());
    }
    let group = ContainerGroup::builder("gitgroup")
        .volume(repo)
        .volume(Volume::host_path("hostdir", host_dir.path().to_str().unwrap()))
        .container(
            container("app", &image, "exec sleep 3600")
                .volume_mount("src", "/srv/src")
                .volume_mount("hostdir", "/host"),
        )
        .build()
        .unwrap();
    let t = Instant::now();
    create(&rt, group).await;
    eprintln!("gitgroup running after {:?}", t.elapsed());
    let (code, out) = sh(&rt, "gitgroup", "app", "cat /srv/src/app/README").await;
    assert_eq!((code, out.as_str()), (0, "v1"), "the clone is not at c1");

    // hostPath: host → guest and guest → host.
    let (code, out) = sh(&rt, "gitgroup", "app", "cat /host/from-host.txt").await;
    assert_eq!((code, out.as_str()), (0, "hello from the host\n"));
    let (code, out) = sh(&rt, "gitgroup", "app", "echo hello from the guest > /host/from-guest.txt").await;
    assert_eq!(code, 0, "{out}");
    let back = std::fs::read_to_string(host_dir.path().join("from-guest.txt")).unwrap();
    assert_eq!(back, "hello from the guest\n");
    std::fs::write(host_dir.path().join("later.txt"), "written later\n").unwrap();
    let (code, out) = sh(&rt, "gitgroup", "app", "cat /host/later.txt").await;
    assert_eq!((code, out.as_str()), (0, "written later\n"));
    // A host file next to the share stays out of reach, by `..` or by symlinks (absolute
    // and relative ones resolve in the guest, never on the host).
    let outside = host_dir.path().with_extension("outside");
    std::fs::write(&outside, "host-only-9f2c\n").unwrap();
    let name = outside.file_name().unwrap().to_str().unwrap().to_owned();
    std::os::unix::fs::symlink(&outside, host_dir.path().join("abs-link")).unwrap();
    std::os::unix::fs::symlink(format!("../{name}"), host_dir.path().join("rel-link")).unwrap();
    let script =
        format!("ls -a /host/..; cat /host/../{name} /host/abs-link /host/rel-link /host/../../{name}");
    let (code, out) = sh(&rt, "gitgroup", "app", &script).await;
    assert_ne!(code, 0, "{out}");
    assert!(!out.contains("host-only-9f2c"), "a file outside the share was read: {out}");
    let _ = std::fs::remove_file(&outside);

    let clone_dir = state.path().join("volumes").join("gitgroup.1");
    let cloned = clone_dir.exists();
    rt.delete("gitgroup").await.unwrap();
    assert!(!clone_dir.exists(), "the clone outlived the group (existed while running: {cloned})");
    assert!(host_dir.path().join("from-guest.txt").exists(), "the host share lost data");
    rt.shutdown().await;
}
