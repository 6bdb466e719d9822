//! CIFS (SMB) mounts: the share, the server's address and the mount(2) options.
//!
//! The password goes into the mount data and nowhere else: [`CifsMount`] keeps the data in a
//! buffer it wipes on drop, and the option string it shows in errors says
//! `password=<redacted>`.

use std::net::IpAddr;

use aci_proto::secret::Secret;

/// Option keys that would set (or reveal) the password outside the password field.
const PASSWORD_KEYS: &[&str] = &["password", "pass", "password2", "credentials", "cred"];

/// Errors of a CIFS mount's description.
#[derive(Debug, thiserror::Error)]
pub enum CifsError {
    /// The share is not `//server/share`.
    #[error("share {0:?} is not of the form //server/share")]
    Unc(String),
    /// The server is neither an address nor a name in `/etc/hosts`.
    #[error(
        "cannot resolve server {server:?} of share {unc:?} (give an address or add it to the sandbox hosts)"
    )]
    Resolve {
        /// The server.
        server: String,
        /// The share.
        unc: String,
    },
    /// A field holds a character that would break the option string.
    #[error("{field} of share {unc:?} contains a comma, NUL or newline")]
    Breaker {
        /// The field (`username`, `options[2]`).
        field: String,
        /// The share.
        unc: String,
    },
    /// An option tries to set the password.
    #[error("options[{index}] of share {unc:?} sets a password; only the password field may")]
    PasswordOption {
        /// Position in `options`.
        index: usize,
        /// The share.
        unc: String,
    },
}

/// A CIFS mount ready for mount(2).
pub struct CifsMount {
    /// The mount source, `//server/share`.
    pub source: String,
    /// The options as shown in errors and logs (`password=<redacted>`).
    pub shown: String,
    data: Vec<u8>,
}

impl CifsMount {
    /// The mount(2) data, password included.
    pub fn data(&self) -> &[u8] {
        &self.data
    }
}

impl std::fmt::Debug for CifsMount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CifsMount").field("source", &self.source).field("options", &self.shown).finish()
    }
}

impl Drop for CifsMount {
    fn drop(&mut self) {
        self.data.fill(0);
        std::hint::black_box(&self.data);
    }
}

/// Splits `//server/share[/path]` (or with backslashes) into server and the rest.
pub fn split_unc(unc: &str) -> Result<(String, String), CifsError> {
    let normal = unc.replace('\\', "/");
    let rest = normal.strip_prefix("//").ok_or_else(|| CifsError::Unc(unc.to_owned()))?;
    let (server, share) = rest.split_once('/').ok_or_else(|| CifsError::Unc(unc.to_owned()))?;
    if server.is_empty() || share.is_empty() || share.starts_with('/') || unc.contains(['\0', '\n', ',']) {
        return Err(CifsError::Unc(unc.to_owned()));
    }
    Ok((server.to_owned(), share.to_owned()))
}

/// The address of `server`: itself when it is an address, else its line in `hosts` (the
/// text of `/etc/hosts`). The guest kernel cannot resolve names for CIFS by itself.
pub fn resolve(server: &str, hosts: &str) -> Option<IpAddr> {
    let bare = server.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse() {
        return Some(ip);
    }
    hosts.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or_default();
        let mut words = line.split_whitespace();
        let ip: IpAddr = words.next()?.parse().ok()?;
        words.any(|w| w.eq_ignore_ascii_case(server)).then_some(ip)
    })
}

