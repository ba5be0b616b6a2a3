//! The `yiwang serve` binary as a user runs it: it starts on the embedded
//! defaults, installs and loads the bundled plugins, and answers `/healthz`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One HTTP/1.1 request over a plain socket: (status, body).
fn request(addr: &str, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
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

    let (status, body) = request(&addr, "GET", "/healthz", None, "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"ready\""), "{body}");
    let (status, _) = request(&addr, "GET", "/api/plugins", None, "");
    assert_eq!(status, 401, "the plugin list needs a log-in");

    // The first start created the operator `admin` and wrote its password, owner-only.
    let file = dir.path().join("initial-admin-password");
    assert!(line.contains("serving on"));
    let password = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    #[cfg(unix)]
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions()) & 0o777, 0o600);
    let login = format!("{{\"username\":\"admin\",\"password\":\"{password}\"}}");
    let (status, body) = request(&addr, "POST", "/api/auth/login", None, &login);
    assert_eq!(status, 200, "{body}");
    let token = serde_json::from_str::<serde_json::Value>(&body).unwrap()["token"].as_str().unwrap().to_owned();
    let (status, body) = request(&addr, "GET", "/api/plugins", Some(&token), "");
    assert_eq!(status, 200);
    assert!(body.contains("\"yingji\""), "the bundled plugin is loaded: {body}");
    assert!(dir.path().join("yiwang.db").exists(), "SQLite lives in the data directory");
    assert!(dir.path().join("plugins/yingji/plugin.wasm").exists(), "bundled plugins are installed");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn audit_verify_reports_an_intact_chain_and_the_first_broken_link() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let db = yiwang::db::Db::open_sqlite(dir.path()).await.unwrap();
        let audit = yiwang::audit::Audit::new(db.clone(), std::sync::Arc::new(yiwang::clock::SystemClock));
        for i in 0..3 {
            let subject = format!("case-{i}");
            let e = yiwang::audit::Entry { actor: "host", action: "case.close", subject: &subject, outcome: "ok", detail: "" };
            audit.append(e).await.unwrap();
        }
    });
    let verify = || {
        Command::new(env!("CARGO_BIN_EXE_yiwang")).args(["audit", "verify", "--data-dir"]).arg(dir.path()).output().unwrap()
    };
    let ok = verify();
    assert!(ok.status.success());
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "audit chain intact: 3 records");

    rt.block_on(async {
        let db = yiwang::db::Db::open_sqlite(dir.path()).await.unwrap();
        sqlx::query("UPDATE audit_log SET outcome = 'denied' WHERE seq = 2").execute(db.pool()).await.unwrap();
    });
    let broken = verify();
    assert!(!broken.status.success());
    assert!(String::from_utf8_lossy(&broken.stdout).contains("broken at record 2"), "{broken:?}");

    let missing = Command::new(env!("CARGO_BIN_EXE_yiwang")).args(["audit", "verify", "--data-dir", "/nonexistent"]).output().unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no database"), "{missing:?}");
}

#[test]
fn audit_kpis_recomputes_the_evaluation_from_the_log_alone() {
    use yiwang::cases::engine::{Channel, Move, NewReport, Who};
    use yiwang::cases::lifecycle::Action;
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let to: i64 = 4_102_444_800_000;
    let expected = rt.block_on(async {
        let mut options = yiwang::app::Options::new(dir.path().to_owned());
        options.install_bundled = false;
        let app = yiwang::app::App::build(options, None).await.unwrap();
        let cases = &app.state.services.cases;
        let report = NewReport {
            channel: Channel::Department,
            idempotency_key: None,
            category_code: "010110".into(),
            title: None,
            description: "中山路井盖破损".into(),
            location: None,
            address: None,
            evidence: vec![],
            caller: None,
        };
        for n in 0..2 {
            let intake = cases.intake(&report, Some("cg.staff")).await.unwrap();
            let moves = [(Action::Accept, None), (Action::Register, None), (Action::Dispatch, Some("chengguan"))];
            for (action, department) in moves.into_iter().take(n + 2) {
                let mv = Move { action, reason: String::new(), department: department.map(str::to_owned), extension_hours: None, into: None, suggestion: None };
                cases.transition(&intake.case, &mv, Who::System("host:test")).await.unwrap();
            }
        }
        serde_json::to_value(app.state.services.evaluation.evaluate(0, to).await.unwrap()).unwrap()
    });
    let out = Command::new(env!("CARGO_BIN_EXE_yiwang"))
        .args(["audit", "kpis", "--data-dir"])
        .arg(dir.path())
        .args(["--from", "0", "--to", &to.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got, expected, "the audit log alone gives what the tables give");
    let centre = got["departments"].as_array().unwrap().iter().find(|d| d["department"] == "command-center").unwrap();
    assert_eq!(centre["steps"]["register"]["done"], 2, "{got}");
    assert_eq!(centre["steps"]["dispatch"]["done"], 1, "{got}");

    let bad = Command::new(env!("CARGO_BIN_EXE_yiwang"))
        .args(["audit", "kpis", "--data-dir"])
        .arg(dir.path())
        .args(["--from", "10", "--to", "5"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not before"), "{bad:?}");
}

#[test]
fn data_import_loads_a_csv_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_yiwang")).args(args).arg("--data-dir").arg(dir.path()).output().unwrap()
    };
    let csv = dir.path().join("部件.csv");
    std::fs::write(
        &csv,
        "code,major,minor,name,location.lat,location.lon,status\n\
         3201020101000001,01,01,上水井盖,32.045,118.79,intact\n\
         3201020101000002,01,01,上水井盖,32.045,118.81,damaged\n",
    )
    .unwrap();
    let file = csv.to_str().unwrap();
    let out = run(&["data", "import", "--dataset", "components", file]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no database"), "{out:?}");

    // An installation with the example city loaded.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(yiwang::db::Db::open_sqlite(dir.path())).unwrap();
    let space = yiwang::space::Space::new(db.clone());
    rt.block_on(space.load_geojson(include_str!("data/city.geojson"))).unwrap();
    let count = || -> i64 {
        use sqlx::Row;
        let q = sqlx::query("SELECT COUNT(*) FROM records WHERE dataset = 'components'");
        rt.block_on(q.fetch_one(db.pool())).unwrap().get(0)
    };

    let bad = dir.path().join("bad.csv");
    let text = std::fs::read_to_string(&csv).unwrap().replace("damaged", "gone");
    std::fs::write(&bad, text).unwrap();
    let out = run(&["data", "import", "--dataset", "components", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nothing was imported") && stderr.contains("line 3") && stderr.contains("/status"), "{stderr}");
    assert_eq!(count(), 0);

    let out = run(&["data", "import", "--dataset", "components", file]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("imported into `components`: 2 inserted, 0 updated"), "{stdout}");
    assert_eq!(count(), 2);
    let out = run(&["data", "import", "--dataset", "components", "--format", "xml", file]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--format `xml`"), "{out:?}");
}
