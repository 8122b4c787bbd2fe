//! `dossier-probe`: the health check of Dossier's container images, which
//! have no shell, curl or grpc_health_probe.
//!
//! ```text
//! dossier-probe http 127.0.0.1:8080 /readyz   # exit 0 on a 2xx answer
//! dossier-probe grpc 127.0.0.1:50051 [SERVICE] # exit 0 when SERVING (grpc.health.v1)
//! ```
//!
//! Standard library only: the HTTP/1.1 request and the single gRPC call over
//! cleartext HTTP/2 (prior knowledge) are small enough to write by hand, and
//! the probe stays a few hundred kilobytes with nothing to patch.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs as _};
use std::process::ExitCode;
use std::time::Duration;

/// Bound on connecting and on each read or write.
const TIMEOUT: Duration = Duration::from_secs(3);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["http", addr, path] => http(addr, path),
        ["grpc", addr] => grpc(addr, ""),
        ["grpc", addr, service] => grpc(addr, service),
        _ => Err("usage: dossier-probe http ADDR PATH | grpc ADDR [SERVICE]".to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("dossier-probe: {error}");
            ExitCode::FAILURE
        }
    }
}

fn connect(addr: &str) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| format!("{addr}: {e}"))?
        .collect();
    let mut last = format!("{addr}: no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, TIMEOUT) {
            Ok(stream) => {
                stream
                    .set_read_timeout(Some(TIMEOUT))
                    .map_err(|e| e.to_string())?;
                stream
                    .set_write_timeout(Some(TIMEOUT))
                    .map_err(|e| e.to_string())?;
                return Ok(stream);
            }
            Err(e) => last = format!("{a}: {e}"),
        }
    }
    Err(last)
}

/// `GET path`; healthy on a 2xx status.
fn http(addr: &str, path: &str) -> Result<(), String> {
    let mut stream = connect(addr)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nUser-Agent: dossier-probe\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut head = [0_u8; 64];
    let mut n = 0;
    // The status line is all we need; stop reading once we have it.
    while n < head.len() && !head[..n].contains(&b'\n') {
        match stream.read(&mut head[n..]).map_err(|e| e.to_string())? {
            0 => break,
            read => n += read,
        }
    }
    let line = String::from_utf8_lossy(&head[..n]);
    let status = line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .ok_or_else(|| format!("not an HTTP answer: {line:?}"))?;
    if status.starts_with('2') {
        Ok(())
    } else {
        Err(format!("GET {path}: HTTP {status}"))
    }
}

// HTTP/2 frame types and flags (RFC 9113).
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;

/// `grpc.health.v1.Health/Check`; healthy when the answer is SERVING (1).
fn grpc(addr: &str, service: &str) -> Result<(), String> {
    let mut stream = connect(addr)?;
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    frame(&mut out, SETTINGS, 0, 0, &[]);
    frame(&mut out, HEADERS, END_HEADERS, 1, &request_headers(addr));
    frame(&mut out, DATA, END_STREAM, 1, &grpc_message(service));
    stream.write_all(&out).map_err(|e| e.to_string())?;

    let mut message = Vec::new();
    loop {
        let mut header = [0_u8; 9];
        stream
            .read_exact(&mut header)
            .map_err(|e| format!("reading the answer: {e}"))?;
        let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        let (kind, flags) = (header[3], header[4]);
        let stream_id =
            u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;
        let mut payload = vec![0_u8; len];
        stream
            .read_exact(&mut payload)
            .map_err(|e| format!("reading the answer: {e}"))?;
        match kind {
            SETTINGS if flags & ACK == 0 => {
                let mut ack = Vec::new();
                frame(&mut ack, SETTINGS, ACK, 0, &[]);
                stream.write_all(&ack).map_err(|e| e.to_string())?;
            }
            PING if flags & ACK == 0 => {
                let mut pong = Vec::new();
                frame(&mut pong, PING, ACK, 0, &payload);
                stream.write_all(&pong).map_err(|e| e.to_string())?;
            }
            DATA if stream_id == 1 => {
                let body = if flags & PADDED != 0 {
                    let pad = usize::from(*payload.first().unwrap_or(&0));
                    payload
                        .get(1..payload.len().saturating_sub(pad))
                        .unwrap_or_default()
                } else {
                    &payload[..]
                };
                message.extend_from_slice(body);
                // One gRPC message: a 5-byte prefix and the protobuf.
                if message.len() >= 5 {
                    let size = u32::from_be_bytes([message[1], message[2], message[3], message[4]])
                        as usize;
                    if message.len() >= 5 + size {
                        return serving(&message[5..5 + size]);
                    }
                }
            }
            // Trailers (or a trailers-only error answer) before any message.
            HEADERS if stream_id == 1 && flags & END_STREAM != 0 => {
                return Err("the server answered without a message (an error status)".to_owned());
            }
            RST_STREAM | GOAWAY => return Err("the server refused the call".to_owned()),
            _ => {}
        }
    }
}

