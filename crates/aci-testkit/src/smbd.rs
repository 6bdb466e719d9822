//! A real Samba `smbd` serving one share from a temp dir, for CIFS (azureFile) tests.
//!
//! Everything Samba writes (state, locks, the password database, logs) lives in the temp
//! dir; the daemon listens on one address and port only, speaks SMB 3 only, and is killed
//! on drop. Samba maps SMB users to Unix accounts: the share's user is mapped to `root`
//! (`username map`), so no account is created on the machine.

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `smbd` with one share.
pub struct Smbd {
    child: Child,
    dir: tempfile::TempDir,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The share's name (`//<ip>/<share>`).
    pub share: String,
    /// The SMB user.
    pub user: String,
    /// The user's password.
    pub password: String,
}

impl std::fmt::Debug for Smbd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smbd").field("addr", &self.addr).field("share", &self.share).finish_non_exhaustive()
    }
}

impl Smbd {
    /// Starts `smbd` on `ip:port` serving share `share` to `user` with `password`; waits
    /// until it accepts connections (30 s at most).
    pub fn start(ip: IpAddr, port: u16, share: &str, user: &str, password: &str) -> Self {
        let dir = tempfile::Builder::new().prefix("aci-smbd-").tempdir().unwrap();
        let d = dir.path();
        for sub in ["lock", "state", "cache", "private", "pid", "ncalrpc", "share", "bind-dns"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::fs::write(d.join("users.map"), format!("root = {user}\n")).unwrap();
        let conf = d.join("smb.conf");
        std::fs::write(&conf, config(d, ip, port, share)).unwrap();
        let mut passwd = Command::new(crate::which("smbpasswd").expect("smbpasswd (samba)"))
            .args(["-c"])
            .arg(&conf)
            .args(["-s", "-a", "root"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        passwd.stdin.take().unwrap().write_all(format!("{password}\n{password}\n").as_bytes()).unwrap();
        let out = passwd.wait_with_output().unwrap();
        assert!(out.status.success(), "smbpasswd failed: {}", String::from_utf8_lossy(&out.stderr));
        let log = std::fs::File::create(d.join("smbd.out")).unwrap();
        let child = Command::new(crate::which("smbd").expect("smbd (samba)"))
            .args(["--foreground", "--no-process-group", "--debug-stdout", "-s"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut smbd = Self {
            child,
            dir,
            addr: SocketAddr::new(ip, port),
            share: share.to_owned(),
            user: user.to_owned(),
            password: password.to_owned(),
        };
        smbd.wait_ready(Duration::from_secs(30));
        smbd
    }

    fn wait_ready(&mut self, timeout: Duration) {
        let start = Instant::now();
        while TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_err() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("smbd exited with {status} before listening:\n{}", self.log());
            }
            assert!(
                start.elapsed() < timeout,
                "smbd not listening on {} after {timeout:?}:\n{}",
                self.addr,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The directory the share serves.
    pub fn share_dir(&self) -> PathBuf {
        self.dir.path().join("share")
    }

    /// `//<ip>/<share>`.
    pub fn unc(&self) -> String {
        format!("//{}/{}", self.addr.ip(), self.share)
    }

    /// smbd's output and log so far.
    pub fn log(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("{}{}", read("smbd.out"), read("log.smbd"))
    }
}

impl Drop for Smbd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(d: &Path, ip: IpAddr, port: u16, share: &str) -> String {
    let p = |sub: &str| d.join(sub).display().to_string();
    format!(
        "[global]\n\
         server role = standalone server\n\
         interfaces = {ip}\n\
         bind interfaces only = yes\n\
         smb ports = {port}\n\
         disable netbios = yes\n\
         server min protocol = SMB3\n\
         map to guest = Never\n\
         username map = {users}\n\
         passdb backend = tdbsam:{passdb}\n\
         lock directory = {lock}\n\
         state directory = {state}\n\
         cache directory = {cache}\n\
         private dir = {private}\n\
         pid directory = {pid}\n\
         ncalrpc dir = {ncalrpc}\n\
         binddns dir = {binddns}\n\
         log file = {log}\n\
         log level = 1\n\
         load printers = no\n\
         printing = bsd\n\
         printcap name = /dev/null\n\
         disable spoolss = yes\n\
         \n\
         [{share}]\n\
         path = {share_dir}\n\
         read only = no\n\
         force user = root\n",
        users = p("users.map"),
        passdb = p("private/passdb.tdb"),
        lock = p("lock"),
        state = p("state"),
        cache = p("cache"),
        private = p("private"),
        pid = p("pid"),
        ncalrpc = p("ncalrpc"),
        binddns = p("bind-dns"),
        log = p("log.smbd"),
        share_dir = p("share"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smbd_serves_on_its_own_address_and_port() {
        if !crate::require_tools("smbd_serves_on_its_own_address_and_port", &["smbd", "smbpasswd"]) {
            return;
        }
        let smbd = Smbd::start("127.0.0.1".parse().unwrap(), 44_501, "data", "acitest", "s3cret,pw");
        assert!(TcpStream::connect(smbd.addr).is_ok());
        assert_eq!(smbd.unc(), "//127.0.0.1/data");
        assert!(smbd.share_dir().is_dir());
        let log = smbd.log();
        drop(smbd);
        assert!(TcpStream::connect("127.0.0.1:44501").is_err(), "smbd is gone after drop:\n{log}");
    }
}
