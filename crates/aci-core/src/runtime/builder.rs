//! [`RuntimeBuilder`]: the runtime's configuration (plain data) and `build()`.

use std::path::PathBuf;
use std::time::Duration;

use super::accounting::PriceTable;
use super::api::Runtime;
use super::error::RuntimeError;
use super::log_sink::DEFAULT_LOG_FILE_CAP;
use super::network::NetworkSettings;
use super::restart::BackoffPolicy;
use super::sizing::SizingPolicy;
use super::volumes::VolumeSettings;
use crate::images::{ImageStoreConfig, PullPolicy};

/// The environment variable naming the directory with the guest kernel (`vmlinux`) and
/// initramfs (`initramfs.cpio.gz`) when the builder is not given their paths.
pub const GUEST_DIR_ENV: &str = "ACI_GUEST_DIR";

/// Everything the runtime was configured with.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Group records, consoles and (unless set apart) the image store.
    pub state_dir: PathBuf,
    /// Where the VMs' vsock Unix sockets are made (a local filesystem; short path).
    pub socket_dir: PathBuf,
    /// The guest kernel.
    pub guest_kernel: PathBuf,
    /// The guest initramfs with the agent.
    pub guest_initrd: PathBuf,
    /// The guest kernel command line.
    pub kernel_cmdline: String,
    /// The image store's configuration.
    pub images: ImageStoreConfig,
    /// When pulls talk to the registry.
    pub pull_policy: PullPolicy,
    /// VM sizing.
    pub sizing: SizingPolicy,
    /// Restart back-off.
    pub backoff: BackoffPolicy,
    /// Prices for the meter.
    pub prices: PriceTable,
    /// How long to wait for the agent's hello after boot.
    pub agent_timeout: Duration,
    /// How often usage is polled from the agent (and the record's heartbeat written).
    pub stats_interval: Duration,
    /// How long a container may take to exit after SIGTERM before SIGKILL.
    pub stop_grace: Duration,
    /// Host networking (off by default: groups have loopback only).
    pub network: Option<NetworkSettings>,
    /// Volume drivers' settings (`azureFile` servers, the `git` program).
    pub volumes: VolumeSettings,
    /// The most bytes of log files kept per container (see [`RuntimeBuilder::log_file_cap`]).
    pub log_file_cap: u64,
}

/// Builds a [`Runtime`].
///
/// ```no_run
/// use aci_core::runtime::Runtime;
/// # async fn run() -> Result<(), aci_core::runtime::RuntimeError> {
/// let runtime = Runtime::builder()
///     .state_dir("/var/lib/aci")
///     .guest_kernel("/usr/lib/aci/vmlinux")
///     .guest_initrd("/usr/lib/aci/initramfs.cpio.gz")
///     .insecure_registry("127.0.0.1:5000")
///     .build()?;
/// for group in runtime.list() {
///     println!("{} {}", group.name, group.state.as_str());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Default, Clone)]
pub struct RuntimeBuilder {
    state_dir: Option<PathBuf>,
    socket_dir: Option<PathBuf>,
    guest_kernel: Option<PathBuf>,
    guest_initrd: Option<PathBuf>,
    kernel_cmdline: Option<String>,
    image_dir: Option<PathBuf>,
    insecure: Vec<String>,
    pull_policy: PullPolicy,
    sizing: Option<SizingPolicy>,
    backoff: Option<BackoffPolicy>,
    prices: Option<PriceTable>,
    agent_timeout: Option<Duration>,
    stats_interval: Option<Duration>,
    stop_grace: Option<Duration>,
    network: Option<NetworkSettings>,
    volumes: VolumeSettings,
    log_file_cap: Option<u64>,
}

