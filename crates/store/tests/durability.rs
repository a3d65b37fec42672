//! kill -9 durability: a child process writes from many tasks and prints an
//! acknowledgement after each write returns; the parent SIGKILLs it while
//! writes are in flight, reopens the file, and checks that every acknowledged
//! write is there, whole, and that SQLite's integrity check passes.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use store::{Sqlite, Store};

const CHILD_ENV: &str = "BOSUN_STORE_DURABILITY_DB";
const WRITERS: usize = 16;
/// Kill the child after this many acknowledgements.
const KILL_AFTER: usize = 3000;

/// The value written at `key`: long enough to span pages, checkable on its own.
fn value_for(key: &str, n: usize) -> Vec<u8> {
    format!("{key}#{n};").repeat(64).into_bytes()
}

#[test]
#[ignore = "helper: kill9_keeps_every_acknowledged_write runs it in a child process"]
fn durability_child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        eprintln!("skipped: only runs as the durability test's child");
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    rt.block_on(async move {
        let store: Arc<dyn Store> = Arc::new(Sqlite::open(&path).expect("open store"));
        let tasks: Vec<_> = (0..WRITERS)
            .map(|w| tokio::spawn(writer(store.clone(), w)))
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    });
}

/// Creates `/d/<w>/<i>` forever, and every fifth time bumps `/c/<w>`.
async fn writer(store: Arc<dyn Store>, w: usize) {
    let counter = format!("/c/{w}");
    let mut counter_rev = store
        .create(&counter, value_for(&counter, 0))
        .await
        .expect("create counter")
        .mod_revision;
    ack(&format!("counter {counter} {counter_rev} 0"));
    for i in 1.. {
        let key = format!("/d/{w}/{i}");
        let kv = store
            .create(&key, value_for(&key, i))
            .await
            .expect("create");
        ack(&format!("create {key} {} {i}", kv.mod_revision));
        if i % 5 == 0 {
            let kv = store
                .update(&counter, value_for(&counter, i), counter_rev)
                .await
                .expect("update");
            counter_rev = kv.mod_revision;
            ack(&format!("counter {counter} {counter_rev} {i}"));
        }
    }
}

fn ack(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "ack {line}");
    let _ = out.flush();
}

struct Ack {
    kind: String,
    key: String,
    rev: i64,
    n: usize,
}

fn parse(line: &str) -> Option<Ack> {
    let mut parts = line.strip_prefix("ack ")?.split(' ');
    Some(Ack {
        kind: parts.next()?.to_string(),
        key: parts.next()?.to_string(),
        rev: parts.next()?.parse().ok()?,
        n: parts.next()?.parse().ok()?,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_keeps_every_acknowledged_write() {
    let dir = testkit::scratch_dir();
    let path = dir.path().join("state.db");
    let acks = run_and_kill(&path);
    assert!(
        acks.len() >= KILL_AFTER,
        "only {} acknowledgements",
        acks.len()
    );

    let conn = rusqlite::Connection::open(&path).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(conn);

    let store = Sqlite::open(&path).unwrap();
    let mut counters: HashMap<String, (i64, usize)> = HashMap::new();
    for a in &acks {
        match a.kind.as_str() {
            "create" => {
                let kv = store.get(&a.key).await.unwrap();
                let kv = kv.unwrap_or_else(|| panic!("acknowledged {} is missing", a.key));
                assert_eq!(kv.mod_revision, a.rev, "{}", a.key);
                assert_eq!(kv.value, value_for(&a.key, a.n), "{} is not whole", a.key);
            }
            _ => {
                let e = counters.entry(a.key.clone()).or_default();
                if a.rev > e.0 {
                    *e = (a.rev, a.n);
                }
            }
        }
    }
    for (key, (rev, _)) in &counters {
        let kv = store.get(key).await.unwrap().expect("counter present");
        assert!(kv.mod_revision >= *rev, "{key} lost an acknowledged update");
        let n: usize = String::from_utf8_lossy(&kv.value)
            .split(['#', ';'])
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("well-formed counter");
        assert_eq!(kv.value, value_for(key, n), "{key} is not whole");
    }
    let max = acks.iter().map(|a| a.rev).max().unwrap_or(0);
    assert!(store.current_revision().await.unwrap() >= max);
    eprintln!(
        "{} acknowledged writes survived kill -9 (latest revision {max})",
        acks.len()
    );
}

/// Runs the child writer, SIGKILLs it after `KILL_AFTER` acks, returns every
/// ack it printed (including those still in the pipe at the kill).
fn run_and_kill(path: &std::path::Path) -> Vec<Ack> {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "durability_child_writer",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut guard = testkit::Cleanup::new();
    guard.kill_process(child.id() as i32);
    let stdout = child.stdout.take().unwrap();
    let mut acks = Vec::new();
    let mut killed = false;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if let Some(a) = parse(&line) {
            acks.push(a);
        }
        if !killed && acks.len() >= KILL_AFTER {
            child.kill().unwrap(); // SIGKILL, while writers are mid-stream
            killed = true;
        }
    }
    let status = child.wait().unwrap();
    assert!(killed, "the child stopped on its own: {status}");
    acks
}
