//! A busybox image built the way an image builder without docker would: a busybox-static
//! rootfs, `umoci` to pack it (a second layer deletes a file, so umoci writes a whiteout),
//! `skopeo copy` to push it.

use std::path::Path;
use std::process::Command;

use crate::{run, Registry};

/// Builds and pushes `dest` (`repo:tag`) to `registry`: layer 1 is busybox with `sh`, `ls`,
/// `cat` links and `/etc/motd` + `/etc/doomed`; layer 2 adds `/etc/second` and deletes
/// `/etc/doomed`. Config: Entrypoint `/bin/sh`, Cmd `-c 'echo hi'`, Env `FOO=bar`,
/// WorkingDir `/srv`, User `1000:1000`, ExposedPorts `80/tcp`.
pub fn busybox_image(registry: &Registry, dest: &str) {
    let work = tempfile::Builder::new().prefix("aci-umoci-").tempdir().unwrap();
    let layout = work.path().join("layout");
    let image = format!("{}:img", layout.display());
    let bundle = work.path().join("bundle");
    run(Command::new("umoci").args(["init", "--layout"]).arg(&layout));
    run(Command::new("umoci").args(["new", "--image", &image]));
    run(Command::new("umoci").args(["unpack", "--image", &image]).arg(&bundle));
    let rootfs = bundle.join("rootfs");
    for d in ["bin", "etc", "srv", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy(busybox(), rootfs.join("bin/busybox")).unwrap();
    for app in ["sh", "ls", "cat"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(app)).unwrap();
    }
    std::fs::write(rootfs.join("etc/motd"), "hello from aci\n").unwrap();
    std::fs::write(rootfs.join("etc/doomed"), "deleted by layer 2\n").unwrap();
    // --refresh-bundle: the next repack diffs against this layer, not the empty image.
    run(Command::new("umoci").args(["repack", "--refresh-bundle", "--image", &image]).arg(&bundle));
    std::fs::remove_file(rootfs.join("etc/doomed")).unwrap();
    std::fs::write(rootfs.join("etc/second"), "layer 2\n").unwrap();
    run(Command::new("umoci").args(["repack", "--image", &image]).arg(&bundle));
    run(Command::new("umoci").args([
        "config",
        "--image",
        &image,
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
    ]));
    registry.push_oci(&layout, "img", dest);
}

fn busybox() -> &'static Path {
    ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .expect("busybox-static is installed")
}
