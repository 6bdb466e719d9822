//! Building a container group in code: [`ContainerGroup::builder`] and the `Container`
//! and `InitContainer` chainable setters.

use std::collections::BTreeMap;

use super::container::{
    Container, ContainerProperties, EnvironmentVariable, InitContainer, InitContainerProperties,
    ResourceLimits, ResourceRequirements, SecurityContext, VolumeMount,
};
use super::group::{
    ContainerGroup, ContainerGroupProperties, ImageRegistryCredential, OsType, RestartPolicy, RESOURCE_TYPE,
};
use super::network::{DnsConfig, IpAddress, Port};
use super::probe::Probe;
use super::secret::Secret;
use super::validate::{Limits, ValidationErrors};
use super::volume::Volume;

/// Builds a [`ContainerGroup`]; [`build`](Self::build) validates it.
///
/// ```
/// use aci_core::spec::{Container, ContainerGroup, Probe, RestartPolicy, Volume};
///
/// let group = ContainerGroup::builder("web")
///     .container(
///         Container::new("app", "docker.io/library/nginx:1.27")
///             .cpu(1.0)
///             .memory_gb(1.5)
///             .port(80)
///             .env("MODE", "production")
///             .secure_env("API_KEY", "s3cr3t")
///             .volume_mount("cache", "/var/cache/nginx")
///             .liveness_probe(Probe::http_get("/", 80).period_seconds(5)),
///     )
///     .container(
///         Container::new("sidecar", "docker.io/library/busybox:1.36")
///             .command(["sh", "-c", "while true; do wget -qO- localhost; sleep 5; done"])
///             .cpu(0.5)
///             .memory_gb(0.5),
///     )
///     .volume(Volume::empty_dir("cache"))
///     .public_port(80)
///     .restart_policy(RestartPolicy::OnFailure)
///     .build()?;
///
/// assert_eq!(group.total_cpu(), 1.5);
/// assert!(!group.to_yaml_string()?.contains("s3cr3t"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ContainerGroupBuilder {
    group: ContainerGroup,
}

impl ContainerGroup {
    /// Starts a group named `name`: Linux, restart policy `Always`, no containers yet.
    pub fn builder(name: impl Into<String>) -> ContainerGroupBuilder {
        let properties = ContainerGroupProperties {
            containers: Vec::new(),
            init_containers: Vec::new(),
            image_registry_credentials: Vec::new(),
            restart_policy: RestartPolicy::default(),
            ip_address: None,
            os_type: OsType::Linux,
            volumes: Vec::new(),
            subnet_ids: Vec::new(),
            dns_config: None,
            diagnostics: None,
            sku: None,
            priority: None,
            provisioning_state: None,
            instance_view: None,
        };
        let group = ContainerGroup {
            api_version: None,
            location: None,
            name: name.into(),
            properties,
            resource_type: Some(RESOURCE_TYPE.to_owned()),
            tags: BTreeMap::new(),
            id: None,
            identity: None,
            zones: Vec::new(),
        };
        ContainerGroupBuilder { group }
    }
}

impl ContainerGroupBuilder {
    /// Adds a container.
    pub fn container(mut self, container: Container) -> Self {
        self.group.properties.containers.push(container);
        self
    }

    /// Adds an init container; they run in the order added.
    ///
    /// ```
    /// use aci_core::spec::{Container, ContainerGroup, InitContainer};
    ///
    /// let group = ContainerGroup::builder("job")
    ///     .init_container(InitContainer::new("migrate", "example.org/migrate:1").command(["migrate", "up"]))
    ///     .container(Container::new("app", "example.org/app:1"))
    ///     .build()?;
    /// assert_eq!(group.properties.init_containers.len(), 1);
    /// # Ok::<(), aci_core::spec::ValidationErrors>(())
    /// ```
    pub fn init_container(mut self, container: InitContainer) -> Self {
        self.group.properties.init_containers.push(container);
        self
    }

    /// Adds a volume.
    pub fn volume(mut self, volume: Volume) -> Self {
        self.group.properties.volumes.push(volume);
        self
    }

    /// Sets the restart policy.
    pub fn restart_policy(mut self, policy: RestartPolicy) -> Self {
        self.group.properties.restart_policy = policy;
        self
    }

    /// Sets the whole IP configuration.
    pub fn ip_address(mut self, ip: IpAddress) -> Self {
        self.group.properties.ip_address = Some(ip);
        self
    }

    /// Publishes TCP `port` on the group's IP (a public IP unless one was set).
    pub fn public_port(self, port: u16) -> Self {
        self.published(Port::tcp(port))
    }

    /// Publishes `port` (with its protocol) on the group's IP.
    pub fn published(mut self, port: Port) -> Self {
        let ip = self.group.properties.ip_address.get_or_insert_with(|| IpAddress::public([]));
        ip.ports.push(port);
        self
    }

    /// Sets the DNS name label of the group's IP (a public IP unless one was set).
    pub fn dns_name_label(mut self, label: impl Into<String>) -> Self {
        let ip = self.group.properties.ip_address.get_or_insert_with(|| IpAddress::public([]));
        ip.dns_name_label = Some(label.into());
        self
    }

    /// Adds registry credentials.
    pub fn image_registry_credential(mut self, credential: ImageRegistryCredential) -> Self {
        self.group.properties.image_registry_credentials.push(credential);
        self
    }

    /// Sets the resolver configuration.
    pub fn dns_config(mut self, dns: DnsConfig) -> Self {
        self.group.properties.dns_config = Some(dns);
        self
    }

    /// Sets the location (informational).
    pub fn location(mut self, location: impl Into<String>) -> Self {
        self.group.location = Some(location.into());
        self
    }

