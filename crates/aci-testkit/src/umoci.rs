//! A busybox image built the way an image builder without docker would: a busybox-static
//! rootfs, `umoci` to pack it (a second layer deletes a file, so umoci writes a whiteout),
//! `skopeo copy` to push it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{run, Registry};

/// Builds and pushes `dest` (`repo:tag`) to `registry`: layer 1 is busybox with `sh`, `ls`,
/// `cat` links and `/etc/motd` + `/etc/doomed`; layer 2 adds `/etc/second` and deletes
/// `/etc/doomed`. Config: Entrypoint `/bin/sh`, Cmd `-c 'echo hi'`, Env `FOO=bar`,
/// WorkingDir `/srv`, User `1000:1000`, ExposedPorts `80/tcp`.
pub fn busybox_image(registry: &Registry, dest: &str) {
    let build = UmociBuild::busybox("aci-umoci-", &["bin", "etc", "srv", "tmp"], &["sh", "ls", "cat"]);
    let rootfs = build.rootfs();
    std::fs::write(rootfs.join("etc/motd"), "hello from aci\n").unwrap();
    std::fs::write(rootfs.join("etc/doomed"), "deleted by layer 2\n").unwrap();
    // --refresh-bundle: the next repack diffs against this layer, not the empty image.
    build.repack(true);
    std::fs::remove_file(rootfs.join("etc/doomed")).unwrap();
    std::fs::write(rootfs.join("etc/second"), "layer 2\n").unwrap();
    build.repack(false);
    build.push(
        registry,
        dest,
        &[
            "--config.entrypoint",
            "/bin/sh",
            "--config.cmd",
            "-c",
            "--config.cmd",
            "echo hi",
            "--config.env",
            "FOO=bar",
            "--config.workingdir",
            "/srv",
            "--config.user",
            "1000:1000",
            "--config.exposedports",
            "80/tcp",
        ],
    );
}

/// An image being built with `umoci` in a temp dir: an OCI layout with one image (`img`)
/// and its unpacked bundle, whose rootfs the caller fills between repacks.
pub(crate) struct UmociBuild {
    work: tempfile::TempDir,
    image: String,
}

impl UmociBuild {
    /// A new empty image (in a temp dir named with `prefix`) whose rootfs has the
    /// directories `dirs`, static busybox as `/bin/busybox` and a `/bin/<applet>` link to it
    /// per name in `applets`.
    pub(crate) fn busybox(prefix: &str, dirs: &[&str], applets: &[&str]) -> Self {
        let work = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
        let layout = work.path().join("layout");
        let image = format!("{}:img", layout.display());
        let build = Self { work, image };
        run(Command::new("umoci").args(["init", "--layout"]).arg(&layout));
        run(Command::new("umoci").args(["new", "--image", &build.image]));
        run(Command::new("umoci").args(["unpack", "--image", &build.image]).arg(build.bundle()));
        let rootfs = build.rootfs();
        for d in dirs {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy(busybox(), rootfs.join("bin/busybox")).unwrap();
        for app in applets {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(app)).unwrap();
        }
        build
    }

    fn bundle(&self) -> PathBuf {
        self.work.path().join("bundle")
    }

    /// The bundle's root filesystem.
    pub(crate) fn rootfs(&self) -> PathBuf {
        self.bundle().join("rootfs")
    }

    /// Packs the rootfs's changes as a new layer; with `refresh`, the next repack diffs
    /// against this layer rather than the one the bundle was unpacked from.
    pub(crate) fn repack(&self, refresh: bool) {
        let mut cmd = Command::new("umoci");
        cmd.arg("repack");
        if refresh {
            cmd.arg("--refresh-bundle");
        }
        run(cmd.args(["--image", &self.image]).arg(self.bundle()));
    }

    /// Sets the image config (`umoci config` arguments, e.g. `--config.cmd`) and pushes the
    /// image to `registry` as `dest` (`repo:tag`).
    pub(crate) fn push(self, registry: &Registry, dest: &str, config: &[&str]) {
        run(Command::new("umoci").args(["config", "--image", &self.image]).args(config));
        registry.push_oci(&self.work.path().join("layout"), "img", dest);
    }
}

fn busybox() -> &'static Path {
    ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .expect("busybox-static is installed")
}
