//! From spec + image config to what the agent runs ([`ContainerConfig`]).
//!
//! - argv: ACI's `command` replaces the image's Entrypoint **and** Cmd; without it, the
//!   image's Entrypoint followed by its Cmd. An empty result is an error naming the
//!   container.
//! - environment: the image's `Env`, then the group's variables; a group variable replaces
//!   the image's of the same name in place. `PATH` gets the usual default when neither sets
//!   it. `secureValue`s are marked secure (never logged by either side).
//! - working directory and user: the image's (`securityContext.runAsUser`/`runAsGroup`
//!   override the user).
//! - limits: cgroup `cpu.max` and `memory.max` from the limits, else the requests.

use aci_proto::container::{ContainerConfig, EnvVar, Resources};
use aci_proto::Secret as WireSecret;
use thiserror::Error;

use crate::images::ImageConfig;
use crate::spec::{EnvironmentVariable, SecurityContext};

/// The `PATH` a container gets when neither its image nor its spec sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A container's process could not be worked out.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ResolveError {
    /// Neither `command` nor the image's Entrypoint/Cmd says what to run.
    #[error("container {container:?}: no command, and image {image:?} has no Entrypoint or Cmd")]
    NoCommand {
        /// The container.
        container: String,
        /// Its image.
        image: String,
    },
    /// A variable has neither `value` nor `secureValue`, or its secure value was withheld
    /// (a spec read back from `get` output or the state directory).
    #[error(
        "container {container:?}: environment variable {variable:?} has no value (a withheld \
         secureValue must be given again)"
    )]
    MissingValue {
        /// The container.
        container: String,
        /// The variable.
        variable: String,
    },
}

/// The parts of a spec container that decide its process (app and init containers alike).
#[derive(Debug, Clone, Copy)]
pub struct ContainerInput<'a> {
    /// The container's name.
    pub name: &'a str,
    /// Its image reference (for errors).
    pub image: &'a str,
    /// ACI `command`.
    pub command: &'a [String],
    /// ACI `environmentVariables`.
    pub env: &'a [EnvironmentVariable],
    /// ACI `securityContext`.
    pub security: Option<&'a SecurityContext>,
    /// cgroup limits (none for init containers).
    pub resources: Resources,
}

/// Resolves the agent's [`ContainerConfig`] for `input` running `image` mounted at
/// `image_root` in the guest.
pub fn container_config(
    input: &ContainerInput<'_>,
    image: &ImageConfig,
    image_root: &str,
) -> Result<ContainerConfig, ResolveError> {
    Ok(ContainerConfig {
        name: input.name.to_string(),
        image_root: image_root.to_string(),
        args: argv(input, image)?,
        env: environment(input, image)?,
        working_dir: (!image.working_dir.is_empty()).then(|| image.working_dir.clone()),
        user: user(input.security, &image.user),
        resources: input.resources,
        mounts: Vec::new(),
        tty: false,
        stdin: false,
    })
}

/// The argv: `command`, else Entrypoint + Cmd.
pub fn argv(input: &ContainerInput<'_>, image: &ImageConfig) -> Result<Vec<String>, ResolveError> {
    let args: Vec<String> = if input.command.is_empty() {
        image.entrypoint.iter().chain(&image.cmd).cloned().collect()
    } else {
        input.command.to_vec()
    };
    if args.is_empty() || args[0].is_empty() {
        return Err(ResolveError::NoCommand { container: input.name.into(), image: input.image.into() });
    }
    Ok(args)
}

/// The environment: the image's, overridden and extended by the spec's.
pub fn environment(input: &ContainerInput<'_>, image: &ImageConfig) -> Result<Vec<EnvVar>, ResolveError> {
    let mut env: Vec<EnvVar> = image
        .env
        .iter()
        .map(|kv| {
            let (name, value) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
            EnvVar { name: name.to_string(), value: WireSecret::new(value), secure: false }
        })
        .collect();
    for var in input.env {
        let secure = var.secure_value.is_some();
        let value = var.effective_value().ok_or_else(|| ResolveError::MissingValue {
            container: input.name.into(),
            variable: var.name.clone(),
        })?;
        let entry = EnvVar { name: var.name.clone(), value: WireSecret::new(value), secure };
        match env.iter_mut().find(|e| e.name == var.name) {
            Some(existing) => *existing = entry,
            None => env.push(entry),
        }
    }
    if !env.iter().any(|e| e.name == "PATH") {
        env.insert(0, EnvVar { name: "PATH".into(), value: WireSecret::new(DEFAULT_PATH), secure: false });
    }
    Ok(env)
}

