//! Talking to registries through `oci-client`: credentials, plain-HTTP allow-list, manifest
//! and index resolution to one platform, blob downloads.

use futures_util::StreamExt;
use oci_client::client::{BlobResponse, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::{OciDescriptor, OciImageManifest, OciManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::Client;
use tokio::io::AsyncWriteExt;

use super::blobstore::PendingBlob;
use super::reference::ImageRef;

/// Every manifest type aci accepts. Always sent, or registries answer 404 or schema 1.
pub const MANIFEST_ACCEPT: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// Credentials for one registry, as in ACI's `imageRegistryCredentials`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryCredential {
    /// The registry host (`myregistry.azurecr.io`, `127.0.0.1:5000`); a scheme and path are
    /// ignored, and the Docker Hub aliases are equivalent.
    pub server: String,
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

fn canonical_host(server: &str) -> &str {
    let s = server.split_once("://").map_or(server, |(_, rest)| rest);
    let s = s.split('/').next().unwrap_or(s);
    match s {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io",
        other => other,
    }
}

/// The platform to pick from an image index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// GOOS-style OS (`linux`).
    pub os: String,
    /// GOARCH-style architecture (`amd64`).
    pub architecture: String,
}

impl Default for Platform {
    fn default() -> Self {
        Self { os: "linux".into(), architecture: "amd64".into() }
    }
}

/// Errors of registry operations. Each names the image or registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry refused the credentials (or needs some).
    #[error("registry {registry} refused the credentials for {image}")]
    Unauthorized {
        /// The registry host.
        registry: String,
        /// The image.
        image: String,
    },
    /// The manifest could not be fetched.
    #[error("cannot fetch the manifest of {image}")]
    FetchManifest {
        /// The image.
        image: String,
        /// The cause.
        #[source]
        source: OciDistributionError,
    },
    /// The manifest is not an OCI/Docker schema 2 manifest or index.
    #[error("unsupported manifest for {image}: {detail}")]
    UnsupportedManifest {
        /// The image.
        image: String,
        /// What was wrong.
        detail: String,
    },
    /// An index has no entry for the wanted platform.
    #[error("{image} has no manifest for {os}/{architecture}")]
    NoMatchingPlatform {
        /// The image.
        image: String,
        /// Wanted OS.
        os: String,
        /// Wanted architecture.
        architecture: String,
    },
    /// A blob download failed.
    #[error("cannot download blob {digest} of {image}")]
    FetchBlob {
        /// The image.
        image: String,
        /// The blob.
        digest: String,
        /// The cause.
        #[source]
        source: OciDistributionError,
    },
}

/// A resolved single-platform image manifest.
#[derive(Debug, Clone)]
pub struct ResolvedManifest {
    /// The image manifest's digest.
    pub digest: String,
    /// Its raw bytes (digest-checked by the client).
    pub raw: Vec<u8>,
    /// The parsed manifest.
    pub manifest: OciImageManifest,
    /// The index digest when the reference named an index.
    pub index_digest: Option<String>,
}

/// One registry session for one image: an `oci-client` with the caller's protocol and auth.
pub(crate) struct RegistrySession {
    client: Client,
    auth: RegistryAuth,
    image: ImageRef,
}

