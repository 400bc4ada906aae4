//! `/healthz` and `/readyz` for the orchestrator's probes. A plain
//! HTTP/1.0 responder: two fixed answers do not need a web framework.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Serves until the process ends. `ready` is true while the last exchange
/// with ldguard-server succeeded.
pub fn spawn(listener: TcpListener, ready: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let ready = ready.clone();
            std::thread::spawn(move || answer(stream, &ready));
        }
    });
}

fn answer(stream: TcpStream, ready: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // The headers are read and ignored.
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("");
    let (status, body) = match path {
        "/healthz" => ("200 OK", "ok\n"),
        "/readyz" if ready.load(Ordering::Relaxed) => ("200 OK", "ready\n"),
        "/readyz" => (
            "503 Service Unavailable",
            "ldguard-server unreachable or refusing the token\n",
        ),
        _ => ("404 Not Found", "not found: /healthz or /readyz\n"),
    };
    let mut out = &stream;
    let _ = write!(
        out,
        "HTTP/1.0 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}
