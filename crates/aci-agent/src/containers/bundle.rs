//! The OCI runtime spec (`config.json`) of a container, generated from the host's
//! [`ContainerConfig`]: process, user, hostname, namespaces, mounts, cgroup limits,
//! capabilities, seccomp, rlimits.
//!
//! Generation is pure (no file is read): the caller resolves the user and says which guest
//! files to bind, so the mapping can be tested on its own.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use aci_proto::container::{ContainerConfig, EnvVar, Resources};
use libcontainer::oci_spec::runtime::{
    get_default_maskedpaths, get_default_readonly_paths, BoxBuilder, Capability, LinuxBuilder,
    LinuxCapabilities, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxMemoryBuilder, LinuxNamespaceBuilder,
    LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, Mount, MountBuilder, PosixRlimitBuilder,
    PosixRlimitType, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};
use libcontainer::oci_spec::OciSpecError;
use thiserror::Error;

use super::seccomp;
use super::user::UserIds;
use crate::init_shim::{self, SHIM_PATH};

/// The `PATH` a container gets when its environment has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The cgroup (below the cgroup2 root) all containers live under.
pub const CGROUP_PARENT: &str = "/aci";
/// The CFS period `cpu.max` is expressed in (µs).
pub const CPU_PERIOD_US: u64 = 100_000;
/// Open files a container may have (soft and hard).
pub const NOFILE_LIMIT: u64 = 1 << 20;

/// The capabilities a container's process keeps (the usual container-runtime default set).
pub const CAPABILITIES: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Everything about a container that is not in its [`ContainerConfig`].
#[derive(Debug, Clone)]
pub struct BundleInputs {
    /// The container's root (the overlay mount), absolute.
    pub rootfs: PathBuf,
    /// The sandbox's hostname.
    pub hostname: String,
    /// The resolved user.
    pub user: UserIds,
    /// Guest files bound read-only into the container: (guest path, container path), e.g.
    /// the sandbox's `/etc/resolv.conf`.
    pub etc_files: Vec<(PathBuf, PathBuf)>,
    /// The init shim (the agent's binary, published in the guest): bound read-only at
    /// [`SHIM_PATH`] and put in front of the command. `None` runs the command directly.
    pub shim: Option<PathBuf>,
}

/// The configuration cannot become a spec; the text names the field.
#[derive(Debug, Error)]
pub enum BundleError {
    /// `args` is empty.
    #[error("args is empty: there is no command to run")]
    NoCommand,
    /// A path field is not absolute, or climbs with `..`.
    #[error("{field} {path:?} must be an absolute path without '..'")]
    BadPath {
        /// The field, e.g. `mounts[1].destination`.
        field: String,
        /// The value.
        path: String,
    },
    /// An environment variable's name is empty or contains `=`.
    #[error("env[{index}] has an invalid name {name:?}")]
    BadEnvName {
        /// Position in `env`.
        index: usize,
        /// The name.
        name: String,
    },
    /// A limit does not fit the kernel's range.
    #[error("resources.{field} = {value} is out of range")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The value.
        value: u64,
    },
    /// The spec builder refused a value.
    #[error("building the OCI spec failed: {0}")]
    Spec(#[from] OciSpecError),
}

/// The container's environment: `env` in order, a later duplicate replacing an earlier one
/// in place; `PATH` (and `HOME`, `TERM` for a terminal) added when missing.
pub fn environment(env: &[EnvVar], home: Option<&str>, tty: bool) -> Result<Vec<String>, BundleError> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(env.len() + 3);
    for (index, var) in env.iter().enumerate() {
        if var.name.is_empty() || var.name.contains('=') || var.name.contains('\0') {
            return Err(BundleError::BadEnvName { index, name: var.name.clone() });
        }
        let value = var.value.expose().to_owned();
        match out.iter_mut().find(|(n, _)| *n == var.name) {
            Some(slot) => slot.1 = value,
            None => out.push((var.name.clone(), value)),
        }
    }
    let mut add_default = |name: &str, value: &str| {
        if !out.iter().any(|(n, _)| n == name) {
            out.push((name.to_owned(), value.to_owned()));
        }
    };
    add_default("PATH", DEFAULT_PATH);
    add_default("HOME", home.unwrap_or("/"));
    if tty {
        add_default("TERM", "xterm");
    }
    Ok(out.into_iter().map(|(n, v)| format!("{n}={v}")).collect())
}

