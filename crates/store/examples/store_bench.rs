//! Store benchmark: N creates from C concurrent clients through our backends,
//! beside the raw store doing the same work with the same durability, in one
//! run so the ratios hold on a noisy machine. `bench/store/run.sh` starts etcd
//! and runs this; see there for the arguments.
//!
//! Raw SQLite: one connection per client, WAL, `synchronous = FULL`, one
//! autocommit INSERT per object (what an application does without a writer
//! thread). Raw etcd: plain `put`s through etcd-client.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use store::{Etcd, Sqlite, Store};

struct Args {
    n: usize,
    clients: usize,
    dir: std::path::PathBuf,
    etcd: Option<String>,
}

fn args() -> Result<Args> {
    let mut a = Args {
        n: 10_000,
        clients: 16,
        dir: std::env::temp_dir(),
        etcd: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--n" => a.n = value.parse()?,
            "--clients" => a.clients = value.parse()?,
            "--dir" => a.dir = value.into(),
            "--etcd" => a.etcd = Some(value),
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    Ok(a)
}

/// A ConfigMap-sized JSON value.
fn value(i: usize) -> Vec<u8> {
    format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"cm-{i}","namespace":"bench","uid":"{i:032x}"}},"data":{{"key":"{}"}}}}"#,
        "v".repeat(200)
    )
    .into_bytes()
}

struct Run {
    per_sec: f64,
    p50: Duration,
    p99: Duration,
}

/// Runs `op(i)` for i in 0..n from `clients` concurrent tasks.
async fn measure<F, Fut>(n: usize, clients: usize, op: F) -> Result<Run>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                for i in (c..n).step_by(clients) {
                    let t = Instant::now();
                    op(i).await?;
                    lat.push(t.elapsed());
                }
                Ok::<_, anyhow::Error>(lat)
            })
        })
        .collect();
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await??);
    }
    let elapsed = start.elapsed();
    all.sort();
    let at = |q: f64| {
        all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Ok(Run {
        per_sec: n as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    })
}

fn row(name: &str, r: &Run, base: Option<&Run>) {
    let ratio = base
        .map(|b| format!("{:.2}", r.per_sec / b.per_sec))
        .unwrap_or_else(|| "-".into());
    println!(
        "| {name:<22} | {:>10.0} | {:>9.2} | {:>9.2} | {ratio:>15} |",
        r.per_sec,
        r.p50.as_secs_f64() * 1e3,
        r.p99.as_secs_f64() * 1e3
    );
}

async fn raw_sqlite(a: &Args, connections: usize, name: &str) -> Result<Run> {
    let path = a.dir.join(name);
    let setup = rusqlite::Connection::open(&path)?;
    setup.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    setup.execute_batch(
        "CREATE TABLE IF NOT EXISTS t (key TEXT PRIMARY KEY, value BLOB NOT NULL)",
    )?;
    let mut conns = Vec::new();
    for _ in 0..connections {
        let c = rusqlite::Connection::open(&path)?;
        c.busy_timeout(Duration::from_secs(60))?;
        c.execute_batch("PRAGMA synchronous = FULL")?;
        conns.push(std::sync::Mutex::new(c));
    }
    let conns = Arc::new(conns);
    measure(a.n, a.clients, move |i| {
        let conns = conns.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let conn = conns[i % conns.len()]
                    .lock()
                    .map_err(|_| anyhow::anyhow!("poisoned"))?;
                let sql = "INSERT INTO t (key, value) VALUES (?1, ?2)";
                conn.execute(sql, rusqlite::params![format!("/cm/{i}"), value(i)])?;
                Ok(())
            })
            .await?
        }
    })
    .await
}

async fn ours(store: Arc<dyn Store>, a: &Args) -> Result<Run> {
    measure(a.n, a.clients, move |i| {
        let store = store.clone();
        async move {
            store
                .create(&format!("/registry/configmaps/bench/cm-{i}"), value(i))
                .await?;
            Ok(())
        }
    })
    .await
}

async fn raw_etcd(url: &str, a: &Args) -> Result<Run> {
    let client = etcd_client::Client::connect([url], None).await?;
    measure(a.n, a.clients, move |i| {
        let mut kv = client.kv_client();
        async move {
            kv.put(format!("/raw/cm-{i}"), value(i), None).await?;
            Ok(())
        }
    })
    .await
}

/// The guarded create kube-apiserver sends to etcd, through etcd-client directly.
async fn raw_etcd_txn(url: &str, a: &Args) -> Result<Run> {
    use etcd_client::{Compare, CompareOp, Txn, TxnOp};
    let client = etcd_client::Client::connect([url], None).await?;
    measure(a.n, a.clients, move |i| {
        let mut kv = client.kv_client();
        async move {
            let key = format!("/rawtxn/cm-{i}");
            let txn = Txn::new()
                .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(key.clone(), value(i), None)])
                .or_else([TxnOp::get(key, None)]);
            kv.txn(txn).await?;
            Ok(())
        }
    })
    .await
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = args()?;
    println!(
        "{} creates, {} concurrent clients, ConfigMap-sized values\n",
        a.n, a.clients
    );
    println!("| store                  | objects/s  | p50 ms    | p99 ms    | ratio ours/raw  |");
    println!("|------------------------|-----------:|----------:|----------:|----------------:|");
    let raw = raw_sqlite(&a, a.clients, "raw.db").await?;
    let raw_one = raw_sqlite(&a, 1, "raw1.db").await?;
    row("raw rusqlite, C conns", &raw, None);
    row("raw rusqlite, 1 conn", &raw_one, None);
    let sqlite: Arc<dyn Store> = Arc::new(Sqlite::open(a.dir.join("ours.db"))?);
    let ours_sqlite = ours(sqlite, &a).await?;
    row("bosun store (sqlite)", &ours_sqlite, Some(&raw));
    row("  (vs 1 conn)", &ours_sqlite, Some(&raw_one));
    if let Some(url) = &a.etcd {
        let etcd: Arc<dyn Store> =
            Arc::new(Etcd::connect(std::slice::from_ref(url), "/bosun-bench").await?);
        let ours_etcd = ours(etcd, &a).await?;
        let raw = raw_etcd(url, &a).await?;
        let raw_txn = raw_etcd_txn(url, &a).await?;
        row("raw etcd-client put", &raw, None);
        row("raw etcd-client txn", &raw_txn, None);
        row("bosun store (etcd)", &ours_etcd, Some(&raw));
        row("  (vs guarded txn)", &ours_etcd, Some(&raw_txn));
    }
    Ok(())
}
