//! The bench's longer phases: watch fan-out, and database growth under a
//! steady update load with and without compaction.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use store::{Etcd, Sqlite, Store};

use super::{value, Args};

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
pub(crate) async fn growth(a: &Args, etcd_url: Option<&str>) -> Result<()> {
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

pub(crate) async fn fanout(a: &Args) -> Result<()> {
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
