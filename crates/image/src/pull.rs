//! `pull`: fetches an image from a registry into the store. The manifest (the
//! linux/amd64 one from an index) and config are verified by digest, missing
//! layers are downloaded in parallel into the staging area and verified, then
//! unpacked (the uncompressed stream must match the config's diff id). Only
//! when everything succeeded is it committed and the name set; on any error
//! the staging area is dropped and the store is as it was.

use crate::blobs::Staging;
use crate::digest::{Digest, Hasher};
use crate::error::{io, Error, Result};
use crate::layers;
use crate::reference::Reference;
use crate::registry::{Client, RegistryOptions};
use crate::spec::{self, Descriptor, ImageConfig, Index, Manifest};
use crate::store::ImageStore;
use futures::{StreamExt, TryStreamExt};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// Layers downloaded at once, as Docker does.
const PARALLEL: usize = 3;

/// What happens to a layer during a pull, for progress displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerState {
    /// The store has it already.
    Exists,
    /// Queued for download.
    Waiting,
    /// Bytes received so far of the total.
    Downloading { done: u64, total: u64 },
    /// Received and verified.
    Verified,
    /// Being unpacked.
    Extracting,
    /// Unpacked.
    Complete,
}

/// Receives progress of a pull. Called from the pulling task; keep it cheap.
pub trait Progress: Send + Sync {
    fn layer(&self, digest: &Digest, state: LayerState);
}

/// Ignores progress.
pub struct NoProgress;

