//! The volumes of a deployment: the spec's `volumes[]` prepared on the host by
//! `aci_storage`'s driver registry (dispatch by volume type, no per-type code here), turned
//! into the guest mounts, virtio-fs shares and container bind mounts they become.
//!
//! - Step `volumes` ([`GroupVolumes::prepare`], before boot): each volume's driver does its
//!   host work (a `gitRepo` clone into `<state>/volumes/<group>.<deployment>/<volume>`) and
//!   describes its guest mount; every container's `volumeMounts` are resolved into
//!   [`BindMount`]s from `/run/aci/volumes/<volume>` ([`VOLUME_MOUNT_ROOT`]).
//! - Boot: virtio-fs volumes (`gitRepo`, `hostPath`) become the VM's shares; the addresses of
//!   SMB servers given by name are resolved on the host and handed to the guest as hosts
//!   entries (the guest kernel's CIFS client resolves nothing itself).
//! - Step `mount volumes` ([`GroupVolumes::mount_all`], after the images): each volume is
//!   mounted once in the guest. A volume whose mount fails (say, a wrong storage key) fails
//!   only the containers that mount it: they are not started, get a `Failed` event naming
//!   the volume and the error, and show `Terminated` / `VolumeMountFailed`; the other
//!   containers start. An init container mounting a failed volume, or no app container
//!   left to start, fails the deployment.
//! - Release: dropping [`GroupVolumes`] (with the deployment) undoes the host work.
//!
//! Secrets (storage account keys, secret files) travel only in the `MountStorage` call to
//! the agent; error texts shown in events and statuses have them replaced, as a second
//! guard behind the agent's and the drivers' own redaction.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use aci_proto::container::{BindMount, ContainerConfig};
use aci_proto::message::Call;
use aci_proto::sandbox::{HostEntry, SecretFile as WireFile, StorageMount, StorageSource};
use aci_proto::Secret as WireSecret;
use aci_storage::volumes::{
    resolve_mounts, AzureCloudServers, AzureFileDriver, AzureFileSource, EmptyDirSource, GitRepoDriver,
    GitRepoSource, GuestMountSource, HostPathSource, MountError, MountRequest, PreparedVolume, SecretValue,
    ServerResolver, Volume, VolumeError, VolumeRegistry, VolumeSource,
};
use base64::Engine as _;
use thiserror::Error;

use super::clock::{now_ms, rfc3339_ms};
use super::deploy::error_chain;
use super::events::{EventKind, EventName};
use super::group::GroupCtx;
use super::guest::AgentHandle;
use super::RuntimeConfig;
use crate::spec::{self, ContainerGroup, ContainerState, VolumeKind, VolumeMount};

/// Where each volume is mounted in the guest (`<root>/<volume name>`), once per group.
pub const VOLUME_MOUNT_ROOT: &str = "/run/aci/volumes";

/// The `detailStatus` of a container not started because a volume it mounts failed.
pub const VOLUME_MOUNT_FAILED: &str = "VolumeMountFailed";

/// The SMB port the guest connects to.
const SMB_PORT: u16 = 445;

/// Volume settings of a runtime ([`super::RuntimeBuilder::azure_file_server`],
/// [`super::RuntimeBuilder::git_program`]).
#[derive(Debug, Clone)]
pub struct VolumeSettings {
    /// `azureFile` servers by storage account: the address (or host name) of the SMB server
    /// holding the account's shares. Accounts not listed use Azure's public cloud,
    /// `<account>.file.core.windows.net`.
    pub azure_file_servers: BTreeMap<String, String>,
    /// The `git` program `gitRepo` volumes are cloned with (a path, or a name on `PATH`).
    pub git_program: PathBuf,
}

impl Default for VolumeSettings {
    fn default() -> Self {
        Self { azure_file_servers: BTreeMap::new(), git_program: PathBuf::from("git") }
    }
}

/// Resolves a storage account through [`VolumeSettings::azure_file_servers`], falling back
/// to Azure's public cloud.
struct MappedServers(BTreeMap<String, String>);

impl ServerResolver for MappedServers {
    fn server(&self, storage_account: &str) -> String {
        match self.0.get(storage_account) {
            Some(server) => server.clone(),
            None => AzureCloudServers.server(storage_account),
        }
    }
}