/// Checks `path` is absolute and has no `..`.
pub fn checked_path(field: String, path: &str) -> Result<PathBuf, BundleError> {
    let p = Path::new(path);
    let ok = p.is_absolute() && !p.components().any(|c| c == Component::ParentDir) && !path.contains('\0');
    if ok {
        Ok(p.to_path_buf())
    } else {
        Err(BundleError::BadPath { field, path: path.to_owned() })
    }
}

/// The container's cgroup, below [`CGROUP_PARENT`].
pub fn cgroup_path(name: &str) -> PathBuf {
    Path::new(CGROUP_PARENT).join(name)
}

/// The spec for `config`.
pub fn spec(config: &ContainerConfig, inputs: &BundleInputs) -> Result<Spec, BundleError> {
    if config.args.is_empty() || config.args[0].is_empty() {
        return Err(BundleError::NoCommand);
    }
    let cwd = checked_path("working_dir".into(), config.working_dir.as_deref().unwrap_or("/"))?;
    let env = environment(&config.env, inputs.user.home.as_deref(), config.tty)?;
    let user = UserBuilder::default()
        .uid(inputs.user.uid)
        .gid(inputs.user.gid)
        .additional_gids(inputs.user.additional_gids.clone())
        .build()?;
    let mut process = ProcessBuilder::default();
    if config.tty {
        process = process.console_size(BoxBuilder::default().height(24u64).width(80u64).build()?);
    }
    let process = process
        .terminal(config.tty)
        .user(user)
        .args(match inputs.shim {
            Some(_) => init_shim::wrap(&config.args),
            None => config.args.clone(),
        })
        .env(env)
        .cwd(cwd)
        .capabilities(default_capabilities()?)
        .rlimits(vec![PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .soft(NOFILE_LIMIT)
            .hard(NOFILE_LIMIT)
            .build()?])
        .no_new_privileges(true)
        .build()?;
    let namespaces = [
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Cgroup,
    ]
    .into_iter()
    .map(|typ| LinuxNamespaceBuilder::default().typ(typ).build())
    .collect::<Result<Vec<_>, _>>()?;
    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .cgroups_path(cgroup_path(&config.name))
        .resources(resources(&config.resources)?)
        .masked_paths(get_default_maskedpaths())
        .readonly_paths(get_default_readonly_paths())
        .seccomp(seccomp::profile()?)
        .build()?;
    let mut mounts = default_mounts()?;
    for (source, destination) in &inputs.etc_files {
        mounts.push(bind(source, destination, true)?);
    }
    if let Some(shim) = &inputs.shim {
        mounts.push(bind(shim, Path::new(SHIM_PATH), true)?);
    }
    for (i, m) in config.mounts.iter().enumerate() {
        let source = checked_path(format!("mounts[{i}].source"), &m.source)?;
        if m.destination.contains(':') {
            return Err(BundleError::BadPath {
                field: format!("mounts[{i}].destination"),
                path: m.destination.clone(),
            });
        }
        let destination = checked_path(format!("mounts[{i}].destination"), &m.destination)?;
        mounts.push(bind(&source, &destination, m.read_only)?);
    }
    Ok(SpecBuilder::default()
        .version("1.0.2")
        .root(RootBuilder::default().path(inputs.rootfs.clone()).readonly(false).build()?)
        .hostname(inputs.hostname.clone())
        .process(process)
        .mounts(mounts)
        .linux(linux)
        .build()?)
}

/// The capability set of every container process and exec: [`CAPABILITIES`] bounding,
/// effective and permitted; nothing inheritable or ambient.
pub fn default_capabilities() -> Result<LinuxCapabilities, OciSpecError> {
    let caps: HashSet<Capability> = CAPABILITIES.iter().copied().collect();
    LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .inheritable(HashSet::new())
        .ambient(HashSet::new())
        .build()
}

