//! The parts of an OCI/Docker image config that a container group needs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What the image says about how to run it (from the config blob).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `Env` as `KEY=value`.
    pub env: Vec<String>,
    /// `WorkingDir` (empty when unset).
    pub working_dir: String,
    /// `User` (empty when unset).
    pub user: String,
    /// `ExposedPorts` keys (`80/tcp`), sorted.
    pub exposed_ports: Vec<String>,
    /// `os`.
    pub os: String,
    /// `architecture`.
    pub architecture: String,
}

#[derive(Deserialize)]
struct RawImage {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    config: Option<RawConfig>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RawConfig {
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    env: Option<Vec<String>>,
    working_dir: Option<String>,
    user: Option<String>,
    exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
}

impl ImageConfig {
    /// Parses a config blob.
    pub fn from_json(data: &[u8]) -> Result<Self, serde_json::Error> {
        let raw: RawImage = serde_json::from_slice(data)?;
        let c = raw.config.unwrap_or_default();
        Ok(Self {
            entrypoint: c.entrypoint.unwrap_or_default(),
            cmd: c.cmd.unwrap_or_default(),
            env: c.env.unwrap_or_default(),
            working_dir: c.working_dir.unwrap_or_default(),
            user: c.user.unwrap_or_default(),
            exposed_ports: c.exposed_ports.unwrap_or_default().into_keys().collect(),
            os: raw.os,
            architecture: raw.architecture,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_style_config() {
        let json = br#"{"architecture":"amd64","os":"linux","config":{"Entrypoint":null,
            "Cmd":["nginx","-g","daemon off;"],"Env":["PATH=/usr/bin"],"WorkingDir":"/srv",
            "User":"101","ExposedPorts":{"80/tcp":{},"443/tcp":{}}},"rootfs":{}}"#;
        let c = ImageConfig::from_json(json).unwrap();
        assert!(c.entrypoint.is_empty());
        assert_eq!(c.cmd, ["nginx", "-g", "daemon off;"]);
        assert_eq!((c.working_dir.as_str(), c.user.as_str()), ("/srv", "101"));
        assert_eq!(c.exposed_ports, ["443/tcp", "80/tcp"]);
        assert_eq!(ImageConfig::from_json(b"{}").unwrap(), ImageConfig::default());
    }
}
