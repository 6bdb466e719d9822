//! Sandbox-wide set-up asked by the host: clock, hostname, network interfaces, DNS,
//! `/etc/hosts` (`ConfigureSandbox`), the storage mounts containers bind from
//! (`MountStorage`), interface counters (`Stats`), and the unmounting before power-off.
//!
//! One file per job: [`network`] (+ [`netlink`]) for interfaces, [`dns`] for resolv.conf and
//! hosts, [`clock`], [`storage`] for the mount kinds (with [`block`], [`cifs`],
//! [`secret_files`]), [`stats`], and [`entropy`] for the boot-time seeding `main` does.
//! `crates/aci-agent/docs/sandbox.md` lists the steps.

mod block;
mod cifs;
mod clock;
mod dns;
pub mod entropy;
mod netlink;
mod network;
mod secret_files;
mod stats;
mod storage;
mod sys;

use std::error::Error;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use aci_proto::container::InterfaceStats;
use aci_proto::message::{RemoteError, RemoteErrorKind};
use aci_proto::sandbox::{SandboxConfig, StorageMount};

const SYS_CLASS_NET: &str = "/sys/class/net";
const RESOLV_CONF: &str = "/etc/resolv.conf";
const ETC_HOSTS: &str = "/etc/hosts";
const ETC_HOSTNAME: &str = "/etc/hostname";

