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
    /// Each configuration runs this many times, interleaved; the best run counts.
    rounds: usize,
    /// Rounds of the steady-update growth phase (0: skip).
    growth: usize,
    /// Watchers in the fan-out phase (0: skip).
    watchers: usize,
    dir: std::path::PathBuf,
    etcd: Option<String>,
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

/// Updates every key of `keys` once, from `clients` tasks; returns the new revisions.
async fn update_all(
    store: &Arc<dyn Store>,
    keys: &[(String, i64)],
    clients: usize,
) -> Result<Vec<(String, i64)>> {
    let keys = Arc::new(keys.to_vec());
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (store, keys) = (store.clone(), keys.clone());
            tokio::spawn(async move {
                let mut out = Vec::new();
                for (key, rev) in keys.iter().skip(c).step_by(clients) {
                    let kv = store.update(key, value(*rev as usize), *rev).await?;
                    out.push((key.clone(), kv.mod_revision));
                }
                Ok::<_, anyhow::Error>(out)
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}

async fn seed(store: &Arc<dyn Store>, n: usize) -> Result<Vec<(String, i64)>> {
    let mut keys = Vec::new();
    for i in 0..n {
        let key = format!("/registry/configmaps/growth/cm-{i}");
        keys.push((
            key.clone(),
            store.create(&key, value(i)).await?.mod_revision,
        ));
    }
    Ok(keys)
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

fn file_size(path: &std::path::Path) -> u64 {
    let wal = path.with_extension("db-wal");
    [path, wal.as_path()]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// A steady update load (every key rewritten each round): database size
/// without compaction, and with compaction + maintain after each round.
async fn growth(a: &Args, etcd_url: Option<&str>) -> Result<()> {
    const KEYS: usize = 1000;
    println!(
        "steady updates: {KEYS} keys rewritten per round; sizes in MiB (SQLite: file + WAL)\n"
    );
    println!("| round | sqlite, never compacted | sqlite, compact+maintain | etcd before compaction | etcd after compact+defrag |");
    println!("|------:|------------------------:|-------------------------:|-----------------------:|--------------------------:|");
    let plain_path = a.dir.join("growth-plain.db");
    let kept_path = a.dir.join("growth-compacted.db");
    let plain: Arc<dyn Store> = Arc::new(Sqlite::open(&plain_path)?);
    let kept: Arc<dyn Store> = Arc::new(Sqlite::open(&kept_path)?);
    let (mut plain_keys, mut kept_keys) = (seed(&plain, KEYS).await?, seed(&kept, KEYS).await?);
    let mut etcd = match etcd_url {
        Some(url) => {
            let store: Arc<dyn Store> =
                Arc::new(Etcd::connect(&[url.to_string()], "/bosun-growth").await?);
            let keys = seed(&store, KEYS).await?;
            Some((
                store,
                keys,
                etcd_client::Client::connect([url], None).await?,
            ))
        }
        None => None,
    };
    for round in 1..=a.growth {
        plain_keys = update_all(&plain, &plain_keys, a.clients).await?;
        kept_keys = update_all(&kept, &kept_keys, a.clients).await?;
        kept.compact(kept.current_revision().await?).await?;
        kept.maintain().await?;
        let (mut before, mut after) = (String::from("-"), String::from("-"));
        if let Some((store, keys, client)) = etcd.as_mut() {
            *keys = update_all(store, keys, a.clients).await?;
            before = mib(client.status().await?.db_size() as u64);
            store.compact(store.current_revision().await?).await?;
            store.maintain().await?;
            after = mib(client.status().await?.db_size() as u64);
        }
        println!(
            "| {round:>5} | {:>23} | {:>24} | {before:>22} | {after:>25} |",
            mib(file_size(&plain_path)),
            mib(file_size(&kept_path))
        );
    }
    Ok(())
}

/// `watchers` watches on one prefix, 1 000 sequential updates whose values
/// carry their send time: p50/p99 from write to delivery, over all deliveries.
async fn fanout_one(store: Arc<dyn Store>, watchers: usize) -> Result<(Duration, Duration)> {
    use futures::StreamExt;
    const UPDATES: usize = 1000;
    let epoch = Instant::now();
    let key = "/registry/pods/fanout/p";
    let mut rev = store.create(key, b"0".to_vec()).await?.mod_revision;
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let mut w = store.watch("/registry/pods/", rev).await?;
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(UPDATES);
            while lat.len() < UPDATES {
                let ev = w.next().await.context("watch ended")??;
                let sent: u64 = String::from_utf8_lossy(&ev.kv.value).parse()?;
                lat.push(epoch.elapsed().saturating_sub(Duration::from_nanos(sent)));
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    for _ in 0..UPDATES {
        let sent = epoch.elapsed().as_nanos() as u64;
        rev = store
            .update(key, sent.to_string().into_bytes(), rev)
            .await?
            .mod_revision;
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    all.sort();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    Ok((at(0.5), at(0.99)))
}

async fn fanout(a: &Args) -> Result<()> {
    println!(
        "watch fan-out: {} watchers on one prefix, 1000 updates; write-to-delivery latency\n",
        a.watchers
    );
    println!("| store                  | p50 ms    | p99 ms    |");
    println!("|------------------------|----------:|----------:|");
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let sqlite: Arc<dyn Store> = Arc::new(Sqlite::open(a.dir.join("fanout.db"))?);
    let (p50, p99) = fanout_one(sqlite, a.watchers).await?;
    println!(
        "| bosun store (sqlite)   | {:>9.2} | {:>9.2} |",
        ms(p50),
        ms(p99)
    );
    if let Some(url) = &a.etcd {
        let etcd: Arc<dyn Store> =
            Arc::new(Etcd::connect(std::slice::from_ref(url), "/bosun-fanout").await?);
        let (p50, p99) = fanout_one(etcd, a.watchers).await?;
        println!(
            "| bosun store (etcd)     | {:>9.2} | {:>9.2} |",
            ms(p50),
            ms(p99)
        );
    }
    Ok(())
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
