//! One probe attempt over the network: an HTTP GET or a TCP connect to the group's shared
//! localhost, bounded by the probe's timeout.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The outcome of one attempt: success, and what was seen.
pub type Attempt = (bool, String);

/// Connects to 127.0.0.1:`port` within `timeout`.
pub fn tcp(port: u16, timeout: Duration) -> Attempt {
    match connect(port, timeout) {
        Ok(_) => (true, format!("tcp connect to port {port} accepted")),
        Err(err) => (false, format!("tcp connect to port {port} failed: {err}")),
    }
}

/// `GET path` on 127.0.0.1:`port` within `timeout` (connect, send and the status line
/// together); a status from 200 to 399 is success.
pub fn http_get(port: u16, path: &str, headers: &[(String, String)], timeout: Duration) -> Attempt {
    let started = Instant::now();
    match http_status(port, path, headers, timeout, started) {
        Ok(status) if (200..400).contains(&status) => {
            (true, format!("HTTP GET {path} on port {port}: {status}"))
        }
        Ok(status) => (false, format!("HTTP probe failed with statuscode: {status}")),
        Err(err) => (false, format!("HTTP GET {path} on port {port} failed: {err}")),
    }
}

fn connect(port: u16, timeout: Duration) -> std::io::Result<TcpStream> {
    TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), timeout)
}

fn http_status(
    port: u16,
    path: &str,
    headers: &[(String, String)],
    timeout: Duration,
    started: Instant,
) -> std::io::Result<u16> {
    let mut stream = connect(port, timeout)?;
    let left = |started: Instant| {
        timeout.checked_sub(started.elapsed()).filter(|d| !d.is_zero()).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no answer within {timeout:?}"))
        })
    };
    stream.set_write_timeout(Some(left(started)?))?;
    let path = if path.is_empty() { "/" } else { path };
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: aci-probe\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    // Read up to the end of the status line.
    let mut seen = Vec::with_capacity(64);
    let mut buf = [0u8; 256];
    while !seen.contains(&b'\n') && seen.len() < 4096 {
        stream.set_read_timeout(Some(left(started)?))?;
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&seen);
    let status = line.split_whitespace().nth(1).and_then(|code| code.parse::<u16>().ok());
    status.ok_or_else(|| {
        let first = line.lines().next().unwrap_or("").chars().take(80).collect::<String>();
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not an HTTP status line: {first:?}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn serve_once(answer: &'static [u8], delay: Duration) -> u16 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut req = [0u8; 1024];
            let n = conn.read(&mut req).unwrap();
            assert!(String::from_utf8_lossy(&req[..n]).starts_with("GET /healthz HTTP/1.1\r\n"));
            std::thread::sleep(delay);
            let _ = conn.write_all(answer);
        });
        port
    }

    #[test]
    fn http_status_decides_success() {
        let port = serve_once(b"HTTP/1.1 204 No Content\r\n\r\n", Duration::ZERO);
        assert!(http_get(port, "/healthz", &[], Duration::from_secs(5)).0);
        let port = serve_once(b"HTTP/1.0 500 Internal Server Error\r\n\r\n", Duration::ZERO);
        let (ok, msg) = http_get(port, "/healthz", &[], Duration::from_secs(5));
        assert!(!ok);
        assert!(msg.contains("500"), "{msg}");
        let port = serve_once(b"garbage\n", Duration::ZERO);
        assert!(!http_get(port, "/healthz", &[], Duration::from_secs(5)).0);
    }

    #[test]
    fn a_server_that_hangs_fails_within_the_timeout() {
        let port = serve_once(b"HTTP/1.1 200 OK\r\n\r\n", Duration::from_secs(3));
        let started = Instant::now();
        let (ok, msg) = http_get(port, "/healthz", &[], Duration::from_millis(300));
        assert!(!ok, "{msg}");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    }

    #[test]
    fn tcp_connect_succeeds_only_with_a_listener() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(tcp(port, Duration::from_secs(1)).0);
        drop(listener);
        assert!(!tcp(port, Duration::from_secs(1)).0);
    }
}