impl RuntimeBuilder {
    /// The state directory (required): group records, consoles, the image store.
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// Where vsock sockets go (default `$TMPDIR/aci-<uid>`); Unix socket paths are limited
    /// to 107 bytes and cannot live on every filesystem (not on 9p).
    pub fn socket_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.socket_dir = Some(dir.into());
        self
    }

    /// The guest kernel (default `$ACI_GUEST_DIR/vmlinux`).
    pub fn guest_kernel(mut self, path: impl Into<PathBuf>) -> Self {
        self.guest_kernel = Some(path.into());
        self
    }

    /// The guest initramfs (default `$ACI_GUEST_DIR/initramfs.cpio.gz`).
    pub fn guest_initrd(mut self, path: impl Into<PathBuf>) -> Self {
        self.guest_initrd = Some(path.into());
        self
    }

    /// The guest kernel command line (default [`aci_vmm::DEFAULT_CMDLINE`]).
    pub fn kernel_cmdline(mut self, cmdline: impl Into<String>) -> Self {
        self.kernel_cmdline = Some(cmdline.into());
        self
    }

    /// Keep the image store somewhere else than `<state_dir>/images` (share it between
    /// runtimes' state directories).
    pub fn image_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.image_dir = Some(dir.into());
        self
    }

    /// A registry host (`127.0.0.1:5000`) spoken to over plain HTTP.
    pub fn insecure_registry(mut self, host: impl Into<String>) -> Self {
        self.insecure.push(host.into());
        self
    }

    /// When pulls talk to the registry (default: only for images not in the cache).
    pub fn pull_policy(mut self, policy: PullPolicy) -> Self {
        self.pull_policy = policy;
        self
    }

    /// VM sizing (default: [`SizingPolicy::default`]).
    pub fn sizing(mut self, policy: SizingPolicy) -> Self {
        self.sizing = Some(policy);
        self
    }

    /// Restart back-off (default 10 s doubling to 5 min).
    pub fn backoff(mut self, policy: BackoffPolicy) -> Self {
        self.backoff = Some(policy);
        self
    }

    /// The price table (default [`PriceTable::default`]).
    pub fn prices(mut self, prices: PriceTable) -> Self {
        self.prices = Some(prices);
        self
    }

    /// How long to wait for the agent after boot (default 60 s).
    pub fn agent_timeout(mut self, timeout: Duration) -> Self {
        self.agent_timeout = Some(timeout);
        self
    }

    /// How often usage is polled and the record's heartbeat written (default 2 s).
    pub fn stats_interval(mut self, interval: Duration) -> Self {
        self.stats_interval = Some(interval);
        self
    }

    /// SIGTERM-to-SIGKILL grace for in-place restarts (default 10 s).
    pub fn stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = Some(grace);
        self
    }

    /// Gives every group a network interface on an `aci-net` network and publishes the
    /// ports of groups with a public `ipAddress` (needs root: namespaces, bridges, taps,
    /// nftables). [`NetworkSettings::new`] puts the networks' state under a directory.
    pub fn networking(mut self, settings: NetworkSettings) -> Self {
        self.network = Some(settings);
        self
    }

    /// Serves `azureFile` shares of `storage_account` from `server` (an address, or a name
    /// resolved on the host) instead of `<account>.file.core.windows.net`: your own SMB
    /// server, or a local Samba in tests.
    pub fn azure_file_server(
        mut self,
        storage_account: impl Into<String>,
        server: impl Into<String>,
    ) -> Self {
        self.volumes.azure_file_servers.insert(storage_account.into(), server.into());
        self
    }

    /// The `git` program `gitRepo` volumes are cloned with (default `git` on `PATH`).
    pub fn git_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.volumes.git_program = program.into();
        self
    }

    /// The most bytes of log files kept on the host per container (default
    /// [`DEFAULT_LOG_FILE_CAP`], 16 MiB): once a container's file reaches half of it, it
    /// becomes the older half and a new file starts, so the most recent half-cap to cap
    /// of its lines are kept (`docs/runtime.md`, "Logs").
    pub fn log_file_cap(mut self, bytes: u64) -> Self {
        self.log_file_cap = Some(bytes);
        self
    }

    /// The configuration this builder describes (paths are checked by [`Self::build`]).
    pub fn config(&self) -> Result<RuntimeConfig, RuntimeError> {
        let state_dir =
            self.state_dir.clone().ok_or_else(|| RuntimeError::Config("state_dir is required".into()))?;
        let guest_dir = std::env::var_os(GUEST_DIR_ENV).map(PathBuf::from);
        let guest = |given: &Option<PathBuf>, file: &str| -> Result<PathBuf, RuntimeError> {
            given.clone().or_else(|| guest_dir.as_ref().map(|d| d.join(file))).ok_or_else(|| {
                RuntimeError::Config(format!(
                    "no guest {file}: call guest_kernel/guest_initrd or set {GUEST_DIR_ENV} \
                     (cargo xtask guest builds them into target/guest)"
                ))
            })
        };
        let guest_kernel = guest(&self.guest_kernel, "vmlinux")?;
        let guest_initrd = guest(&self.guest_initrd, "initramfs.cpio.gz")?;
        // SAFETY: getuid has no preconditions and cannot fail.
        let uid = unsafe { libc::getuid() };
        let socket_dir =
            self.socket_dir.clone().unwrap_or_else(|| std::env::temp_dir().join(format!("aci-{uid}")));
        let mut images =
            ImageStoreConfig::new(self.image_dir.clone().unwrap_or_else(|| state_dir.join("images")));
        images.insecure_registries = self.insecure.clone();
        Ok(RuntimeConfig {
            state_dir,
            socket_dir,
            guest_kernel,
            guest_initrd,
            kernel_cmdline: self
                .kernel_cmdline
                .clone()
                .unwrap_or_else(|| aci_vmm::DEFAULT_CMDLINE.to_string()),
            images,
            pull_policy: self.pull_policy,
            sizing: self.sizing.unwrap_or_default(),
            backoff: self.backoff.unwrap_or_default(),
            prices: self.prices.clone().unwrap_or_default(),
            agent_timeout: self.agent_timeout.unwrap_or(Duration::from_secs(60)),
            stats_interval: self.stats_interval.unwrap_or(Duration::from_secs(2)),
            stop_grace: self.stop_grace.unwrap_or(Duration::from_secs(10)),
            network: self.network.clone(),
            volumes: self.volumes.clone(),
            log_file_cap: self.log_file_cap.unwrap_or(DEFAULT_LOG_FILE_CAP),
        })
    }

    /// Checks the guest artifacts exist, takes the state directory's lock, opens the image
    /// store and loads the group records (groups that were active when their process ended
    /// are marked `Stopped` with the reason).
    pub fn build(self) -> Result<Runtime, RuntimeError> {
        let config = self.config()?;
        for (what, path) in [("kernel", &config.guest_kernel), ("initramfs", &config.guest_initrd)] {
            if !path.is_file() {
                return Err(RuntimeError::Config(format!(
                    "the guest {what} {} does not exist (cargo xtask guest builds it)",
                    path.display()
                )));
            }
        }
        Runtime::open(config)
    }
}