/// The user: `runAsUser[:runAsGroup]` when set, else the image's `User`.
pub fn user(security: Option<&SecurityContext>, image_user: &str) -> Option<String> {
    let sc = security.and_then(|s| s.run_as_user.map(|u| (u, s.run_as_group)));
    match sc {
        Some((uid, Some(gid))) => Some(format!("{uid}:{gid}")),
        Some((uid, None)) => Some(uid.to_string()),
        None => (!image_user.is_empty()).then(|| image_user.to_string()),
    }
}

/// cgroup limits from an app container's resources: the limits, else the requests.
pub fn limits(resources: &crate::spec::ResourceRequirements) -> Resources {
    let cpu = resources.cpu_limit();
    let gb = resources.memory_limit_in_gb();
    Resources {
        cpu_millis: (cpu > 0.0).then(|| (cpu * 1000.0).round() as u64),
        memory_bytes: (gb > 0.0).then(|| (gb * 1024.0 * 1024.0 * 1024.0).round() as u64),
        pids_max: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{ResourceLimits, ResourceRequirements};

    fn image() -> ImageConfig {
        ImageConfig {
            entrypoint: vec!["/bin/sh".into()],
            cmd: vec!["-c".into(), "echo hi".into()],
            env: vec!["FOO=bar".into(), "PATH=/bin".into(), "EMPTY=".into()],
            working_dir: "/srv".into(),
            user: "1000:1000".into(),
            ..Default::default()
        }
    }

    fn input<'a>(command: &'a [String], env: &'a [EnvironmentVariable]) -> ContainerInput<'a> {
        ContainerInput {
            name: "app",
            image: "busybox",
            command,
            env,
            security: None,
            resources: Resources::default(),
        }
    }

    #[test]
    fn command_replaces_entrypoint_and_cmd() {
        assert_eq!(argv(&input(&[], &[]), &image()).unwrap(), ["/bin/sh", "-c", "echo hi"]);
        let cmd = vec!["/bin/busybox".to_string(), "httpd".into(), "-f".into()];
        assert_eq!(argv(&input(&cmd, &[]), &image()).unwrap(), cmd);
        let err = argv(&input(&[], &[]), &ImageConfig::default()).unwrap_err();
        assert!(err.to_string().contains("\"app\""), "{err}");
    }

    #[test]
    fn spec_env_overrides_in_place_and_secure_values_are_marked() {
        let vars = vec![
            EnvironmentVariable::new("FOO", "baz"),
            EnvironmentVariable::secure("TOKEN", "s3cret"),
            EnvironmentVariable::new("NEW", "1"),
        ];
        let env = environment(&input(&[], &vars), &image()).unwrap();
        let names: Vec<&str> = env.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["FOO", "PATH", "EMPTY", "TOKEN", "NEW"]);
        assert_eq!(env[0].value.expose(), "baz");
        assert!(env[3].secure && env[3].value.expose() == "s3cret");
        assert!(!format!("{env:?}").contains("s3cret"));
        let env = environment(&input(&[], &[]), &ImageConfig::default()).unwrap();
        assert_eq!((env[0].name.as_str(), env[0].value.expose()), ("PATH", DEFAULT_PATH));
    }

    #[test]
    fn a_withheld_secret_is_an_error_naming_the_variable() {
        let vars = vec![EnvironmentVariable {
            name: "TOKEN".into(),
            value: None,
            secure_value: Some(crate::spec::Secret::withheld()),
        }];
        let err = environment(&input(&[], &vars), &image()).unwrap_err();
        assert!(err.to_string().contains("TOKEN"), "{err}");
    }

    #[test]
    fn user_working_dir_and_limits() {
        let sc = SecurityContext { run_as_user: Some(0), ..Default::default() };
        assert_eq!(user(Some(&sc), "1000:1000").as_deref(), Some("0"));
        let sc = SecurityContext { run_as_user: Some(5), run_as_group: Some(6), ..Default::default() };
        assert_eq!(user(Some(&sc), "").as_deref(), Some("5:6"));
        assert_eq!(user(None, "").as_deref(), None);
        let c = container_config(&input(&[], &[]), &image(), "/run/aci/images/img0").unwrap();
        assert_eq!((c.working_dir.as_deref(), c.user.as_deref()), (Some("/srv"), Some("1000:1000")));
        let mut r = ResourceRequirements::new(0.5, 0.25);
        assert_eq!(limits(&r).cpu_millis, Some(500));
        assert_eq!(limits(&r).memory_bytes, Some(256 << 20));
        r.limits = Some(ResourceLimits { cpu: Some(1.0), ..Default::default() });
        assert_eq!(limits(&r).cpu_millis, Some(1000));
    }
}
