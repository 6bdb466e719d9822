//! Reading and writing container group files: ACI YAML, a JSON resource, or an ARM template.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::arm;
use super::group::ContainerGroup;

/// Why a container group file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("could not read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file name does not say YAML or JSON.
    #[error("cannot tell the format of {}: expected a .yaml, .yml or .json file", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// The file's content is wrong; wraps the error with the file's name.
    #[error("invalid container group file {}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong in it.
        #[source]
        source: Box<LoadError>,
    },
    /// Syntax error, unknown field, wrong type or missing field, at `path`.
    #[error("{}{message}", at(path))]
    Parse {
        /// Where, as `properties.containers[0].properties.image` (empty for the whole file).
        path: String,
        /// What is wrong (from the parser, with line and column when it knows them).
        message: String,
    },
    /// An ARM template expression aci cannot evaluate.
    #[error("{}cannot evaluate ARM expression `{expression}`: {reason}", at(path))]
    Expression {
        /// The field holding it.
        path: String,
        /// The expression.
        expression: String,
        /// Why.
        reason: String,
    },
    /// The ARM template has no `Microsoft.ContainerInstance/containerGroups` resource.
    #[error("the ARM template has no Microsoft.ContainerInstance/containerGroups resource")]
    NoContainerGroup,
    /// The ARM template has several container groups; aci loads one group per file.
    #[error("the ARM template has several container groups ({}); keep one per file", paths.join(", "))]
    SeveralContainerGroups {
        /// Where they are.
        paths: Vec<String>,
    },
}

/// `path: ` before a message, or nothing for the whole document.
fn at(path: &str) -> String {
    if path.is_empty() || path == "." {
        String::new()
    } else {
        format!("{path}: ")
    }
}

/// Why a container group could not be written out.
#[derive(Debug, thiserror::Error)]
#[error("could not encode the container group as {format}")]
pub struct EncodeError {
    format: &'static str,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

/// Inputs for ARM templates that a file alone does not give.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadOptions {
    /// Values for `[parameters('name')]`, over the parameters' `defaultValue`s.
    pub parameters: BTreeMap<String, Value>,
    /// What `[resourceGroup().location]` gives; [`LoadOptions::LOCAL_LOCATION`] by default.
    pub resource_group_location: String,
}

impl LoadOptions {
    /// The location of a local runtime, the default for `[resourceGroup().location]`.
    pub const LOCAL_LOCATION: &'static str = "local";

    /// Sets the value of template parameter `name`.
    pub fn parameter(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.parameters.insert(name.into(), value.into());
        self
    }
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self { parameters: BTreeMap::new(), resource_group_location: Self::LOCAL_LOCATION.to_owned() }
    }
}

/// The text formats of a container group file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// ACI YAML (`az container create --file`).
    Yaml,
    /// A JSON resource, or an ARM template holding one.
    Json,
}

impl Format {
    /// The format a file name's extension says (`.yaml`, `.yml`, `.json`, any case).
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "yaml" | "yml" => Some(Self::Yaml),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

impl ContainerGroup {
    /// Loads an ACI YAML file's text (or an ARM template written in YAML).
    ///
    /// ```
    /// use aci_core::spec::ContainerGroup;
    ///
    /// let group = ContainerGroup::from_yaml_str(r#"
    /// apiVersion: 2019-12-01
    /// location: eastus
    /// name: hello
    /// properties:
    ///   containers:
    ///   - name: app
    ///     properties:
    ///       image: mcr.microsoft.com/azuredocs/aci-helloworld:latest
    ///       resources:
    ///         requests: {cpu: 1, memoryInGb: 1.5}
    ///       ports: [{port: 80}]
    ///   osType: Linux
    ///   ipAddress: {type: Public, ports: [{protocol: tcp, port: 80}]}
    /// type: Microsoft.ContainerInstance/containerGroups
    /// "#)?;
    /// assert_eq!(group.properties.containers[0].name, "app");
    /// group.validate()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_yaml_str(text: &str) -> Result<Self, LoadError> {
        Self::from_str_as(text, Format::Yaml, &LoadOptions::default())
    }

    /// Loads a JSON container group resource, or the container group of an ARM template.
    pub fn from_json_str(text: &str) -> Result<Self, LoadError> {
        Self::from_str_as(text, Format::Json, &LoadOptions::default())
    }

    /// Loads text in `format`, with `options` for ARM template parameters and location.
    pub fn from_str_as(text: &str, format: Format, options: &LoadOptions) -> Result<Self, LoadError> {
        let doc: Value = match format {
            Format::Yaml => parse(serde_yaml_ng::Deserializer::from_str(text))?,
            Format::Json => parse_json(text)?,
        };
        if arm::is_template(&doc) {
            let (prefix, resource) = arm::container_group_resource(&doc, options)?;
            return parse(resource).map_err(|err| match err {
                LoadError::Parse { path, message } => {
                    LoadError::Parse { path: arm::prefixed(&prefix, &path), message }
                }
                other => other,
            });
        }
        // Parse the text again, not `doc`, so errors keep their line and column.
        match format {
            Format::Yaml => parse(serde_yaml_ng::Deserializer::from_str(text)),
            Format::Json => parse_json(text),
        }
    }

    /// Loads a file, YAML or JSON by its extension; errors name the file.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        Self::from_path_with(path, &LoadOptions::default())
    }

    /// Like [`ContainerGroup::from_path`], with `options` for ARM templates.
    pub fn from_path_with(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Self, LoadError> {
        let path = path.as_ref();
        let format =
            Format::from_path(path).ok_or_else(|| LoadError::UnknownFormat { path: path.to_owned() })?;
        let text = std::fs::read_to_string(path)
            .map_err(|source| LoadError::Read { path: path.to_owned(), source })?;
        Self::from_str_as(&text, format, options)
            .map_err(|source| LoadError::File { path: path.to_owned(), source: Box::new(source) })
    }

    /// The group as ACI YAML. Secrets are written as [`Secret::REDACTED`](super::Secret::REDACTED).
    pub fn to_yaml_string(&self) -> Result<String, EncodeError> {
        serde_yaml_ng::to_string(self).map_err(|e| EncodeError { format: "YAML", source: Box::new(e) })
    }

    /// The group as pretty-printed JSON. Secrets are written as
    /// [`Secret::REDACTED`](super::Secret::REDACTED).
    pub fn to_json_string(&self) -> Result<String, EncodeError> {
        serde_json::to_string_pretty(self).map_err(|e| EncodeError { format: "JSON", source: Box::new(e) })
    }
}

/// Deserializes with the failing field's path in the error.
fn parse<'de, D, T>(de: D) -> Result<T, LoadError>
where
    D: serde::Deserializer<'de>,
    T: DeserializeOwned,
{
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let message = err.inner().to_string();
        // YAML errors start with the enclosing mapping's path; ours is more precise.
        let message = match message.split_once(": ") {
            Some((head, rest)) if !head.contains(' ') && path.starts_with(head) => rest.to_owned(),
            _ => message,
        };
        LoadError::Parse { path, message }
    })
}

/// [`parse`] for JSON text, rejecting anything after the document.
fn parse_json<T: DeserializeOwned>(text: &str) -> Result<T, LoadError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = parse(&mut de)?;
    de.end().map_err(|err| LoadError::Parse { path: String::new(), message: err.to_string() })?;
    Ok(value)
}