impl Progress for NoProgress {
    fn layer(&self, _: &Digest, _: LayerState) {}
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct PullReport {
    pub reference: Reference,
    /// The image id (config digest).
    pub id: Digest,
    /// The digest the registry serves for the reference (index or manifest).
    pub repo_digest: Digest,
    /// Blobs downloaded (0 when the image was up to date).
    pub downloaded_blobs: usize,
    pub downloaded_bytes: u64,
}

impl ImageStore {
    /// Pulls `reference` from its registry.
    pub async fn pull(
        &self,
        reference: &Reference,
        opts: &RegistryOptions,
        progress: &dyn Progress,
    ) -> Result<PullReport> {
        if let Some(report) = self.pinned_and_present(reference) {
            return Ok(report);
        }
        let client = Client::new(reference, opts)?;
        let top = client.manifest(&reference.api_reference()).await?;
        let repo_digest = Digest::of(&top.data);
        if let Some(pinned) = &reference.digest {
            pinned.verify(
                &repo_digest,
                format!("manifest of {}", reference.familiar()),
            )?;
        }
        let _gc = self.layout().lock_shared()?;
        let staging = Arc::new(Staging::new(self.layout())?);
        let manifest_data = if spec::is_index(&top.media_type) {
            let index: Index = spec::parse(&top.data, "index")?;
            let desc = index.pick_amd64().ok_or_else(|| Error::NoPlatform {
                reference: reference.familiar(),
            })?;
            let m = client.manifest(&desc.digest.to_string()).await?;
            desc.digest
                .verify(&Digest::of(&m.data), format!("manifest {}", desc.digest))?;
            m.data
        } else {
            top.data
        };
        let manifest_digest = staging.add_bytes(&manifest_data)?;
        let manifest: Manifest = spec::parse(&manifest_data, "manifest")?;
        let mut stats = Stats::default();
        let config = fetch_config(&client, &staging, &manifest.config, &mut stats).await?;
        if manifest.layers.len() != config.rootfs.diff_ids.len() {
            return Err(Error::BadImage {
                reference: reference.familiar(),
                reason: format!(
                    "the manifest has {} layers but the config lists {} diff ids",
                    manifest.layers.len(),
                    config.rootfs.diff_ids.len()
                ),
            });
        }
        let layer_stats = fetch_layers(&client, &staging, &manifest, &config, progress).await?;
        stats.blobs += layer_stats.blobs;
        stats.bytes += layer_stats.bytes;
        let record = self.record(
            &staging,
            std::slice::from_ref(reference),
            &manifest_digest,
            Some(repo_digest.clone()),
        )?;
        Ok(PullReport {
            reference: reference.clone(),
            id: record.config,
            repo_digest,
            downloaded_blobs: stats.blobs,
            downloaded_bytes: stats.bytes,
        })
    }
}

impl ImageStore {
    /// A pull by digest of an image the store has needs no registry at all.
    fn pinned_and_present(&self, reference: &Reference) -> Option<PullReport> {
        let pinned = reference.digest.as_ref()?;
        let image = self.get(&reference.to_string()).ok()?;
        let matches =
            &image.record.manifest == pinned || image.record.repo_digest.as_ref() == Some(pinned);
        let complete = image
            .diff_ids()
            .iter()
            .all(|d| layers::is_unpacked(self.layout(), d));
        (matches && complete).then(|| PullReport {
            reference: reference.clone(),
            id: image.record.config.clone(),
            repo_digest: pinned.clone(),
            downloaded_blobs: 0,
            downloaded_bytes: 0,
        })
    }
}

#[derive(Default)]
struct Stats {
    blobs: usize,
    bytes: u64,
}

async fn fetch_config(
    client: &Client,
    staging: &Staging,
    desc: &Descriptor,
    stats: &mut Stats,
) -> Result<ImageConfig> {
    if staging.blob_path(&desc.digest).is_none() {
        stats.bytes += download(client, staging, desc, &NoProgress).await?;
        stats.blobs += 1;
    }
    spec::parse(&staging.read_blob(&desc.digest)?, "image config")
}

async fn fetch_layers(
    client: &Client,
    staging: &Arc<Staging>,
    manifest: &Manifest,
    config: &ImageConfig,
    progress: &dyn Progress,
) -> Result<Stats> {
    let mut seen = std::collections::HashSet::new();
    let mut work = Vec::new();
    for (layer, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
        if !seen.insert(layer.digest.clone()) {
            continue;
        }
        let have_blob = staging.in_store(&layer.digest);
        if have_blob && layers::is_unpacked(staging.layout(), diff_id) {
            progress.layer(&layer.digest, LayerState::Exists);
            continue;
        }
        progress.layer(&layer.digest, LayerState::Waiting);
        work.push((layer, diff_id, have_blob));
    }
    let results: Vec<u64> = futures::stream::iter(work)
        .map(|(layer, diff_id, have_blob)| async move {
            let bytes = if have_blob {
                0
            } else {
                download(client, staging, layer, progress).await?
            };
            progress.layer(&layer.digest, LayerState::Extracting);
            let (s, blob, diff) = (staging.clone(), layer.digest.clone(), diff_id.clone());
            tokio::task::spawn_blocking(move || layers::stage(&s, &blob, Some(&diff)))
                .await
                .map_err(|e| Error::BadLayer {
                    layer: layer.digest.to_string(),
                    reason: format!("unpack task failed: {e}"),
                })??;
            progress.layer(&layer.digest, LayerState::Complete);
            Ok::<u64, Error>(bytes)
        })
        .buffer_unordered(PARALLEL)
        .try_collect()
        .await?;
    Ok(Stats {
        blobs: results.iter().filter(|b| **b > 0).count(),
        bytes: results.iter().sum(),
    })
}

/// Streams one blob into the staging area, verifying size and digest.
async fn download(
    client: &Client,
    staging: &Staging,
    desc: &Descriptor,
    progress: &dyn Progress,
) -> Result<u64> {
    let (url, mut resp) = client.blob(&desc.digest).await?;
    let tmp = staging.temp_path("download");
    let file = tokio::fs::File::create(&tmp)
        .await
        .map_err(io("create", &tmp))?;
    let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
    let mut hasher = Hasher::default();
    let mut last = 0;
    while let Some(chunk) = resp.chunk().await.map_err(|cause| Error::Http {
        url: url.clone(),
        cause,
    })? {
        hasher.update(&chunk);
        out.write_all(&chunk).await.map_err(io("write", &tmp))?;
        if hasher.len() - last >= 256 * 1024 {
            last = hasher.len();
            progress.layer(
                &desc.digest,
                LayerState::Downloading {
                    done: last,
                    total: desc.size,
                },
            );
        }
    }
    out.flush().await.map_err(io("write", &tmp))?;
    let size = hasher.len();
    let digest = hasher.finish();
    let verified = desc.digest.verify(&digest, format!("blob {}", desc.digest));
    if let Err(e) = verified {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    staging.place_blob(&tmp, &digest)?;
    progress.layer(&desc.digest, LayerState::Verified);
    Ok(size)
}
