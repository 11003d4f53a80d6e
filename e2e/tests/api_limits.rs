//! Limits a client cannot talk around, on the running API over real TCP: a connection that sends
//! nothing, headers that never finish, and a kept-alive connection left idle are closed after the
//! read timeout (10 s, `--api-read-timeout-seconds`); a
//! body over 64 KiB is 413 and a body that stops arriving is 503 at the call's deadline (30 s),
//! both problem documents, neither leaving a TenancyRequest behind.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use commons_e2e::api::{exchange, token};
use commons_e2e::kubectl;
use serde_json::json;

fn addr() -> String {
    std::env::var("COMMONS_LISTEN").unwrap_or_else(|_| "127.0.0.1:18080".into())
}

/// Everything the server sends until it closes the connection, and when it closed it (counted
/// from `since`); fails if it is still open after `limit`.
fn until_closed(mut stream: TcpStream, since: Instant, limit: Duration) -> (String, Duration) {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "the connection is still open after {:?} ({e}); it sent: {}",
                since.elapsed(),
                String::from_utf8_lossy(&got)
            ),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), since.elapsed())
}

/// Whether a TenancyRequest of this name exists anywhere.
fn request_exists(name: &str) -> bool {
    kubectl(&["get", "tenancyrequests", "-A", "-o", "name"])
        .unwrap()
        .lines()
        .any(|l| l.ends_with(&format!("/{name}")))
}

#[test]
fn a_connection_that_sends_nothing_is_closed_at_the_header_timeout() {
    let stream = TcpStream::connect(addr()).unwrap();
    let (answer, after) = until_closed(stream, Instant::now(), Duration::from_secs(40));
    assert!(after >= Duration::from_secs(9) && after < Duration::from_secs(20), "closed after {after:?}");
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[test]
fn headers_that_never_finish_are_cut_off_at_the_header_timeout() {
    let mut stream = TcpStream::connect(addr()).unwrap();
    let started = Instant::now();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: commons\r\n").unwrap();
    let (answer, after) = until_closed(stream, started, Duration::from_secs(40));
    assert!(after >= Duration::from_secs(9) && after < Duration::from_secs(20), "closed after {after:?}");
    // Closed without an answer, or with hyper's 408.
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[test]
fn a_kept_alive_connection_left_idle_is_closed() {
    let mut stream = TcpStream::connect(addr()).unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: commons\r\n\r\n").unwrap();
    let answered = Instant::now();
    let (answer, after) = until_closed(stream, answered, Duration::from_secs(40));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(after >= Duration::from_secs(9) && after < Duration::from_secs(20), "closed after {after:?}");
}

#[test]
fn a_body_over_64_kib_is_refused_and_makes_nothing() {
    let nora = token("nora").unwrap();
    let name = format!("e2e-too-big-{}", std::process::id());
    let body = json!({"name": name, "reason": "x".repeat(70 * 1024)});
    let answer =
        exchange("POST", "/v1/tenancy-requests", &nora, &[&format!("Idempotency-Key: {name}")], Some(&body))
            .unwrap();
    assert_eq!(answer.status, 413, "{}", answer.body);
    assert_eq!(answer.header("content-type"), Some("application/problem+json"));
    assert!(answer.body.contains("64 KiB"), "{}", answer.body);
    assert!(!request_exists(&name));
}

#[test]
fn a_body_that_stops_arriving_is_answered_at_the_deadline_and_makes_nothing() {
    let nora = token("nora").unwrap();
    let name = format!("e2e-slow-body-{}", std::process::id());
    let mut stream = TcpStream::connect(addr()).unwrap();
    let head = format!(
        "POST /v1/tenancy-requests HTTP/1.1\r\nHost: commons\r\nAuthorization: Bearer {nora}\r\n\
         Content-Type: application/json\r\nIdempotency-Key: {name}\r\nContent-Length: 1000\r\n\r\n"
    );
    let started = Instant::now();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(format!("{{\"name\": \"{name}\",").as_bytes()).unwrap();
    // Nothing more is sent: the answer comes at the deadline and the connection is not held.
    let (answer, after) = until_closed(stream, started, Duration::from_secs(60));
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.to_lowercase().contains("content-type: application/problem+json"), "{answer}");
    assert!(answer.contains("the body did not arrive in time"), "{answer}");
    assert!(after >= Duration::from_secs(29) && after < Duration::from_secs(50), "answered after {after:?}");
    assert!(!request_exists(&name));
}
