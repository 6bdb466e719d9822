//! `/etc/resolv.conf` and `/etc/hosts`: rendered from the sandbox configuration, written
//! whole (temp file + rename).

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;

use aci_proto::sandbox::{DnsConfig, HostEntry};

/// Errors of the name-resolution files.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// A name server is not an IP address.
    #[error("name server {0:?} is not an IP address")]
    NameServer(String),
    /// A search domain or option would break the file (empty, whitespace, `#`).
    #[error("{field} {value:?} is empty or contains whitespace or `#`")]
    Word {
        /// `search domain`, `option`, `host name`.
        field: &'static str,
        /// The value as given.
        value: String,
    },
    /// A hosts entry's address is not an IP address.
    #[error("hosts entry address {0:?} is not an IP address")]
    HostAddress(String),
    /// A hosts entry has no names.
    #[error("hosts entry {0} has no names")]
    NoNames(String),
    /// Writing a file failed.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

fn check_word(field: &'static str, value: &str) -> Result<(), DnsError> {
    if value.is_empty() || value.contains(|c: char| c.is_whitespace() || c == '#' || c == '\0') {
        return Err(DnsError::Word { field, value: value.to_owned() });
    }
    Ok(())
}

/// The text of `/etc/resolv.conf`.
pub fn render_resolv_conf(dns: &DnsConfig) -> Result<String, DnsError> {
    let mut out = String::from("# Written by aci-agent from the sandbox configuration.\n");
    for server in &dns.name_servers {
        let ip: IpAddr = server.parse().map_err(|_| DnsError::NameServer(server.clone()))?;
        let _ = writeln!(out, "nameserver {ip}");
    }
    if !dns.search_domains.is_empty() {
        for domain in &dns.search_domains {
            check_word("search domain", domain)?;
        }
        let _ = writeln!(out, "search {}", dns.search_domains.join(" "));
    }
    if !dns.options.is_empty() {
        for option in &dns.options {
            check_word("option", option)?;
        }
        let _ = writeln!(out, "options {}", dns.options.join(" "));
    }
    Ok(out)
}

/// The text of `/etc/hosts`: localhost, `hostname` on `address` (or 127.0.1.1 without an
/// interface address), then `extra`.
pub fn render_hosts(
    hostname: &str,
    address: Option<IpAddr>,
    extra: &[HostEntry],
) -> Result<String, DnsError> {
    let mut out = String::from("# Written by aci-agent from the sandbox configuration.\n");
    out.push_str("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if !hostname.is_empty() {
        check_word("host name", hostname)?;
        let own = address.map_or_else(|| "127.0.1.1".to_owned(), |ip| ip.to_string());
        let _ = writeln!(out, "{own}\t{hostname}");
    }
    for entry in extra {
        let ip: IpAddr = entry.ip.parse().map_err(|_| DnsError::HostAddress(entry.ip.clone()))?;
        if entry.names.is_empty() {
            return Err(DnsError::NoNames(entry.ip.clone()));
        }
        for name in &entry.names {
            check_word("host name", name)?;
        }
        let _ = writeln!(out, "{ip}\t{}", entry.names.join(" "));
    }
    Ok(out)
}

/// Writes `text` to `path` through a temp file and a rename (mode 0644).
pub fn write_file(path: &Path, text: &str) -> Result<(), DnsError> {
    let err = |source| DnsError::Write { path: path.display().to_string(), source };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    let tmp = path.with_extension("aci-tmp");
    std::fs::write(&tmp, text).map_err(err)?;
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o644)).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_has_servers_search_and_options() {
        let dns = DnsConfig {
            name_servers: vec!["10.0.0.1".into(), "fd00::1".into()],
            search_domains: vec!["svc.local".into(), "local".into()],
            options: vec!["ndots:2".into(), "timeout:1".into()],
        };
        assert_eq!(
            render_resolv_conf(&dns).unwrap(),
            "# Written by aci-agent from the sandbox configuration.\nnameserver 10.0.0.1\nnameserver fd00::1\n\
             search svc.local local\noptions ndots:2 timeout:1\n"
        );
        let empty = render_resolv_conf(&DnsConfig::default()).unwrap();
        assert_eq!(empty.lines().count(), 1);
        let bad = DnsConfig { name_servers: vec!["dns.example".into()], ..Default::default() };
        assert!(render_resolv_conf(&bad).unwrap_err().to_string().contains("\"dns.example\""));
        let bad = DnsConfig { options: vec!["ndots:2\nnameserver 6.6.6.6".into()], ..Default::default() };
        assert!(render_resolv_conf(&bad).unwrap_err().to_string().contains("option"));
    }

    #[test]
    fn hosts_has_localhost_the_hostname_and_extras() {
        let extra = vec![HostEntry { ip: "10.0.0.9".into(), names: vec!["db".into(), "db.local".into()] }];
        let text = render_hosts("web", Some("10.0.0.2".parse().unwrap()), &extra).unwrap();
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(
            lines,
            [
                "127.0.0.1\tlocalhost",
                "::1\tlocalhost ip6-localhost ip6-loopback",
                "10.0.0.2\tweb",
                "10.0.0.9\tdb db.local"
            ]
        );
        let text = render_hosts("web", None, &[]).unwrap();
        assert!(text.contains("127.0.1.1\tweb\n"), "{text}");
        let bad = [HostEntry { ip: "nine".into(), names: vec!["x".into()] }];
        assert!(render_hosts("web", None, &bad).unwrap_err().to_string().contains("\"nine\""));
        let bad = [HostEntry { ip: "10.0.0.9".into(), names: vec![] }];
        assert!(render_hosts("web", None, &bad).unwrap_err().to_string().contains("10.0.0.9"));
        assert!(render_hosts("my host", None, &[]).is_err());
    }

    #[test]
    fn files_are_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etc/hosts");
        write_file(&path, "one\n").unwrap();
        write_file(&path, "two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        assert_eq!(std::fs::read_dir(dir.path().join("etc")).unwrap().count(), 1);
    }
}