/// Builds the mount of `unc` as `username` with `password` and extra `options`, resolving
/// the server through `hosts`.
pub fn build(
    unc: &str,
    username: &str,
    password: &Secret,
    options: &[String],
    hosts: &str,
) -> Result<CifsMount, CifsError> {
    let (server, share) = split_unc(unc)?;
    let ip = resolve(&server, hosts)
        .ok_or_else(|| CifsError::Resolve { server: server.clone(), unc: unc.to_owned() })?;
    let breaker = |s: &str| s.contains([',', '\0', '\n']);
    let broken = |field: String| CifsError::Breaker { field, unc: unc.to_owned() };
    if breaker(username) {
        return Err(broken("username".into()));
    }
    if password.expose().contains(['\0', '\n']) {
        return Err(broken("the password".into()));
    }
    let mut shown = vec![format!("ip={ip}")];
    if !username.is_empty() {
        shown.push(format!("username={username}"));
    }
    for (index, option) in options.iter().enumerate() {
        let key = option.split('=').next().unwrap_or_default().trim().to_ascii_lowercase();
        if PASSWORD_KEYS.contains(&key.as_str()) {
            return Err(CifsError::PasswordOption { index, unc: unc.to_owned() });
        }
        if breaker(option) {
            return Err(broken(format!("options[{index}]")));
        }
        if !option.is_empty() {
            shown.push(option.clone());
        }
    }
    // The kernel reads `,,` inside a value as one literal comma.
    let escaped = password.expose().replace(',', ",,");
    let mut data = Vec::new();
    data.extend_from_slice(shown.join(",").as_bytes());
    data.extend_from_slice(b",password=");
    data.extend_from_slice(escaped.as_bytes());
    let mut escaped = escaped.into_bytes();
    escaped.fill(0);
    std::hint::black_box(&escaped);
    shown.push("password=<redacted>".into());
    Ok(CifsMount { source: format!("//{server}/{share}"), shown: shown.join(","), data })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTS: &str = "127.0.0.1\tlocalhost\n10.0.0.1 files.test files # comment\n";

    #[test]
    fn shares_and_servers_are_parsed() {
        assert_eq!(split_unc("//srv/share").unwrap(), ("srv".into(), "share".into()));
        assert_eq!(split_unc("\\\\srv\\share\\dir").unwrap(), ("srv".into(), "share/dir".into()));
        for bad in ["srv/share", "//srv", "//srv/", "///share", "//a/b,c"] {
            assert!(split_unc(bad).is_err(), "{bad}");
        }
        assert_eq!(resolve("10.1.2.3", ""), Some("10.1.2.3".parse().unwrap()));
        assert_eq!(resolve("[fd00::1]", ""), Some("fd00::1".parse().unwrap()));
        assert_eq!(resolve("FILES.test", HOSTS), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(resolve("comment", HOSTS), None);
        assert_eq!(resolve("other", HOSTS), None);
    }

    #[test]
    fn the_password_is_only_in_the_mount_data() {
        let opts = vec!["vers=3.1.1".to_owned(), "port=4450".to_owned()];
        let m = build("//files.test/data", "acct", &Secret::new("p,ss"), &opts, HOSTS).unwrap();
        assert_eq!(m.source, "//files.test/data");
        assert_eq!(
            String::from_utf8(m.data().to_vec()).unwrap(),
            "ip=10.0.0.1,username=acct,vers=3.1.1,port=4450,password=p,,ss"
        );
        assert_eq!(m.shown, "ip=10.0.0.1,username=acct,vers=3.1.1,port=4450,password=<redacted>");
        assert!(!format!("{m:?}").contains("p,ss"));
    }

    #[test]
    fn options_cannot_smuggle_passwords_or_break_the_string() {
        let pw = Secret::new("hunter2");
        let err = build("//1.2.3.4/s", "u", &pw, &["Password=x".into()], "").unwrap_err().to_string();
        assert!(err.contains("options[0]") && !err.contains('x'), "{err}");
        let err = build("//1.2.3.4/s", "u,v", &pw, &[], "").unwrap_err().to_string();
        assert!(err.contains("username"), "{err}");
        let err = build("//1.2.3.4/s", "u", &pw, &["a".into(), "b,c".into()], "").unwrap_err().to_string();
        assert!(err.contains("options[1]"), "{err}");
        let err = build("//nowhere/s", "u", &pw, &[], HOSTS).unwrap_err().to_string();
        assert!(err.contains("\"nowhere\""), "{err}");
        assert!(!err.contains("hunter2"));
    }
}