/// Errors of `ConfigureSandbox`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigureError {
    /// The clock could not be set.
    #[error(transparent)]
    Clock(#[from] clock::ClockError),
    /// The hostname is invalid or could not be set.
    #[error("cannot set the hostname to {name:?}")]
    Hostname {
        /// The name.
        name: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// An interface could not be configured.
    #[error(transparent)]
    Network(#[from] network::NetworkError),
    /// resolv.conf or hosts could not be rendered or written.
    #[error(transparent)]
    Dns(#[from] dns::DnsError),
}

/// A storage the sandbox mounted.
#[derive(Debug, Clone)]
struct Mounted {
    id: String,
    mount_point: PathBuf,
}

/// The guest's sandbox-wide state: what was mounted, in order.
#[derive(Debug, Default)]
pub struct Sandbox {
    is_init: bool,
    mounted: Mutex<Vec<Mounted>>,
}

impl Sandbox {
    /// A sandbox; `is_init` is false when the agent runs as an ordinary process (tests),
    /// where every call that would change the machine is refused.
    pub fn new(is_init: bool) -> Self {
        Self { is_init, mounted: Mutex::new(Vec::new()) }
    }

    fn require_init(&self, call: &str) -> Result<(), RemoteError> {
        if self.is_init {
            return Ok(());
        }
        Err(RemoteError {
            kind: RemoteErrorKind::InvalidState,
            message: format!(
                "{call} is refused: the agent is not the guest's init and will not change this machine"
            ),
        })
    }

    /// Applies [`SandboxConfig`]: clock, hostname, `lo`, each interface (by MAC), then
    /// `/etc/resolv.conf`, `/etc/hosts` and `/etc/hostname` (containers get these three).
    /// Everything is checked, and every interface found, before anything is changed.
    pub fn configure(&self, config: &SandboxConfig) -> Result<(), RemoteError> {
        self.require_init("configure_sandbox")?;
        configure(config)
            .map_err(|err| RemoteError { kind: RemoteErrorKind::Failed, message: error_chain(&err) })
    }

    /// Mounts one storage; errors are `MountFailed` and start with the storage's id.
    pub fn mount(&self, mount: &StorageMount) -> Result<(), RemoteError> {
        self.require_init("mount_storage")?;
        let mut mounted = self.mounted.lock().unwrap_or_else(|e| e.into_inner());
        match storage::mount(mount) {
            Ok(mount_point) => {
                mounted.push(Mounted { id: mount.id.clone(), mount_point });
                Ok(())
            }
            Err(err) => Err(RemoteError {
                kind: RemoteErrorKind::MountFailed,
                message: format!("storage {:?}: {}", mount.id, error_chain(&err)),
            }),
        }
    }

    /// Counters of the Ethernet interfaces (not `lo`, not tunnel devices like `sit0`).
    pub fn interface_stats(&self) -> Vec<InterfaceStats> {
        stats::interface_stats(Path::new(SYS_CLASS_NET))
    }

    /// Before power-off: syncs, then unmounts what [`Sandbox::mount`] mounted, newest first
    /// (lazily when busy). Returns one line per storage for the console.
    pub fn release(&self) -> Vec<String> {
        if !self.is_init {
            return Vec::new();
        }
        sys::sync();
        let mut mounted = self.mounted.lock().unwrap_or_else(|e| e.into_inner());
        let mut lines = Vec::new();
        while let Some(m) = mounted.pop() {
            let shown = m.mount_point.display();
            let line = match sys::umount(&m.mount_point, 0) {
                Ok(()) => format!("unmounted storage {:?} from {shown}", m.id),
                Err(err) => match sys::umount(&m.mount_point, libc::MNT_DETACH) {
                    Ok(()) => format!("detached busy storage {:?} from {shown} ({err})", m.id),
                    Err(err) => format!("cannot unmount storage {:?} from {shown}: {err}", m.id),
                },
            };
            lines.push(line);
        }
        sys::sync();
        lines
    }
}

/// `err` and its sources, joined by `: `.
pub fn error_chain(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn configure(config: &SandboxConfig) -> Result<(), ConfigureError> {
    // Check everything that can be checked before changing anything.
    let plans = config.interfaces.iter().map(network::plan).collect::<Result<Vec<_>, _>>()?;
    let links = network::links(Path::new(SYS_CLASS_NET))?;
    let targets = plans.iter().map(|p| network::find(&links, &p.mac)).collect::<Result<Vec<_>, _>>()?;
    let resolv = dns::render_resolv_conf(&config.dns)?;
    let own_address = own_address(&plans);
    let hosts = dns::render_hosts(&config.hostname, own_address, &config.hosts)?;

    clock::set(config.clock_unix_ms)?;
    if !config.hostname.is_empty() {
        crate::mounts::set_hostname(&config.hostname)
            .map_err(|source| ConfigureError::Hostname { name: config.hostname.clone(), source })?;
    }
    let mut netlink = network::open()?;
    network::loopback_up(&mut netlink, &links)?;
    for (plan, link) in plans.iter().zip(targets) {
        network::apply(&mut netlink, link, plan)?;
    }
    dns::write_file(Path::new(RESOLV_CONF), &resolv)?;
    dns::write_file(Path::new(ETC_HOSTS), &hosts)?;
    if !config.hostname.is_empty() {
        dns::write_file(Path::new(ETC_HOSTNAME), &format!("{}\n", config.hostname))?;
    }
    Ok(())
}

/// The address the hostname resolves to: the first IPv4 address of the interfaces, else the
/// first address.
fn own_address(plans: &[network::Plan]) -> Option<IpAddr> {
    let all = || plans.iter().flat_map(|p| p.addresses.iter().map(|(ip, _)| *ip));
    all().find(IpAddr::is_ipv4).or_else(|| all().next())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aci_proto::sandbox::{InterfaceConfig, StorageSource};

    #[test]
    fn a_non_init_agent_refuses_to_change_the_machine() {
        let sandbox = Sandbox::new(false);
        let err = sandbox.configure(&SandboxConfig::default()).unwrap_err();
        assert_eq!(err.kind, RemoteErrorKind::InvalidState);
        let mount = StorageMount {
            id: "v".into(),
            mount_point: "/mnt/v".into(),
            source: StorageSource::Tmpfs { size_bytes: None },
            read_only: false,
        };
        assert_eq!(sandbox.mount(&mount).unwrap_err().kind, RemoteErrorKind::InvalidState);
        assert!(sandbox.release().is_empty());
    }

    #[test]
    fn the_hostname_gets_the_first_ipv4_address() {
        let iface = |addresses: &[&str]| {
            network::plan(&InterfaceConfig {
                mac: "02:00:00:00:00:01".into(),
                addresses: addresses.iter().map(|a| (*a).to_owned()).collect(),
                gateway: None,
                mtu: None,
            })
            .unwrap()
        };
        let plans = [iface(&["fd00::2/64"]), iface(&["10.0.0.2/24"])];
        assert_eq!(own_address(&plans), Some("10.0.0.2".parse().unwrap()));
        assert_eq!(own_address(&plans[..1]), Some("fd00::2".parse().unwrap()));
        assert_eq!(own_address(&[]), None);
    }

    #[test]
    fn errors_carry_their_causes() {
        let err = storage::StorageError::CreateMountPoint {
            path: "/x".into(),
            source: std::io::Error::from_raw_os_error(libc::EROFS),
        };
        assert!(
            error_chain(&err).starts_with("cannot create mount point /x: Read-only file system"),
            "{}",
            error_chain(&err)
        );
    }
}
