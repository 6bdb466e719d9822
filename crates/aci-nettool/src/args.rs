//! Positional arguments of one subcommand, parsed with errors that name the argument.

use std::net::SocketAddr;

/// The arguments after the subcommand.
pub struct Args<'a> {
    command: &'a str,
    rest: &'a [String],
}

impl<'a> Args<'a> {
    /// Wraps `rest`, the arguments of `command`.
    pub fn new(command: &'a str, rest: &'a [String]) -> Self {
        Self { command, rest }
    }

    fn get(&self, i: usize, what: &str) -> Result<&'a str, String> {
        self.rest.get(i).map(String::as_str).ok_or_else(|| {
            format!("{}: missing argument {} <{what}> (see `aci-nettool help`)", self.command, i + 1)
        })
    }

    /// Argument `i` as a port number.
    pub fn port(&self, i: usize) -> Result<u16, String> {
        let s = self.get(i, "port")?;
        s.parse().map_err(|_| format!("{}: <port> {s:?} is not a port number", self.command))
    }

    /// Every argument as a port number (at least one).
    pub fn ports(&self) -> Result<Vec<u16>, String> {
        self.get(0, "port")?;
        (0..self.rest.len()).map(|i| self.port(i)).collect()
    }

    /// Argument `i` as a positive number named `what`.
    pub fn number(&self, i: usize, what: &str) -> Result<u64, String> {
        let s = self.get(i, what)?;
        match s.parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{}: <{what}> {s:?} is not a positive number", self.command)),
        }
    }

    /// Argument `i` as a numeric `addr:port`.
    pub fn addr(&self, i: usize) -> Result<SocketAddr, String> {
        let s = self.get(i, "addr:port")?;
        s.parse()
            .map_err(|_| format!("{}: <addr:port> {s:?} is not a numeric address and port", self.command))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn bad_arguments_are_named() {
        let rest = strings(&["70000", "0", "example.com:80"]);
        let a = Args::new("x", &rest);
        assert!(a.port(0).unwrap_err().contains("<port> \"70000\""));
        assert!(a.number(1, "MiB").unwrap_err().contains("<MiB> \"0\""));
        assert!(a.addr(2).unwrap_err().contains("not a numeric address"));
        assert!(a.port(3).unwrap_err().contains("missing argument 4"));
        let rest = strings(&["1.2.3.4:5", "53", "54"]);
        let a = Args::new("x", &rest);
        assert_eq!(a.addr(0).unwrap(), "1.2.3.4:5".parse().unwrap());
        assert_eq!(Args::new("x", &rest[1..]).ports().unwrap(), [53, 54]);
        assert!(Args::new("x", &[]).ports().is_err());
    }
}
