//! The push half of the distribution API: blob existence checks, monolithic
//! blob uploads (POST for a session, PUT with the digest) and manifest PUTs.

use super::Client;
use crate::digest::Digest;
use crate::error::{io, Error, Result};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use std::path::Path;

impl Client {
    /// True when the registry already has the blob in this repository.
    pub async fn has_blob(&self, d: &Digest) -> Result<bool> {
        let url = format!("{}/v2/{}/blobs/{d}", self.base, self.repository);
        match self.execute(&url, || self.http.head(&url)).await {
            Ok(_) => Ok(true),
            Err(Error::Registry { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Uploads the blob stored at `path` in one PUT.
    pub async fn put_blob(&self, d: &Digest, path: &Path, size: u64) -> Result<()> {
        std::fs::metadata(path).map_err(io("open blob", path))?;
        let start = format!("{}/v2/{}/blobs/uploads/", self.base, self.repository);
        let resp = self
            .execute(&start, || self.http.post(&start).header(CONTENT_LENGTH, 0))
            .await?;
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Error::Registry {
                url: start.clone(),
                status: resp.status().as_u16(),
                message: "upload started without a Location".into(),
            })?;
        let url = if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            format!("{}{location}", self.base)
        };
        let sep = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{sep}digest={d}");
        self.execute(&url, || {
            let body = match std::fs::File::open(path) {
                Ok(f) => reqwest::Body::from(tokio::fs::File::from_std(f)),
                Err(_) => reqwest::Body::from(Vec::new()),
            };
            self.http
                .put(&url)
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, size)
                .body(body)
        })
        .await?;
        Ok(())
    }

    /// Stores a manifest under a tag (or digest).
    pub async fn put_manifest(&self, reference: &str, media_type: &str, data: &[u8]) -> Result<()> {
        let url = format!("{}/v2/{}/manifests/{reference}", self.base, self.repository);
        self.execute(&url, || {
            self.http
                .put(&url)
                .header(CONTENT_TYPE, media_type)
                .body(data.to_vec())
        })
        .await?;
        Ok(())
    }
}