fn resources(r: &Resources) -> Result<libcontainer::oci_spec::runtime::LinuxResources, BundleError> {
    let mut b = LinuxResourcesBuilder::default();
    if let Some(millis) = r.cpu_millis {
        let quota = millis
            .checked_mul(CPU_PERIOD_US / 1000)
            .filter(|q| *q >= 1000 && i64::try_from(*q).is_ok())
            .ok_or(BundleError::OutOfRange { field: "cpu_millis", value: millis })?;
        b = b.cpu(LinuxCpuBuilder::default().quota(quota as i64).period(CPU_PERIOD_US).build()?);
    }
    if let Some(bytes) = r.memory_bytes {
        let limit = i64::try_from(bytes)
            .ok()
            .filter(|l| *l >= 1 << 20)
            .ok_or(BundleError::OutOfRange { field: "memory_bytes", value: bytes })?;
        b = b.memory(LinuxMemoryBuilder::default().limit(limit).build()?);
    }
    if let Some(pids) = r.pids_max {
        let limit = i64::try_from(pids)
            .ok()
            .filter(|l| *l > 0)
            .ok_or(BundleError::OutOfRange { field: "pids_max", value: pids })?;
        b = b.pids(LinuxPidsBuilder::default().limit(limit).build()?);
    }
    Ok(b.build()?)
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, OciSpecError> {
    MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
        .build()
}

fn bind(source: &Path, destination: &Path, read_only: bool) -> Result<Mount, OciSpecError> {
    let mut options = vec!["rbind".to_owned(), "rprivate".to_owned()];
    if read_only {
        options.push("ro".to_owned());
    }
    MountBuilder::default().destination(destination).typ("bind").source(source).options(options).build()
}

/// /proc, /dev (tmpfs with the standard devices), /dev/pts, /dev/shm, /dev/mqueue, /sys
/// (read-only) and the container's own cgroup at /sys/fs/cgroup (read-only).
fn default_mounts() -> Result<Vec<Mount>, OciSpecError> {
    Ok(vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount("/dev", "tmpfs", "tmpfs", &["nosuid", "strictatime", "mode=755", "size=65536k"])?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        )?,
        mount("/dev/shm", "tmpfs", "shm", &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"])?,
        mount("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"])?,
        mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", "ro"])?,
        mount("/sys/fs/cgroup", "cgroup", "cgroup", &["nosuid", "noexec", "nodev", "relatime", "ro"])?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use aci_proto::container::BindMount;
    use aci_proto::Secret;

    fn env(name: &str, value: &str) -> EnvVar {
        EnvVar { name: name.into(), value: Secret::new(value), secure: false }
    }

    fn inputs() -> BundleInputs {
        BundleInputs {
            rootfs: "/run/aci/containers/web/rootfs".into(),
            hostname: "group-1".into(),
            user: UserIds { uid: 1000, gid: 50, additional_gids: vec![44], home: Some("/home/app".into()) },
            etc_files: vec![("/etc/resolv.conf".into(), "/etc/resolv.conf".into())],
            shim: None,
        }
    }

    fn config() -> ContainerConfig {
        ContainerConfig {
            name: "web".into(),
            image_root: "/run/aci/images/busybox".into(),
            args: vec!["httpd".into(), "-f".into()],
            env: vec![env("A", "1"), env("B", "2"), env("A", "3")],
            working_dir: Some("/www".into()),
            user: Some("app".into()),
            resources: Resources { cpu_millis: Some(500), memory_bytes: Some(64 << 20), pids_max: Some(100) },
            mounts: vec![BindMount {
                source: "/run/aci/volumes/data".into(),
                destination: "/data".into(),
                read_only: true,
            }],
            tty: false,
            stdin: false,
        }
    }

    #[test]
    fn the_config_lands_in_the_spec() {
        let spec = spec(&config(), &inputs()).unwrap();
        let p = spec.process().as_ref().unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &["httpd", "-f"]);
        let env = p.env().as_ref().unwrap();
        assert_eq!(env[..2], ["A=3".to_string(), "B=2".to_string()]);
        assert!(env.contains(&format!("PATH={DEFAULT_PATH}")));
        assert!(env.contains(&"HOME=/home/app".to_string()));
        assert_eq!(p.cwd(), Path::new("/www"));
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 50));
        assert_eq!(p.user().additional_gids().as_ref().unwrap(), &[44]);
        assert_eq!(p.no_new_privileges(), Some(true));
        assert!(p.capabilities().as_ref().unwrap().bounding().as_ref().unwrap().contains(&Capability::Kill));
        assert!(!p
            .capabilities()
            .as_ref()
            .unwrap()
            .bounding()
            .as_ref()
            .unwrap()
            .contains(&Capability::SysAdmin));
        assert_eq!(spec.hostname().as_deref(), Some("group-1"));
        assert_eq!(spec.root().as_ref().unwrap().path(), Path::new("/run/aci/containers/web/rootfs"));

        let linux = spec.linux().as_ref().unwrap();
        assert_eq!(linux.cgroups_path().as_deref(), Some(Path::new("/aci/web")));
        let types: Vec<_> = linux.namespaces().as_ref().unwrap().iter().map(|n| n.typ()).collect();
        assert!(types.contains(&LinuxNamespaceType::Pid) && types.contains(&LinuxNamespaceType::Uts));
        assert!(!types.contains(&LinuxNamespaceType::Network), "containers share the guest's network");
        let r = linux.resources().as_ref().unwrap();
        assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(50_000));
        assert_eq!(r.cpu().as_ref().unwrap().period(), Some(100_000));
        assert_eq!(r.memory().as_ref().unwrap().limit(), Some(64 << 20));
        assert_eq!(r.pids().as_ref().unwrap().limit(), 100);
        assert!(linux.seccomp().as_ref().unwrap().syscalls().as_ref().unwrap()[0]
            .names()
            .contains(&"kexec_load".into()));

        let mounts = spec.mounts().as_ref().unwrap();
        let dests: Vec<_> = mounts.iter().map(|m| m.destination().to_str().unwrap()).collect();
        for d in ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/etc/resolv.conf", "/data"]
        {
            assert!(dests.contains(&d), "{d} missing from {dests:?}");
        }
        let data = mounts.iter().find(|m| m.destination() == Path::new("/data")).unwrap();
        assert_eq!(data.source().as_deref(), Some(Path::new("/run/aci/volumes/data")));
        assert!(data.options().as_ref().unwrap().contains(&"ro".into()));
        let sys = mounts.iter().find(|m| m.destination() == Path::new("/sys")).unwrap();
        assert!(sys.options().as_ref().unwrap().contains(&"ro".into()));
    }

    #[test]
    fn no_limits_means_no_limit_entries_and_a_terminal_gets_term() {
        let mut c = config();
        c.resources = Resources::default();
        c.tty = true;
        c.env.clear();
        let spec = spec(&c, &inputs()).unwrap();
        let r = spec.linux().as_ref().unwrap().resources().as_ref().unwrap();
        assert!(r.cpu().is_none() && r.memory().is_none() && r.pids().is_none());
        let p = spec.process().as_ref().unwrap();
        assert_eq!(p.terminal(), Some(true));
        assert!(p.env().as_ref().unwrap().contains(&"TERM=xterm".to_string()));
    }

    #[test]
    fn the_shim_is_bound_read_only_and_runs_the_command() {
        let mut i = inputs();
        i.shim = Some("/run/aci/init".into());
        let spec = spec(&config(), &i).unwrap();
        let args = spec.process().as_ref().unwrap().args().as_ref().unwrap();
        assert_eq!(args[0], SHIM_PATH);
        assert_eq!(init_shim::unwrap(args).unwrap(), ["httpd", "-f"]);
        let mounts = spec.mounts().as_ref().unwrap();
        let shim = mounts.iter().find(|m| m.destination() == Path::new(SHIM_PATH)).unwrap();
        assert_eq!(shim.source().as_deref(), Some(Path::new("/run/aci/init")));
        assert!(shim.options().as_ref().unwrap().contains(&"ro".into()));
    }

    #[test]
    fn bad_fields_are_named() {
        let mut c = config();
        c.args.clear();
        assert!(matches!(spec(&c, &inputs()), Err(BundleError::NoCommand)));
        let mut c = config();
        c.mounts[0].destination = "data".into();
        let err = spec(&c, &inputs()).unwrap_err().to_string();
        assert!(err.contains("mounts[0].destination"), "{err}");
        let mut c = config();
        c.working_dir = Some("/a/../..".into());
        assert!(spec(&c, &inputs()).unwrap_err().to_string().contains("working_dir"));
        let mut c = config();
        c.env.push(env("X=Y", "1"));
        assert!(spec(&c, &inputs()).unwrap_err().to_string().contains("env[3]"));
        let mut c = config();
        c.resources.memory_bytes = Some(10);
        assert!(spec(&c, &inputs()).unwrap_err().to_string().contains("memory_bytes"));
        let mut c = config();
        c.resources.cpu_millis = Some(1);
        assert!(spec(&c, &inputs()).unwrap_err().to_string().contains("cpu_millis"));
    }

    #[test]
    fn secure_values_do_not_show_in_errors() {
        let mut c = config();
        c.env = vec![EnvVar { name: "BAD=NAME".into(), value: Secret::new("hunter2"), secure: true }];
        let err = spec(&c, &inputs()).unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }
}
