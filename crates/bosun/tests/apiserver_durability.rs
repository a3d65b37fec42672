//! Acceptance 7 at the API level: concurrent writers create ConfigMaps
//! through the API, the server is SIGKILLed in the middle, and after a
//! restart on the same data dir every acknowledged object is there, whole.

mod apiserver_support;

use apiserver_support::{which, Server};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn create(url: &str, token: &str, name: &str) -> bool {
    let body = format!("{{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"{name}\"}},\"data\":{{\"k\":\"{name}\"}}}}");
    let out = Command::new("curl")
        .args([
            "-sk",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
        ])
        .args([
            "-H",
            &format!("Authorization: Bearer {token}"),
            "--data",
            &body,
        ])
        .arg(format!("{url}/api/v1/namespaces/default/configmaps"))
        .output();
    out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "201")
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    if which("curl").is_none() {
        eprintln!("skipped: curl is not installed");
        return;
    }
    let mut server = Server::start();
    let (url, token) = (server.url.clone(), server.token());
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (url, token, acked, stop) =
                (url.clone(), token.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let name = format!("w{w}-{i}");
                    if create(&url, &token, &name) {
                        acked.lock().expect("acked list").push(name);
                    }
                    i += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        let _ = w.join();
    }
    let acked = acked.lock().expect("acked list").clone();
    assert!(
        !acked.is_empty(),
        "no write was acknowledged before the kill"
    );
    server.restart();
    let (code, body) = server.curl(&[
        "-H",
        &format!("Authorization: Bearer {}", server.token()),
        "/api/v1/namespaces/default/configmaps",
    ]);
    assert_eq!(code, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).expect("the list is JSON");
    let items = list["items"].as_array().expect("items");
    for item in items {
        let name = item["metadata"]["name"].as_str().unwrap_or("");
        if name.starts_with('w') {
            assert_eq!(item["data"]["k"], name, "object {name} is whole");
        }
    }
    let present: std::collections::HashSet<&str> = items
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    let missing: Vec<&String> = acked
        .iter()
        .filter(|n| !present.contains(n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes lost: {missing:?}",
        missing.len(),
        acked.len()
    );
    eprintln!(
        "{} acknowledged writes, all present after kill -9",
        acked.len()
    );
}
