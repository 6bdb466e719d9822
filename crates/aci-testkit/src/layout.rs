//! An OCI image layout written from bytes, for pushing crafted images with `skopeo`.

use std::path::Path;

use serde_json::{json, Value};
use tempfile::TempDir;

use crate::tarlayer::LayerBlob;

/// A content descriptor in the layout.
#[derive(Debug, Clone)]
pub struct Descriptor {
    /// Media type.
    pub media_type: String,
    /// `sha256:...`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
}

impl Descriptor {
    fn to_json(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

/// An index entry's platform.
#[derive(Debug, Clone)]
pub struct PlatformSpec {
    /// e.g. `linux`.
    pub os: String,
    /// e.g. `amd64`.
    pub architecture: String,
}

impl PlatformSpec {
    /// `os/architecture`.
    pub fn new(os: &str, architecture: &str) -> Self {
        Self { os: os.into(), architecture: architecture.into() }
    }
}

/// An OCI layout in a temp dir.
pub struct OciLayout {
    dir: TempDir,
    tags: Vec<Value>,
}

impl Default for OciLayout {
    fn default() -> Self {
        Self::new()
    }
}

impl OciLayout {
    /// An empty layout.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("aci-layout-").tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("blobs/sha256")).unwrap();
        std::fs::write(dir.path().join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let layout = Self { dir, tags: Vec::new() };
        layout.write_index();
        layout
    }

    /// The layout directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Stores a blob.
    pub fn add_blob(&self, media_type: &str, data: &[u8]) -> Descriptor {
        let digest = crate::sha256_digest(data);
        let hex = digest.trim_start_matches("sha256:");
        std::fs::write(self.dir.path().join("blobs/sha256").join(hex), data).unwrap();
        Descriptor { media_type: media_type.into(), digest, size: data.len() as u64 }
    }

    /// Stores config + layers + an OCI image manifest for `platform`; returns the manifest.
    /// `config` is the image config's `config` object (Entrypoint, Env, ...).
    pub fn add_image(&self, config: Value, layers: &[LayerBlob], platform: &PlatformSpec) -> Descriptor {
        let diff_ids: Vec<&str> = layers.iter().map(|l| l.diff_id.as_str()).collect();
        let config = json!({
            "architecture": platform.architecture, "os": platform.os, "config": config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let config =
            self.add_blob("application/vnd.oci.image.config.v1+json", &serde_json::to_vec(&config).unwrap());
        let layers: Vec<Value> =
            layers.iter().map(|l| self.add_blob(&l.media_type, &l.data).to_json()).collect();
        let manifest = json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config.to_json(), "layers": layers,
        });
        self.add_blob("application/vnd.oci.image.manifest.v1+json", &serde_json::to_vec(&manifest).unwrap())
    }

    /// Stores an OCI image index over `(manifest, platform)` pairs; returns the index.
    pub fn add_index(&self, entries: &[(Descriptor, PlatformSpec)]) -> Descriptor {
        let manifests: Vec<Value> = entries
            .iter()
            .map(|(d, p)| {
                let mut v = d.to_json();
                v["platform"] = json!({"os": p.os, "architecture": p.architecture});
                v
            })
            .collect();
        let index = json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        });
        self.add_blob("application/vnd.oci.image.index.v1+json", &serde_json::to_vec(&index).unwrap())
    }

    /// Names `desc` (a manifest or an index) `tag` in `index.json`.
    pub fn tag(&mut self, tag: &str, desc: &Descriptor) {
        let mut v = desc.to_json();
        v["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        self.tags.push(v);
        self.write_index();
    }

    fn write_index(&self) {
        let index = json!({"schemaVersion": 2, "manifests": self.tags});
        std::fs::write(self.dir.path().join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    }
}