/// HPACK: literal header fields without indexing, new names, no Huffman.
fn request_headers(authority: &str) -> Vec<u8> {
    let mut block = vec![0x83, 0x86]; // :method POST, :scheme http (static table)
    for (name, value) in [
        (":path", "/grpc.health.v1.Health/Check"),
        (":authority", authority),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ] {
        block.push(0x00);
        for s in [name, value] {
            // Every string here is shorter than 127 bytes: one length byte.
            block.push(u8::try_from(s.len()).unwrap_or(127).min(127));
            block.extend_from_slice(&s.as_bytes()[..s.len().min(127)]);
        }
    }
    block
}

/// A `HealthCheckRequest { service }` as one length-prefixed gRPC message.
fn grpc_message(service: &str) -> Vec<u8> {
    let service = &service.as_bytes()[..service.len().min(127)];
    let mut proto = Vec::new();
    if !service.is_empty() {
        proto.push(0x0a); // field 1, length-delimited
        proto.push(service.len() as u8);
        proto.extend_from_slice(service);
    }
    let mut message = vec![0];
    message.extend_from_slice(&(proto.len() as u32).to_be_bytes());
    message.extend_from_slice(&proto);
    message
}

/// `HealthCheckResponse { status = 1 }` is SERVING; an absent field is UNKNOWN (0).
fn serving(proto: &[u8]) -> Result<(), String> {
    match proto {
        [0x08, 1, ..] => Ok(()),
        [0x08, status, ..] => Err(format!("not serving (status {status})")),
        _ => Err("not serving (status 0)".to_owned()),
    }
}

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = (payload.len() as u32).to_be_bytes();
    out.extend_from_slice(&len[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn serve_once(answer: &'static [u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0_u8; 1024];
            let _ = conn.read(&mut buf);
            conn.write_all(answer).unwrap();
        });
        addr
    }

    #[test]
    fn http_is_healthy_on_2xx_only() {
        let ok = serve_once(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        assert!(http(&ok, "/readyz").is_ok());
        let unavailable = serve_once(b"HTTP/1.1 503 Service Unavailable\r\n\r\n");
        assert!(http(&unavailable, "/readyz").unwrap_err().contains("503"));
        let garbage = serve_once(b"SSH-2.0-OpenSSH\r\n");
        assert!(http(&garbage, "/readyz").is_err());
    }

    #[test]
    fn nothing_listening_is_unhealthy() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        assert!(http(&addr, "/healthz").is_err());
        assert!(grpc(&addr, "").is_err());
    }

    #[test]
    fn grpc_answers_are_read() {
        assert!(serving(&[0x08, 1]).is_ok());
        assert!(serving(&[0x08, 2]).is_err());
        assert!(serving(&[]).is_err());
        assert_eq!(grpc_message(""), vec![0, 0, 0, 0, 0]);
        assert_eq!(grpc_message("x"), vec![0, 0, 0, 0, 3, 0x0a, 1, b'x']);
        let mut out = Vec::new();
        frame(&mut out, DATA, END_STREAM, 1, &[9, 9]);
        assert_eq!(out, vec![0, 0, 2, DATA, END_STREAM, 0, 0, 0, 1, 9, 9]);
    }
}
