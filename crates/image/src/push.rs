//! `push`: uploads an image's blobs the registry lacks (config and layers,
//! three at a time), then its manifest under the destination's tag.

use crate::digest::Digest;
use crate::error::{io, Result};
use crate::pull::{LayerState, Progress};
use crate::reference::Reference;
use crate::registry::{Client, RegistryOptions};
use crate::spec;
use crate::store::ImageStore;
use futures::{StreamExt, TryStreamExt};

/// What a push did.
#[derive(Debug, Clone)]
pub struct PushReport {
    /// The manifest digest the registry now serves for the tag.
    pub digest: Digest,
    /// Size of the manifest in bytes.
    pub size: u64,
    /// Blobs uploaded (those the registry already had are skipped).
    pub uploaded: usize,
}

impl ImageStore {
    /// Pushes image `name` to `dest`'s registry, repository and tag.
    pub async fn push(
        &self,
        name: &str,
        dest: &Reference,
        opts: &RegistryOptions,
        progress: &dyn Progress,
    ) -> Result<PushReport> {
        let _gc = self.layout().lock_shared()?;
        let image = self.get(name)?;
        let client = Client::new(dest, opts)?;
        let mut blobs: Vec<(Digest, u64)> = image
            .manifest
            .layers
            .iter()
            .map(|l| (l.digest.clone(), l.size))
            .collect();
        blobs.push((
            image.manifest.config.digest.clone(),
            image.manifest.config.size,
        ));
        let client = &client;
        let uploaded: Vec<bool> = futures::stream::iter(blobs)
            .map(|(d, size)| async move {
                if client.has_blob(&d).await? {
                    progress.layer(&d, LayerState::Exists);
                    return Ok(false);
                }
                progress.layer(&d, LayerState::Waiting);
                let path = self.layout().blob(&d);
                client.put_blob(&d, &path, size).await?;
                progress.layer(&d, LayerState::Complete);
                Ok::<bool, crate::Error>(true)
            })
            .buffer_unordered(3)
            .try_collect()
            .await?;
        let path = self.layout().blob(&image.record.manifest);
        let data = std::fs::read(&path).map_err(io("read manifest", &path))?;
        let media = image
            .manifest
            .media_type
            .clone()
            .unwrap_or_else(|| spec::OCI_MANIFEST.to_string());
        client
            .put_manifest(&dest.api_reference(), &media, &data)
            .await?;
        Ok(PushReport {
            digest: image.record.manifest.clone(),
            size: data.len() as u64,
            uploaded: uploaded.into_iter().filter(|u| *u).count(),
        })
    }
}