impl VolumeSettings {
    /// The driver registry these settings describe: every built-in driver, `azureFile` and
    /// `gitRepo` configured.
    pub fn registry(&self) -> VolumeRegistry {
        VolumeRegistry::new()
            .with(AzureFileDriver::new(MappedServers(self.azure_file_servers.clone())))
            .with(GitRepoDriver::new(self.git_program.clone()))
    }
}

/// What went wrong with a group's volumes. Messages name the volume and container; none
/// carries a key or a secret file's contents.
#[derive(Debug, Error)]
pub enum VolumeStepError {
    /// A secret the volume needs was withheld (a spec read back from `get` output).
    #[error("volume {volume:?}: {field} has no value (a withheld secret must be given again)")]
    Withheld {
        /// The volume.
        volume: String,
        /// The field (`azureFile.storageAccountKey`, `secret["token"]`).
        field: String,
    },
    /// The volume sets no type, or more than one.
    #[error("volume {volume:?} must set exactly one of azureFile, emptyDir, secret, gitRepo, hostPath")]
    Kind {
        /// The volume.
        volume: String,
    },
    /// The host side of a volume failed (a clone, a check).
    #[error(transparent)]
    Prepare(#[from] VolumeError),
    /// A container's `volumeMounts` do not fit the group's volumes.
    #[error(transparent)]
    Mounts(#[from] MountError),
    /// The blocking task doing the host work panicked or was cancelled.
    #[error("the host-side volume work ended abnormally")]
    Task(#[source] tokio::task::JoinError),
    /// An init container mounts a volume whose guest mount failed, or no app container is
    /// left to start because every one mounts such a volume.
    #[error("container {container:?} cannot start: mounting volume {volume:?} failed: {detail}")]
    MountFailed {
        /// The container.
        container: String,
        /// The volume.
        volume: String,
        /// The mount error (secrets replaced).
        detail: String,
    },
}

/// A deployment's volumes: prepared on the host, to mount in the guest. Dropping it undoes
/// the host work (removes clones; never touches a `hostPath` directory or an SMB share).
pub(crate) struct GroupVolumes {
    registry: VolumeRegistry,
    group_dir: PathBuf,
    prepared: Vec<PreparedVolume>,
    /// Each container's bind mounts, by container name.
    binds: BTreeMap<String, Vec<BindMount>>,
    /// App containers not started because a volume they mount failed.
    not_started: Vec<String>,
}

impl GroupVolumes {
    /// Step `volumes`: prepares every volume of `spec` on the host (blocking work on a
    /// blocking thread) and resolves every container's `volumeMounts`.
    pub(crate) async fn prepare(
        config: &RuntimeConfig,
        group: &str,
        number: u32,
        spec: &ContainerGroup,
    ) -> Result<Self, VolumeStepError> {
        let volumes =
            spec.properties.volumes.iter().map(volume_input).collect::<Result<Vec<_>, VolumeStepError>>()?;
        let registry = config.volumes.registry();
        let group_dir = config.state_dir.join("volumes").join(format!("{group}.{number}"));
        let (registry, prepared) = tokio::task::spawn_blocking({
            let group_dir = group_dir.clone();
            move || {
                let prepared = registry.prepare_all(&group_dir, &volumes);
                (registry, prepared)
            }
        })
        .await
        .map_err(VolumeStepError::Task)?;
        let mut out = Self {
            registry,
            group_dir,
            prepared: prepared?,
            binds: BTreeMap::new(),
            not_started: Vec::new(),
        };
        let props = &spec.properties;
        let containers = props
            .init_containers
            .iter()
            .map(|c| (&c.name, &c.properties.volume_mounts))
            .chain(props.containers.iter().map(|c| (&c.name, &c.properties.volume_mounts)));
        for (name, mounts) in containers {
            let binds = out.bind_mounts(name, mounts)?;
            out.binds.insert(name.clone(), binds);
        }
        Ok(out)
    }

    /// `container`'s `volumeMounts` as bind mounts of the group-wide volume mounts.
    fn bind_mounts(&self, container: &str, mounts: &[VolumeMount]) -> Result<Vec<BindMount>, MountError> {
        let requests: Vec<MountRequest> = mounts
            .iter()
            .map(|m| MountRequest {
                volume: m.name.clone(),
                mount_path: m.mount_path.clone(),
                read_only: m.read_only.unwrap_or(false),
            })
            .collect();
        Ok(resolve_mounts(container, &requests, &self.prepared)?
            .into_iter()
            .map(|m| BindMount {
                source: guest_path(&m.volume),
                destination: m.mount_path.to_string_lossy().into_owned(),
                read_only: m.read_only,
            })
            .collect())
    }

    /// Gives each container its bind mounts.
    pub(crate) fn attach(&self, configs: &mut [ContainerConfig]) {
        for config in configs {
            if let Some(binds) = self.binds.get(&config.name) {
                config.mounts.extend(binds.iter().cloned());
            }
        }
    }

    /// The virtio-fs shares the VM must serve, one per `gitRepo` or `hostPath` volume.
    pub(crate) fn shares(&self) -> Vec<aci_vmm::ShareConfig> {
        self.prepared
            .iter()
            .filter_map(PreparedVolume::host_share)
            .map(|s| aci_vmm::ShareConfig { tag: s.tag, path: s.host_dir, read_only: s.read_only })
            .collect()
    }

    /// Hosts entries for SMB servers given by name, resolved on the host. A name that does
    /// not resolve gets no entry: its mount then fails in the guest, naming the server.
    pub(crate) async fn hosts(&self) -> Vec<HostEntry> {
        let mut entries: Vec<HostEntry> = Vec::new();
        for volume in &self.prepared {
            let GuestMountSource::Cifs { unc, .. } = &volume.mount.source else { continue };
            let Some(server) = unc.trim_start_matches('/').split('/').next() else { continue };
            if server.parse::<IpAddr>().is_ok() || entries.iter().any(|e| e.names.iter().any(|n| n == server))
            {
                continue;
            }
            let addrs = match tokio::net::lookup_host((server, SMB_PORT)).await {
                Ok(addrs) => addrs.collect::<Vec<_>>(),
                Err(err) => {
                    tracing::warn!(volume = volume.name(), server, "cannot resolve the SMB server: {err}");
                    continue;
                }
            };
            let best = addrs.iter().find(|a| a.is_ipv4()).or(addrs.first());
            if let Some(addr) = best {
                entries.push(HostEntry { ip: addr.ip().to_string(), names: vec![server.to_owned()] });
            }
        }
        entries
    }

    /// Step `mount volumes`: mounts each volume once in the guest, then sorts `apps` into
    /// the containers that can start (returned) and those that mount a failed volume (not
    /// started: event and status recorded). Fails when an init container mounts a failed
    /// volume, or when no app container is left.
    pub(crate) async fn mount_all(
        &mut self,
        ctx: &GroupCtx,
        agent: &AgentHandle,
        inits: &[ContainerConfig],
        apps: Vec<ContainerConfig>,
    ) -> Result<Vec<ContainerConfig>, VolumeStepError> {
        let mut failed: BTreeMap<String, String> = BTreeMap::new();
        for volume in &self.prepared {
            let mount = storage_mount(volume);
            if let Err(err) = agent.call_done(Call::MountStorage(mount)).await {
                let detail = self.redact(&error_chain(&err));
                ctx.event(
                    None,
                    EventName::Failed,
                    EventKind::Warning,
                    format!("mounting volume {:?} failed: {detail}", volume.name()),
                );
                failed.insert(volume.name().to_owned(), detail);
            }
        }
        if failed.is_empty() {
            return Ok(apps);
        }
        let failed_volume = |config: &ContainerConfig| {
            config.mounts.iter().find_map(|b| {
                let volume = b.source.strip_prefix(VOLUME_MOUNT_ROOT)?.trim_start_matches('/');
                failed.get_key_value(volume)
            })
        };
        if let Some((init, (volume, detail))) = inits.iter().find_map(|c| Some((c, failed_volume(c)?))) {
            return Err(VolumeStepError::MountFailed {
                container: init.name.clone(),
                volume: volume.clone(),
                detail: detail.clone(),
            });
        }
        let mut first = None;
        let mut runnable = Vec::with_capacity(apps.len());
        for app in apps {
            let Some((volume, detail)) = failed_volume(&app) else {
                runnable.push(app);
                continue;
            };
            not_started(ctx, &app.name, volume, detail);
            self.not_started.push(app.name.clone());
            first.get_or_insert((app.name.clone(), volume.clone(), detail.clone()));
        }
        match (runnable.is_empty(), first) {
            (true, Some((container, volume, detail))) => {
                Err(VolumeStepError::MountFailed { container, volume, detail })
            }
            _ => Ok(runnable),
        }
    }

    /// App containers not started because a volume they mount failed to mount (they end
    /// the group `Failed`).
    pub(crate) fn not_started(&self) -> &[String] {
        &self.not_started
    }

    /// `text` with every key and secret file of the group's volumes replaced.
    fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for volume in &self.prepared {
            let secrets: Vec<&SecretValue> = match &volume.mount.source {
                GuestMountSource::Cifs { password, .. } => vec![password],
                GuestMountSource::SecretFiles { files } => files.iter().map(|f| &f.contents).collect(),
                _ => Vec::new(),
            };
            for secret in secrets {
                if let Some(s) = secret.expose_str().filter(|s| !s.is_empty()) {
                    out = out.replace(s, spec::Secret::REDACTED);
                }
            }
        }
        out
    }
}

impl GroupVolumes {
    /// Undoes the host work (once; later calls and the drop do nothing more). Call it after
    /// the VM is gone, before the deployment is reported ended.
    pub(crate) fn release(&mut self) {
        let prepared = std::mem::take(&mut self.prepared);
        if let Err(err) = self.registry.release_all(&self.group_dir, &prepared) {
            tracing::warn!(dir = %self.group_dir.display(), "releasing the group's volumes: {}", error_chain(&err));
        }
    }
}

impl Drop for GroupVolumes {
    fn drop(&mut self) {
        self.release();
    }
}

/// Records that `container` was not started because `volume` did not mount.
fn not_started(ctx: &GroupCtx, container: &str, volume: &str, detail: &str) {
    ctx.event(
        Some(container),
        EventName::Failed,
        EventKind::Warning,
        format!("Error: mounting volume {volume:?} failed: {detail}"),
    );
    ctx.update(|s| {
        if let Some(c) = s.container_mut(container) {
            c.current_state = ContainerState {
                state: Some("Terminated".into()),
                finish_time: Some(rfc3339_ms(now_ms())),
                detail_status: Some(VOLUME_MOUNT_FAILED.into()),
                ..Default::default()
            };
        }
    });
}

/// Where `volume` is mounted in the guest.
fn guest_path(volume: &str) -> String {
    format!("{VOLUME_MOUNT_ROOT}/{volume}")
}

/// A spec volume as `aci_storage`'s plain-data input.
fn volume_input(v: &spec::Volume) -> Result<Volume, VolumeStepError> {
    let withheld = |field: String| VolumeStepError::Withheld { volume: v.name.clone(), field };
    let source = match v.kind().ok_or_else(|| VolumeStepError::Kind { volume: v.name.clone() })? {
        VolumeKind::AzureFile(a) => {
            let key = a.storage_account_key.as_ref().and_then(spec::Secret::expose);
            let key = key.ok_or_else(|| withheld("azureFile.storageAccountKey".into()))?;
            VolumeSource::AzureFile(AzureFileSource {
                share_name: a.share_name.clone(),
                storage_account_name: a.storage_account_name.clone(),
                storage_account_key: SecretValue::new(key),
                read_only: a.read_only.unwrap_or(false),
            })
        }
        VolumeKind::EmptyDir(_) => VolumeSource::EmptyDir(EmptyDirSource::default()),
        VolumeKind::Secret(files) => VolumeSource::Secret(
            files
                .iter()
                .map(|(name, value)| {
                    let value = value.expose().ok_or_else(|| withheld(format!("secret[{name:?}]")))?;
                    Ok((name.clone(), SecretValue::new(value)))
                })
                .collect::<Result<_, VolumeStepError>>()?,
        ),
        VolumeKind::GitRepo(g) => VolumeSource::GitRepo(GitRepoSource {
            repository: g.repository.clone(),
            directory: g.directory.clone(),
            revision: g.revision.clone(),
        }),
        VolumeKind::HostPath(h) => VolumeSource::HostPath(HostPathSource {
            path: PathBuf::from(&h.path),
            read_only: h.read_only.unwrap_or(false),
        }),
    };
    Ok(Volume::new(v.name.clone(), source))
}

/// The agent's mount of a prepared volume.
fn storage_mount(volume: &PreparedVolume) -> StorageMount {
    let source = match &volume.mount.source {
        GuestMountSource::Tmpfs { size_limit } => StorageSource::Tmpfs { size_bytes: *size_limit },
        GuestMountSource::SecretFiles { files } => StorageSource::Files {
            files: files
                .iter()
                .map(|f| WireFile {
                    path: f.name.clone(),
                    contents_base64: WireSecret::new(
                        base64::engine::general_purpose::STANDARD.encode(f.contents.expose()),
                    ),
                    mode: Some(f.mode),
                })
                .collect(),
        },
        GuestMountSource::VirtioFs { tag, .. } => StorageSource::Virtiofs { tag: tag.clone() },
        GuestMountSource::Cifs { unc, options, password } => {
            let mut username = String::new();
            let mut rest = Vec::new();
            for option in options.split(',').filter(|o| !o.is_empty()) {
                match option.strip_prefix("username=") {
                    Some(user) => username = user.to_owned(),
                    None => rest.push(option.to_owned()),
                }
            }
            StorageSource::Cifs {
                unc: unc.clone(),
                username,
                password: WireSecret::new(String::from_utf8_lossy(password.expose()).into_owned()),
                options: rest,
            }
        }
    };
    StorageMount {
        id: volume.name().to_owned(),
        mount_point: guest_path(volume.name()),
        source,
        read_only: volume.mount.read_only,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::AzureFileVolume;

    fn prepared(volume: &spec::Volume) -> PreparedVolume {
        let dir = std::env::temp_dir();
        let mut settings = VolumeSettings::default();
        settings.azure_file_servers.insert("acct".into(), "10.1.2.3".into());
        settings.registry().prepare(&dir, &volume_input(volume).unwrap()).unwrap()
    }

    #[test]
    fn azure_file_becomes_a_cifs_mount_with_the_mapped_server_and_the_key_apart() {
        let share = AzureFileVolume {
            share_name: "data".into(),
            storage_account_name: "acct".into(),
            storage_account_key: Some("k3y==".into()),
            read_only: Some(true),
        };
        let mount = storage_mount(&prepared(&spec::Volume::azure_file("share", share)));
        assert_eq!(mount.mount_point, "/run/aci/volumes/share");
        assert!(mount.read_only);
        let StorageSource::Cifs { unc, username, password, options } = &mount.source else {
            panic!("{mount:?}")
        };
        assert_eq!(
            (unc.as_str(), username.as_str(), password.expose()),
            ("//10.1.2.3/data", "acct", "k3y==")
        );
        assert!(options.iter().any(|o| o == "vers=3.1.1"), "{options:?}");
        assert!(!options.iter().any(|o| o.contains("k3y") || o.starts_with("username")), "{options:?}");
        assert!(!format!("{mount:?}").contains("k3y"));
    }

    #[test]
    fn an_unmapped_account_uses_azure_and_a_withheld_key_is_refused() {
        let share = AzureFileVolume {
            share_name: "data".into(),
            storage_account_name: "other".into(),
            storage_account_key: Some("k".into()),
            read_only: None,
        };
        let mount = storage_mount(&prepared(&spec::Volume::azure_file("s", share.clone())));
        assert!(
            matches!(&mount.source, StorageSource::Cifs { unc, .. } if unc == "//other.file.core.windows.net/data")
        );
        let withheld = AzureFileVolume { storage_account_key: Some(spec::Secret::withheld()), ..share };
        let err = volume_input(&spec::Volume::azure_file("s", withheld)).unwrap_err();
        assert!(err.to_string().contains("storageAccountKey"), "{err}");
    }

    #[test]
    fn secret_files_travel_base64_and_read_only() {
        let mount = storage_mount(&prepared(&spec::Volume::secret("creds", [("token", "aGVsbG8=")])));
        let StorageSource::Files { files } = &mount.source else { panic!("{mount:?}") };
        assert_eq!(files[0].path, "token");
        assert_eq!(files[0].contents_base64.expose(), "aGVsbG8=");
        assert!(mount.read_only);
        let scratch = storage_mount(&prepared(&spec::Volume::empty_dir("scratch")));
        assert_eq!(scratch.source, StorageSource::Tmpfs { size_bytes: None });
    }
}
