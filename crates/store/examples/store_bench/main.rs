//! Store benchmark: N creates from C concurrent clients through our backends,
//! beside the raw store doing the same work with the same durability, in one
//! run so the ratios hold on a noisy machine. `bench/store/run.sh` starts etcd
//! and runs this; see there for the arguments.
//!
//! Raw SQLite: WAL, `synchronous = FULL`, one autocommit INSERT per object
//! (what an application does without a writer thread), with one connection
//! per client and with one shared connection. Raw etcd: plain `put`s, and the
//! guarded create txn kube-apiserver sends, through etcd-client directly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

mod phases;
use phases::{fanout, growth};
use store::{Etcd, Sqlite, Store};

pub(crate) struct Args {
    pub(crate) n: usize,
    pub(crate) clients: usize,
    /// Each configuration runs this many times, interleaved; the best run counts.
    pub(crate) rounds: usize,
    /// Rounds of the steady-update growth phase (0: skip).
    pub(crate) growth: usize,
    /// Watchers in the fan-out phase (0: skip).
    pub(crate) watchers: usize,
    pub(crate) dir: std::path::PathBuf,
    pub(crate) etcd: Option<String>,
}

fn args() -> Result<Args> {
    let mut a = Args {
        n: 10_000,
        clients: 16,
        rounds: 3,
        growth: 10,
        watchers: 1000,
        dir: std::env::temp_dir(),
        etcd: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--n" => a.n = value.parse()?,
            "--clients" => a.clients = value.parse()?,
            "--rounds" => a.rounds = value.parse::<usize>()?.max(1),
            "--growth" => a.growth = value.parse()?,
            "--watchers" => a.watchers = value.parse()?,
            "--dir" => a.dir = value.into(),
            "--etcd" => a.etcd = Some(value),
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    Ok(a)
}

/// A ConfigMap-sized JSON value.
pub(crate) fn value(i: usize) -> Vec<u8> {
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

async fn raw_etcd(url: &str, a: &Args, tag: usize) -> Result<Run> {
    let client = etcd_client::Client::connect([url], None).await?;
    measure(a.n, a.clients, move |i| {
        let mut kv = client.kv_client();
        async move {
            kv.put(format!("/raw{tag}/cm-{i}"), value(i), None).await?;
            Ok(())
        }
    })
    .await
}

/// The guarded create kube-apiserver sends to etcd, through etcd-client directly.
async fn raw_etcd_txn(url: &str, a: &Args, tag: usize) -> Result<Run> {
    use etcd_client::{Compare, CompareOp, Txn, TxnOp};
    let client = etcd_client::Client::connect([url], None).await?;
    measure(a.n, a.clients, move |i| {
        let mut kv = client.kv_client();
        async move {
            let key = format!("/rawtxn{tag}/cm-{i}");
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

/// Keeps the better (higher throughput) of two runs.
fn best(slot: &mut Option<Run>, run: Run) {
    if slot.as_ref().is_none_or(|b| run.per_sec > b.per_sec) {
        *slot = Some(run);
    }
}

#[derive(Default)]
struct Best {
    raw: Option<Run>,
    raw_one: Option<Run>,
    sqlite: Option<Run>,
    etcd_put: Option<Run>,
    etcd_txn: Option<Run>,
    etcd: Option<Run>,
}

async fn round(a: &Args, r: usize, b: &mut Best) -> Result<()> {
    best(
        &mut b.raw,
        raw_sqlite(a, a.clients, &format!("raw{r}.db")).await?,
    );
    best(
        &mut b.raw_one,
        raw_sqlite(a, 1, &format!("raw1-{r}.db")).await?,
    );
    let sqlite: Arc<dyn Store> = Arc::new(Sqlite::open(a.dir.join(format!("ours{r}.db")))?);
    best(&mut b.sqlite, ours(sqlite, a).await?);
    if let Some(url) = &a.etcd {
        let prefix = format!("/bosun-bench{r}");
        let etcd: Arc<dyn Store> =
            Arc::new(Etcd::connect(std::slice::from_ref(url), &prefix).await?);
        best(&mut b.etcd, ours(etcd, a).await?);
        best(&mut b.etcd_put, raw_etcd(url, a, r).await?);
        best(&mut b.etcd_txn, raw_etcd_txn(url, a, r).await?);
    }
    Ok(())
}

fn print_table(b: &Best) {
    println!("| store                  | objects/s  | p50 ms    | p99 ms    | ratio ours/raw  |");
    println!("|------------------------|-----------:|----------:|----------:|----------------:|");
    let rows: [(&str, &Option<Run>, &Option<Run>); 8] = [
        ("raw rusqlite, C conns", &b.raw, &None),
        ("raw rusqlite, 1 conn", &b.raw_one, &None),
        ("bosun store (sqlite)", &b.sqlite, &b.raw),
        ("  (vs 1 conn)", &b.sqlite, &b.raw_one),
        ("raw etcd-client put", &b.etcd_put, &None),
        ("raw etcd-client txn", &b.etcd_txn, &None),
        ("bosun store (etcd)", &b.etcd, &b.etcd_put),
        ("  (vs guarded txn)", &b.etcd, &b.etcd_txn),
    ];
    for (name, run, base) in rows {
        if let Some(run) = run {
            row(name, run, base.as_ref());
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = args()?;
    println!(
        "{} creates, {} concurrent clients, ConfigMap-sized values; best of {} interleaved rounds\n",
        a.n, a.clients, a.rounds
    );
    let mut b = Best::default();
    for r in 0..a.rounds {
        round(&a, r, &mut b).await?;
    }
    print_table(&b);
    if a.watchers > 0 {
        println!();
        fanout(&a).await?;
    }
    if a.growth > 0 {
        println!();
        growth(&a, a.etcd.as_deref()).await?;
    }
    Ok(())
}
