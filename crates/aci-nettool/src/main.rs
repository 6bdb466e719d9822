//! # aci-nettool — a tiny network test and benchmark tool
//!
//! Built as a static binary (`cargo xtask guest` puts it at `target/guest/aci-nettool`) so
//! one executable runs in aci's guests, on the host and in plain network namespaces; the
//! networking tests and `cargo xtask bench net` use it on both ends of a transfer.
//!
//! Servers (run until killed, every connection or datagram served on its own thread):
//! - `udp-echo <port>...`      echoes every datagram back to its sender.
//! - `tcp-echo <port>`         echoes every byte back on each connection.
//! - `tcp-sink <port>`         reads and discards until EOF, answers one byte, reports bytes.
//! - `tcp-serve <port> <MiB>`  writes MiB bytes to each connection, then closes it.
//!
//! Clients (print one `RESULT key=value...` line on stdout):
//! - `tcp-source <addr:port> <MiB>`  sends MiB to a `tcp-sink`; MiB/s up to its answer byte.
//! - `tcp-fetch <addr:port>`         reads a `tcp-serve` stream to EOF; MiB/s.
//! - `tcp-rr <addr:port> <count>`    1-byte request/response against `tcp-echo`; median, p99 µs.
//! - `udp-rr <addr:port> <count>`    the same over UDP against `udp-echo`; also lost datagrams.
//!
//! Addresses are numeric (`10.0.0.2:80`): a static glibc cannot resolve names.

mod args;
mod stats;
mod tcp;
mod udp;

use std::process::ExitCode;

const USAGE: &str = "usage: aci-nettool <command> ...
  udp-echo <port>...             echo datagrams
  tcp-echo <port>                echo bytes
  tcp-sink <port>                read and discard; report bytes per connection
  tcp-serve <port> <MiB>         write MiB to each connection
  tcp-source <addr:port> <MiB>   send MiB to a tcp-sink; report MiB/s
  tcp-fetch <addr:port>          read a tcp-serve stream; report MiB/s
  tcp-rr <addr:port> <count>     1-byte TCP round trips; report median and p99 us
  udp-rr <addr:port> <count>     1-byte UDP round trips; report median and p99 us";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match run(&argv) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("aci-nettool: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(argv: &[String]) -> Result<(), String> {
    let Some((command, rest)) = argv.split_first() else {
        return Err(USAGE.to_owned());
    };
    let a = args::Args::new(command, rest);
    let io = |e: std::io::Error| format!("{command}: {e}");
    match command.as_str() {
        "udp-echo" => udp::echo(&a.ports()?).map_err(io),
        "tcp-echo" => tcp::echo(a.port(0)?).map_err(io),
        "tcp-sink" => tcp::sink(a.port(0)?).map_err(io),
        "tcp-serve" => tcp::serve(a.port(0)?, a.number(1, "MiB")?).map_err(io),
        "tcp-source" => tcp::source(a.addr(0)?, a.number(1, "MiB")?).map_err(io),
        "tcp-fetch" => tcp::fetch(a.addr(0)?).map_err(io),
        "tcp-rr" => tcp::round_trips(a.addr(0)?, a.number(1, "count")?).map_err(io),
        "udp-rr" => udp::round_trips(a.addr(0)?, a.number(1, "count")?).map_err(io),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command {other:?}\n{USAGE}")),
    }
}
