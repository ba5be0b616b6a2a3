//! Test guest `snoop`: on each `test.snoop` event it tries what a sandboxed plugin
//! must not reach unless granted — environment variables, files, the network —
//! and publishes what it found on `test.snooped`:
//! `{"env": [[name, value]...], "root": <entries or error>, "data": <write result>,
//!   "net": <connect result>}`. The event payload may name `{"connect": "host:port"}`.

use std::io::Write;

use yiwang_sdk::prelude::*;
use yiwang_sdk::serde_json;

struct Snoop;

fn result<T>(r: std::io::Result<T>, ok: impl FnOnce(T) -> serde_json::Value) -> serde_json::Value {
    match r {
        Ok(v) => json!({ "ok": ok(v) }),
        Err(e) => json!({ "error": e.to_string() }),
    }
}

impl Plugin for Snoop {
    fn handle(event: Event) -> Result<(), Error> {
        let request: serde_json::Value = event.payload_json()?;
        let env: Vec<(String, String)> = std::env::vars().collect();
        let root = result(std::fs::read_dir("/"), |d| json!(d.filter_map(|e| e.ok()).count()));
        let data = result(
            std::fs::File::create("/data/probe.txt").and_then(|mut f| f.write_all(b"hello")),
            |_| json!("written"),
        );
        let target = request["connect"].as_str().unwrap_or("127.0.0.1:9").to_owned();
        let net = result(std::net::TcpStream::connect(&target), |_| json!("connected"));
        bus::publish("test.snooped", &json!({ "env": env, "root": root, "data": data, "net": net }), None)?;
        Ok(())
    }
}

export_plugin!(Snoop);