/// Installs the ring crypto provider for rustls once (no-op when one is installed).
fn ensure_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl RegistrySession {
    pub fn new(image: &ImageRef, insecure: &[String], credentials: &[RegistryCredential]) -> Self {
        ensure_crypto_provider();
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(insecure.to_vec()),
            platform_resolver: None,
            connect_timeout: Some(std::time::Duration::from_secs(30)),
            ..ClientConfig::default()
        };
        let host = canonical_host(image.registry());
        let auth = credentials
            .iter()
            .find(|c| canonical_host(&c.server) == host)
            .map_or(RegistryAuth::Anonymous, |c| RegistryAuth::Basic(c.username.clone(), c.password.clone()));
        Self { client: Client::new(config), auth, image: image.clone() }
    }

    fn manifest_error(&self, source: OciDistributionError) -> RegistryError {
        match source {
            OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_) => RegistryError::Unauthorized {
                registry: self.image.registry().to_string(),
                image: self.image.to_string(),
            },
            source => RegistryError::FetchManifest { image: self.image.to_string(), source },
        }
    }

    async fn fetch(&self, reference: &ImageRef) -> Result<(Vec<u8>, String, OciManifest), RegistryError> {
        let (raw, digest) = self
            .client
            .pull_manifest_raw(&reference.to_oci(), &self.auth, MANIFEST_ACCEPT)
            .await
            .map_err(|e| self.manifest_error(e))?;
        let unsupported =
            |detail: String| RegistryError::UnsupportedManifest { image: self.image.to_string(), detail };
        let versioned: serde_json::Value =
            serde_json::from_slice(&raw).map_err(|e| unsupported(e.to_string()))?;
        if versioned.get("schemaVersion").and_then(|v| v.as_i64()) != Some(2) {
            return Err(unsupported("not schema version 2".into()));
        }
        let manifest: OciManifest = serde_json::from_slice(&raw).map_err(|e| unsupported(e.to_string()))?;
        Ok((raw.to_vec(), digest, manifest))
    }

    /// Fetches the manifest, following an index to the `platform` entry.
    pub async fn resolve(&self, platform: &Platform) -> Result<ResolvedManifest, RegistryError> {
        let (raw, digest, manifest) = self.fetch(&self.image).await?;
        let index = match manifest {
            OciManifest::Image(manifest) => {
                return Ok(ResolvedManifest { digest, raw, manifest, index_digest: None })
            }
            OciManifest::ImageIndex(index) => index,
        };
        let entry = index
            .manifests
            .iter()
            .find(|m| {
                m.platform.as_ref().is_some_and(|p| {
                    p.os.to_string() == platform.os && p.architecture.to_string() == platform.architecture
                })
            })
            .ok_or_else(|| RegistryError::NoMatchingPlatform {
                image: self.image.to_string(),
                os: platform.os.clone(),
                architecture: platform.architecture.clone(),
            })?;
        let (raw, child_digest, manifest) = self.fetch(&self.image.with_digest(&entry.digest)).await?;
        match manifest {
            OciManifest::Image(manifest) => {
                Ok(ResolvedManifest { digest: child_digest, raw, manifest, index_digest: Some(digest) })
            }
            OciManifest::ImageIndex(_) => Err(RegistryError::UnsupportedManifest {
                image: self.image.to_string(),
                detail: format!("index entry {} is itself an index", entry.digest),
            }),
        }
    }

    /// Downloads `desc` into `pending`, resuming after the bytes it already holds with a
    /// `Range` request. The store checks the digest on commit, so a range the client cannot
    /// verify is fine, and every byte is hashed once.
    pub async fn download(
        &self,
        desc: &OciDescriptor,
        pending: &mut PendingBlob,
    ) -> Result<(), RegistryError> {
        let fetch_error = |source| RegistryError::FetchBlob {
            image: self.image.to_string(),
            digest: desc.digest.clone(),
            source,
        };
        let total = u64::try_from(desc.size).unwrap_or(0);
        if total > 0 && pending.written() >= total {
            if pending.written() == total {
                return Ok(()); // A killed pull got every byte but did not commit.
            }
            pending.restart().await.map_err(|e| fetch_error(e.into()))?;
        }
        let response = self
            .client
            .pull_blob_stream_partial(&self.image.to_oci(), desc, pending.written(), None)
            .await
            .map_err(|source| match source {
                OciDistributionError::UnauthorizedError { .. } => RegistryError::Unauthorized {
                    registry: self.image.registry().to_string(),
                    image: self.image.to_string(),
                },
                source => fetch_error(source),
            })?;
        let mut stream = match response {
            BlobResponse::Partial(stream) => stream,
            BlobResponse::Full(stream) => {
                pending.restart().await.map_err(|e| fetch_error(e.into()))?;
                stream
            }
        };
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => pending.write_all(&bytes).await.map_err(|e| fetch_error(e.into()))?,
                // A full (verifying) response fails only after its last byte on a digest
                // mismatch: leave that to the store's check, which names both digests.
                Err(_) if total > 0 && pending.written() == total => break,
                Err(e) => return Err(fetch_error(e.into())),
            }
        }
        Ok(())
    }
}
