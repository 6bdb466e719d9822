//! Image pull benchmark against a loopback `docker-registry`, with `skopeo` (and `umoci`) as
//! the reference measured in the same run:
//! - pull only: aci `ImageStore::pull` vs `skopeo copy docker://… oci:…`;
//! - cold create path: aci `prepare` (pull + unpack + erofs) vs `skopeo copy` + `umoci unpack`;
//! - warm create path: aci `prepare` on a cache hit.
//!
//! `cargo bench -p aci-core --bench images`. `ACI_BENCH_MB` sets the image size (default 200,
//! four layers of many files, half compressible); `ACI_BENCH_RUNS` the runs per side (default 3,
//! medians printed). Absolute times depend on the machine; track the ratios.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use aci_core::images::{ImageStore, ImageStoreConfig, PullPolicy};
use aci_testkit::{require_tools, OciLayout, PlatformSpec, Registry, TarLayer};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Four gzip layers of 256 KiB files; odd files random, even files repetitive text.
fn push_image(reg: &Registry, total_mb: usize) {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut layout = OciLayout::new();
    let files_per_layer = (total_mb * 4).div_ceil(4).max(1);
    let mut layers = Vec::new();
    for l in 0..4 {
        let mut tar = TarLayer::new();
        for f in 0..files_per_layer {
            let data: Vec<u8> = if f % 2 == 0 {
                (0..256 * 1024)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        seed as u8
                    })
                    .collect()
            } else {
                b"aci benchmark line of text\n".repeat(256 * 1024 / 27)
            };
            tar.file(&format!("l{l}/d{}/f{f}", f % 16), &data, 0o644);
        }
        layers.push(tar.gzip());
    }
    let m = layout.add_image(
        serde_json::json!({"Cmd": ["/bin/true"]}),
        &layers,
        &PlatformSpec::new("linux", "amd64"),
    );
    layout.tag("t", &m);
    reg.push_oci(layout.path(), "t", "bench/img:1");
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn timed(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("images bench: run it with `cargo bench -p aci-core --bench images`");
        return;
    }
    let tools = ["docker-registry", "skopeo", "umoci", "mkfs.erofs"];
    if !require_tools("images bench", &tools) {
        return;
    }
    let (mb, runs) = (env_usize("ACI_BENCH_MB", 200), env_usize("ACI_BENCH_RUNS", 3).max(1));
    let reg = Registry::start();
    push_image(&reg, mb);
    let reference = format!("{}/bench/img:1", reg.host());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let new_store = |dir: &std::path::Path| {
        let mut c = ImageStoreConfig::new(dir);
        c.insecure_registries.push(reg.host());
        ImageStore::open(c).unwrap()
    };

    let (mut aci_pull, mut aci_cold, mut aci_warm) = (Vec::new(), Vec::new(), Vec::new());
    let (mut sk_pull, mut sk_cold) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let dir = tempfile::tempdir().unwrap();
        let store = new_store(dir.path());
        aci_pull.push(timed(|| {
            rt.block_on(store.pull(&reference, &[], PullPolicy::Always)).unwrap();
        }));
        let dir = tempfile::tempdir().unwrap();
        let store = new_store(dir.path());
        aci_cold.push(timed(|| {
            rt.block_on(store.prepare(&reference, &[], PullPolicy::Always)).unwrap();
        }));
        aci_warm.push(timed(|| {
            rt.block_on(store.prepare(&reference, &[], PullPolicy::IfNotPresent)).unwrap();
        }));

        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path().join("layout");
        let copy = || {
            let ok = Command::new("skopeo")
                .args(["copy", "-q", "--src-tls-verify=false"])
                .arg(format!("docker://{reference}"))
                .arg(format!("oci:{}:img", layout.display()))
                .status()
                .unwrap()
                .success();
            assert!(ok, "skopeo copy failed");
        };
        sk_pull.push(timed(copy));
        std::fs::remove_dir_all(&layout).unwrap();
        sk_cold.push(timed(|| {
            copy();
            let ok = Command::new("umoci")
                .args(["unpack", "--image"])
                .arg(format!("{}:img", layout.display()))
                .arg(dir.path().join("bundle"))
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap()
                .success();
            assert!(ok, "umoci unpack failed");
        }));
    }
    let row = |name: &str, aci: Duration, reference: Option<Duration>| match reference {
        Some(r) => println!(
            "{name:<34} aci {:>8.3}s  reference {:>8.3}s  aci/reference {:.2}",
            aci.as_secs_f64(),
            r.as_secs_f64(),
            aci.as_secs_f64() / r.as_secs_f64()
        ),
        None => println!("{name:<34} aci {:>8.3}s", aci.as_secs_f64()),
    };
    println!("images bench: {mb} MB image, 4 gzip layers, median of {runs} runs");
    row("pull vs skopeo copy", median(aci_pull), Some(median(sk_pull)));
    row("pull+unpack+erofs vs skopeo+umoci", median(aci_cold), Some(median(sk_cold)));
    row("warm prepare (cache hit)", median(aci_warm), None);
}
