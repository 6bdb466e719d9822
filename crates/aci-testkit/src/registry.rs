//! A private `docker-registry` on loopback.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// A running `docker-registry serve` on 127.0.0.1, killed (and its storage deleted) on drop.
pub struct Registry {
    child: Child,
    port: u16,
    dir: TempDir,
    auth: Option<(String, String)>,
}

impl Registry {
    /// Starts an anonymous registry.
    pub fn start() -> Self {
        Self::spawn(None)
    }

    /// Starts a registry that requires basic auth for `user`/`password` (htpasswd, bcrypt).
    pub fn start_with_auth(user: &str, password: &str) -> Self {
        Self::spawn(Some((user.to_string(), password.to_string())))
    }

    fn spawn(auth: Option<(String, String)>) -> Self {
        let dir = tempfile::Builder::new().prefix("aci-registry-").tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let storage = dir.path().join("storage");
        std::fs::create_dir(&storage).unwrap();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: aci-test-secret\n",
            storage.display()
        );
        if let Some((user, password)) = &auth {
            let line = crate::run(Command::new("htpasswd").args(["-Bbn", user, password]));
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, line.trim()).unwrap();
            config += &format!("auth:\n  htpasswd:\n    realm: aci-test\n    path: {}\n", htpasswd.display());
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn docker-registry");
        let reg = Self { child, port, dir, auth };
        reg.wait_ready();
        reg
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                let mut buf = [0u8; 12];
                if s.read(&mut buf).is_ok_and(|n| n > 0) {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("docker-registry on port {} did not start: {}", self.port, self.log());
    }

    /// `127.0.0.1:PORT`, the registry host for image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The credentials this registry requires, if any.
    pub fn credentials(&self) -> Option<(String, String)> {
        self.auth.clone()
    }

    /// The registry's combined stdout/stderr log (including the access log).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Number of access-log lines for requests whose request line contains `needle`
    /// (e.g. `"GET /v2/busybox/blobs/sha256:..."`).
    pub fn requests_matching(&self, needle: &str) -> usize {
        self.log().lines().filter(|l| l.contains("HTTP/1.1\"") && l.contains(needle)).count()
    }

    /// Number of access-log lines of any request.
    pub fn request_count(&self) -> usize {
        self.log().lines().filter(|l| l.contains("\" ") && l.contains(" HTTP/1.1\" ")).count()
    }

    /// Where the registry stores blob `digest` (`sha256:...`) on disk.
    pub fn blob_data_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.storage().join(format!("docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]))
    }

    /// The registry's storage root.
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Pushes an OCI layout `dir:tag` converted to Docker v2 schema 2 (manifests, manifest
    /// lists and media types) with `skopeo copy --all --format v2s2`.
    pub fn push_oci_as_docker(&self, layout: &Path, layout_tag: &str, dest: &str) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "--all", "--format", "v2s2", "--dest-tls-verify=false"]);
        if let Some((u, p)) = &self.auth {
            cmd.arg(format!("--dest-creds={u}:{p}"));
        }
        cmd.arg(format!("oci:{}:{layout_tag}", layout.display()))
            .arg(format!("docker://{}/{dest}", self.host()));
        crate::run(&mut cmd);
    }

    /// Pushes an OCI layout `dir:tag` to `repo:tag` here with `skopeo copy --all
    /// --preserve-digests` (so plain and zstd layers arrive as they are).
    pub fn push_oci(&self, layout: &Path, layout_tag: &str, dest: &str) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "--all", "--preserve-digests", "--dest-tls-verify=false"]);
        if let Some((u, p)) = &self.auth {
            cmd.arg(format!("--dest-creds={u}:{p}"));
        }
        cmd.arg(format!("oci:{}:{layout_tag}", layout.display()))
            .arg(format!("docker://{}/{dest}", self.host()));
        crate::run(&mut cmd);
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
