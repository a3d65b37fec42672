//! The scheduled compactor: it compacts to the revision it saw one tick
//! earlier, so old watches start failing with `Compacted` while the latest
//! interval of history stays available.

use std::sync::Arc;
use std::time::{Duration, Instant};

use store::{spawn_compactor, CompactorConfig, Sqlite, Store, StoreError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compactor_compacts_on_its_own() {
    let dir = testkit::scratch_dir();
    let store: Arc<dyn Store> = Arc::new(Sqlite::open(dir.path().join("state.db")).unwrap());
    let first = store.create("/c/k", b"0".to_vec()).await.unwrap();
    let config = CompactorConfig {
        interval: Duration::from_millis(100),
        maintain_every: 1,
    };
    let compactor = spawn_compactor(store.clone(), config);
    // Keep writing until a watch from the first revision is refused.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut rev = first.mod_revision;
    let compacted = loop {
        rev = store
            .update("/c/k", rev.to_string().into_bytes(), rev)
            .await
            .unwrap()
            .mod_revision;
        match store.watch("/c/", first.mod_revision).await {
            Err(StoreError::Compacted { compacted, .. }) => break compacted,
            Err(e) => panic!("unexpected watch error: {e}"),
            Ok(_) if Instant::now() > deadline => panic!("the compactor never compacted"),
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    compactor.abort();
    assert!(
        compacted > first.mod_revision && compacted < rev,
        "compacted at {compacted}, latest {rev}"
    );
    // History after the compaction point is still there.
    assert!(store.watch("/c/", compacted).await.is_ok());
    assert_eq!(store.get("/c/k").await.unwrap().unwrap().mod_revision, rev);
}
