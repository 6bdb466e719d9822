//! The SMB side's fixture: a network namespace holding the guest's tap (10.98.0.1/24 on the
//! host side) and a real `smbd` listening there on port 445; the guest is 10.98.0.2. The
//! guest's CIFS mount is the one the `azureFile` driver describes for the runtime.

use std::io::Write as _;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use aci::net::{netns, tap};
use aci::storage::volumes::{
    AzureFileDriver, AzureFileSource, GuestMountSource, SecretValue, Volume, VolumeDriver, VolumeSource,
};
use aci::vmm::{NetConfig, TapSource};
use aci_testkit::Smbd;

use crate::lines::Lines;
use crate::workload::{self, FAILED};

/// The server's address on the tap, and the guest's.
const SERVER: &str = "10.98.0.1";
const GUEST: &str = "10.98.0.2";
/// The storage account (SMB user), share and a storage-key-like password (bench only).
const ACCOUNT: &str = "acibench";
const SHARE: &str = "bench";
const KEY: &str = "YmVuY2gtc3RvcmFnZS1rZXktMDEyMzQ1Njc4OWFi";

/// The namespace, its tap and the server; torn down on drop.
pub struct SmbSide {
    ns: String,
    tap: Option<OwnedFd>,
    smbd: Option<Smbd>,
}

impl SmbSide {
    /// Creates the namespace and its tap, and starts `smbd` there.
    pub fn start() -> Self {
        let ns = format!("acibench-smb{}", std::process::id());
        netns::create(&ns).expect("creating the SMB namespace");
        let mut side = Self { ns, tap: None, smbd: None };
        side.tap = Some(tap::open_in(&side.ns, "tap0", true).expect("opening the tap"));
        for args in [
            vec!["addr", "add", &format!("{SERVER}/24"), "dev", "tap0"],
            vec!["link", "set", "tap0", "up"],
            vec!["link", "set", "lo", "up"],
        ] {
            let out = Command::new("ip").args(["-n", &side.ns]).args(&args).output().expect("running ip");
            assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        let smbd = netns::run_in(&side.ns, || Smbd::start(SERVER.parse().unwrap(), 445, SHARE, ACCOUNT, KEY));
        side.smbd = Some(smbd.expect("entering the SMB namespace"));
        side
    }

    fn smbd(&self) -> &Smbd {
        self.smbd.as_ref().unwrap()
    }

    /// The directory the share serves.
    pub fn share_dir(&self) -> PathBuf {
        self.smbd().share_dir()
    }

    /// The guest's network device: a duplicate of the tap.
    pub fn net(&self) -> NetConfig {
        let fd = self.tap.as_ref().unwrap().try_clone().expect("duplicating the tap fd");
        NetConfig { tap: TapSource::Fd(fd), mac: [0x02, 0xac, 0xbe, 0, 0, 2] }
    }

    /// The `/init` setup lines: the guest's address, then the CIFS mount of the share with
    /// the source and options the `azureFile` driver gives the agent (which adds `ip=` and
    /// `password=` the same way when it calls mount(2)).
    pub fn guest_setup(&self, work: &Path) -> String {
        let driver = AzureFileDriver::new(|_: &str| SERVER.to_owned());
        let source = AzureFileSource {
            share_name: SHARE.into(),
            storage_account_name: ACCOUNT.into(),
            storage_account_key: SecretValue::new(KEY),
            read_only: false,
        };
        let volume = Volume::new("bench", VolumeSource::AzureFile(source));
        let prepared = driver.prepare(work, &volume).expect("preparing the azureFile volume");
        let GuestMountSource::Cifs { unc, options, password } = prepared.mount.source else {
            panic!("the azureFile driver described no CIFS mount");
        };
        let password = password.expose_str().unwrap();
        format!(
            "ifconfig eth0 {GUEST} netmask 255.255.255.0 up\n\
             mount -t cifs {unc} /mnt -o ip={SERVER},{options},password={password} \
             || {{ echo {FAILED}: cifs mount; reboot -f; }}\n\
             echo \"bench-mount: $(grep ' /mnt ' /proc/mounts | sed 's/password=[^,]*/password=<redacted>/')\""
        )
    }

    /// Empties the share's directory.
    pub fn clear(&self) {
        let dir = self.share_dir();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path).unwrap();
            } else {
                std::fs::remove_file(&path).unwrap();
            }
        }
    }

    /// Phase durations of `smbclient` (SMB 3.1.1, in the namespace) putting `local`'s `big`
    /// and getting it back, then putting every file of `local/small`. Checks what arrived.
    pub fn smbclient_run(&self, local: &Path, mib: usize, files: usize) -> Vec<Duration> {
        let smbd = self.smbd();
        let (unc, user, password) = (smbd.unc(), smbd.user.clone(), smbd.password.clone());
        let mut child = netns::run_in(&self.ns, move || {
            Command::new("smbclient")
                .args([&unc, "-U", &user, "-m", "SMB3_11"])
                .env("PASSWD", password)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
        })
        .expect("entering the SMB namespace")
        .expect("running smbclient");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(workload::smbclient_commands(local).as_bytes()).unwrap();
        drop(stdin);
        // Both pipes drained at once: smbclient logs each file it puts (to stderr, at debug
        // level 1), more than a pipe holds for 1500 files.
        let mut stderr = child.stderr.take().unwrap();
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        });
        let mut lines = Lines::default();
        lines.copy_from(child.stdout.take().unwrap());
        let status = child.wait().unwrap();
        let stderr = errors.join().unwrap();
        assert!(status.success(), "smbclient: {}\n{stderr}", lines.text().join("\n"));
        let times = lines.phases(&|| stderr.clone());
        let share = self.share_dir();
        let size = std::fs::metadata(share.join("big")).map(|m| m.len()).unwrap_or(0);
        let count = std::fs::read_dir(share.join("small")).map(|d| d.count()).unwrap_or(0);
        assert_eq!((size, count), ((mib as u64) << 20, files), "what smbclient stored on the share");
        times
    }
}

impl Drop for SmbSide {
    fn drop(&mut self) {
        self.smbd = None;
        self.tap = None;
        let _ = netns::delete(&self.ns);
    }
}

/// Creates the local files `smbclient` sends: `big` (`mib` MiB of zeros) and `files` small
/// files `small/f<i>` holding `x\n`, like the script's.
pub fn smbclient_sources(local: &Path, mib: usize, files: usize) {
    std::fs::create_dir_all(local.join("small")).unwrap();
    std::fs::write(local.join("big"), vec![0u8; mib << 20]).unwrap();
    for i in 0..files {
        std::fs::write(local.join("small").join(format!("f{i}")), b"x\n").unwrap();
    }
}