    /// Adds a tag.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.group.tags.insert(key.into(), value.into());
        self
    }

    /// Validates with the default [`Limits`] and returns the group.
    pub fn build(self) -> Result<ContainerGroup, ValidationErrors> {
        self.build_with(&Limits::default())
    }

    /// Validates with `limits` and returns the group.
    pub fn build_with(self, limits: &Limits) -> Result<ContainerGroup, ValidationErrors> {
        self.group.validate_with(limits)?;
        Ok(self.group)
    }

    /// Returns the group without validating it.
    pub fn build_unchecked(self) -> ContainerGroup {
        self.group
    }
}

impl Container {
    /// A container running `image` with ACI's CLI defaults: 1 CPU and 1.5 GB requested.
    pub fn new(name: impl Into<String>, image: impl Into<String>) -> Self {
        let properties = ContainerProperties {
            image: image.into(),
            command: Vec::new(),
            ports: Vec::new(),
            environment_variables: Vec::new(),
            resources: ResourceRequirements::new(1.0, 1.5),
            volume_mounts: Vec::new(),
            liveness_probe: None,
            readiness_probe: None,
            security_context: None,
            stdin: false,
            instance_view: None,
        };
        Self { name: name.into(), properties }
    }

    /// Sets the exec-form command (replaces the image's entrypoint).
    pub fn command<S: Into<String>>(mut self, argv: impl IntoIterator<Item = S>) -> Self {
        self.properties.command = argv.into_iter().map(Into::into).collect();
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.environment_variables.push(EnvironmentVariable::new(name, value));
        self
    }

    /// Adds a secret environment variable (`secureValue`).
    pub fn secure_env(mut self, name: impl Into<String>, value: impl Into<Secret>) -> Self {
        self.properties.environment_variables.push(EnvironmentVariable::secure(name, value));
        self
    }

    /// Sets the CPU request (cores, fractional allowed).
    pub fn cpu(mut self, cores: f64) -> Self {
        self.properties.resources.requests.cpu = cores;
        self
    }

    /// Sets the memory request in GB.
    pub fn memory_gb(mut self, gb: f64) -> Self {
        self.properties.resources.requests.memory_in_gb = gb;
        self
    }

    /// Sets the CPU limit (defaults to the request; at most the group's total request).
    pub fn cpu_limit(mut self, cores: f64) -> Self {
        self.limits().cpu = Some(cores);
        self
    }

    /// Sets the memory limit in GB (defaults to the request; at most the group's total).
    pub fn memory_limit_gb(mut self, gb: f64) -> Self {
        self.limits().memory_in_gb = Some(gb);
        self
    }

    fn limits(&mut self) -> &mut ResourceLimits {
        self.properties.resources.limits.get_or_insert_with(ResourceLimits::default)
    }

    /// Declares a TCP port the container listens on.
    pub fn port(mut self, port: u16) -> Self {
        self.properties.ports.push(Port { protocol: None, port });
        self
    }

    /// Declares a UDP port the container listens on.
    pub fn udp_port(mut self, port: u16) -> Self {
        self.properties.ports.push(Port::udp(port));
        self
    }

    /// Mounts volume `name` at `mount_path`, read-write.
    pub fn volume_mount(mut self, name: impl Into<String>, mount_path: impl Into<String>) -> Self {
        self.properties.volume_mounts.push(mount(name, mount_path, None));
        self
    }

    /// Mounts volume `name` at `mount_path`, read-only.
    pub fn read_only_volume_mount(mut self, name: impl Into<String>, mount_path: impl Into<String>) -> Self {
        self.properties.volume_mounts.push(mount(name, mount_path, Some(true)));
        self
    }

    /// Sets the liveness probe.
    pub fn liveness_probe(mut self, probe: Probe) -> Self {
        self.properties.liveness_probe = Some(probe);
        self
    }

    /// Sets the readiness probe.
    pub fn readiness_probe(mut self, probe: Probe) -> Self {
        self.properties.readiness_probe = Some(probe);
        self
    }

    /// Sets the security context.
    pub fn security_context(mut self, context: SecurityContext) -> Self {
        self.properties.security_context = Some(context);
        self
    }

    /// Gives the main process a stdin pipe for `Runtime::attach` (aci extension `stdin`).
    pub fn stdin(mut self, open: bool) -> Self {
        self.properties.stdin = open;
        self
    }
}

impl InitContainer {
    /// An init container running `image`.
    pub fn new(name: impl Into<String>, image: impl Into<String>) -> Self {
        let properties = InitContainerProperties {
            image: image.into(),
            command: Vec::new(),
            environment_variables: Vec::new(),
            volume_mounts: Vec::new(),
            security_context: None,
            instance_view: None,
        };
        Self { name: name.into(), properties }
    }

    /// Sets the exec-form command.
    pub fn command<S: Into<String>>(mut self, argv: impl IntoIterator<Item = S>) -> Self {
        self.properties.command = argv.into_iter().map(Into::into).collect();
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.environment_variables.push(EnvironmentVariable::new(name, value));
        self
    }

    /// Adds a secret environment variable (`secureValue`).
    pub fn secure_env(mut self, name: impl Into<String>, value: impl Into<Secret>) -> Self {
        self.properties.environment_variables.push(EnvironmentVariable::secure(name, value));
        self
    }

    /// Mounts volume `name` at `mount_path`, read-write.
    pub fn volume_mount(mut self, name: impl Into<String>, mount_path: impl Into<String>) -> Self {
        self.properties.volume_mounts.push(mount(name, mount_path, None));
        self
    }
}

fn mount(name: impl Into<String>, mount_path: impl Into<String>, read_only: Option<bool>) -> VolumeMount {
    VolumeMount { name: name.into(), mount_path: mount_path.into(), read_only }
}
