//! The `yiwang serve` binary as a user runs it: it starts on the embedded
//! defaults, installs and loads the bundled plugins, and answers `/healthz`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

#[test]
fn serve_starts_with_bundled_plugins_and_answers_healthz() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_yiwang"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let started = Instant::now();
    let line = loop {
        let line = rx.recv_timeout(Duration::from_secs(120)).expect("the server printed its address");
        if line.contains("serving on") {
            break line;
        }
        assert!(started.elapsed() < Duration::from_secs(120));
    };
    let addr = line.split("http://").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    assert!(line.contains("0 refused"), "{line}");

    let (status, body) = get(&addr, "/healthz");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"ready\""), "{body}");
    let (status, body) = get(&addr, "/api/plugins");
    assert_eq!(status, 200);
    assert!(body.contains("\"yingji\""), "the bundled plugin is loaded: {body}");
    assert!(dir.path().join("yiwang.db").exists(), "SQLite lives in the data directory");
    assert!(dir.path().join("plugins/yingji/plugin.wasm").exists(), "bundled plugins are installed");
    child.kill().unwrap();
    child.wait().unwrap();
}
