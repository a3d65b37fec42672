//! The CRI ImageService over bosun's image store: list, status, pull,
//! remove and file-system usage. Store calls are blocking file I/O and run
//! on tokio's blocking pool.

use crate::error::{Error, Result};
use image::{ImageStore, NoProgress, Reference, RegistryOptions};
use k8s_cri::v1::image_service_server::ImageService;
use k8s_cri::v1::{
    FilesystemIdentifier, FilesystemUsage, Image, ImageFsInfoRequest, ImageFsInfoResponse,
    ImageSpec, ImageStatusRequest, ImageStatusResponse, ListImagesRequest, ListImagesResponse,
    PullImageRequest, PullImageResponse, RemoveImageRequest, RemoveImageResponse, UInt64Value,
};
use std::collections::BTreeMap;
use tonic::{Request, Response, Status};

/// The ImageService: a handle on the image store.
#[derive(Debug, Clone)]
pub struct Images {
    pub store: ImageStore,
    /// Speak plain HTTP to non-loopback registries (loopback ones always may).
    pub insecure_registries: bool,
}

impl Images {
    /// All images, one CRI `Image` per image id with every name as a tag.
    pub fn list(&self) -> Result<Vec<Image>> {
        let mut by_id: BTreeMap<String, Image> = BTreeMap::new();
        for img in self.store.list()? {
            let id = img.id().to_string();
            let entry = by_id.entry(id.clone()).or_insert_with(|| Image {
                id: id.clone(),
                size: img.size(),
                uid: None,
                username: String::new(),
                spec: Some(ImageSpec {
                    image: id.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            });
            entry.repo_tags.push(img.name.clone());
            if let Some(d) = &img.record.repo_digest {
                let repo = img.name.rsplit_once(':').map_or(&*img.name, |(r, _)| r);
                entry.repo_digests.push(format!("{repo}@{d}"));
            }
            if entry.username.is_empty() && entry.uid.is_none() {
                set_user(entry, img.runtime_defaults().user.as_deref());
            }
        }
        Ok(by_id.into_values().collect())
    }

    /// The image a name or id refers to, if present.
    pub fn find(&self, name: &str) -> Result<Option<Image>> {
        let img = match self.store.get(name) {
            Ok(i) => i,
            Err(image::Error::NoSuchImage(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let id = img.id().to_string();
        Ok(self.list()?.into_iter().find(|i| i.id == id))
    }
}

/// CRI reports a numeric user as `uid` and a named one as `username`.
fn set_user(image: &mut Image, user: Option<&str>) {
    let Some(user) = user else { return };
    let name = user.split(':').next().unwrap_or_default();
    match name.parse::<i64>() {
        Ok(uid) => image.uid = Some(k8s_cri::v1::Int64Value { value: uid }),
        Err(_) => image.username = name.to_string(),
    }
}

fn spec_name(spec: Option<&ImageSpec>) -> Result<String> {
    match spec.map(|s| s.image.trim()) {
        Some(s) if !s.is_empty() => Ok(s.to_string()),
        _ => Err(Error::Invalid("image spec with an empty image name".into())),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T, Status> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(Status::from),
        Err(e) => Err(Status::internal(format!("blocking task: {e}"))),
    }
}

#[tonic::async_trait]
impl ImageService for Images {
    async fn list_images(
        &self,
        req: Request<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        let filter = req
            .into_inner()
            .filter
            .and_then(|f| f.image)
            .map(|s| s.image)
            .filter(|s| !s.is_empty());
        let this = self.clone();
        let images = blocking(move || match filter {
            Some(name) => Ok(this.find(&name)?.into_iter().collect()),
            None => this.list(),
        })
        .await?;
        Ok(Response::new(ListImagesResponse { images }))
    }

    async fn image_status(
        &self,
        req: Request<ImageStatusRequest>,
    ) -> Result<Response<ImageStatusResponse>, Status> {
        let name = spec_name(req.get_ref().image.as_ref())?;
        let this = self.clone();
        let image = blocking(move || this.find(&name)).await?;
        Ok(Response::new(ImageStatusResponse {
            image,
            info: Default::default(),
        }))
    }

    async fn pull_image(
        &self,
        req: Request<PullImageRequest>,
    ) -> Result<Response<PullImageResponse>, Status> {
        let name = spec_name(req.get_ref().image.as_ref())?;
        let reference = Reference::parse(&name).map_err(Error::from)?;
        let credentials = req
            .get_ref()
            .auth
            .as_ref()
            .filter(|a| !a.username.is_empty())
            .map(|a| (a.username.clone(), a.password.clone()));
        let opts = RegistryOptions {
            insecure: self.insecure_registries,
            credentials,
            ..Default::default()
        };
        tracing::info!(image = %name, "pulling");
        // The pull future is not Send (it borrows across awaits in ways the
        // compiler cannot prove general), so it runs on a blocking thread.
        let store = self.store.clone();
        let handle = tokio::runtime::Handle::current();
        let report =
            blocking(move || Ok(handle.block_on(store.pull(&reference, &opts, &NoProgress))?))
                .await?;
        Ok(Response::new(PullImageResponse {
            image_ref: report.id.to_string(),
        }))
    }

    async fn remove_image(
        &self,
        req: Request<RemoveImageRequest>,
    ) -> Result<Response<RemoveImageResponse>, Status> {
        let name = spec_name(req.get_ref().image.as_ref())?;
        let store = self.store.clone();
        blocking(move || match store.remove(&name, false, true) {
            Ok(_) | Err(image::Error::NoSuchImage(_)) => Ok(()),
            Err(e) => Err(e.into()),
        })
        .await?;
        Ok(Response::new(RemoveImageResponse {}))
    }

    async fn image_fs_info(
        &self,
        _req: Request<ImageFsInfoRequest>,
    ) -> Result<Response<ImageFsInfoResponse>, Status> {
        let store = self.store.clone();
        let used = blocking(move || Ok(store.disk_usage())).await?;
        let timestamp = crate::now_nanos();
        let usage = FilesystemUsage {
            timestamp,
            fs_id: Some(FilesystemIdentifier {
                mountpoint: self.store.layout().dir().display().to_string(),
            }),
            used_bytes: Some(UInt64Value { value: used }),
            inodes_used: None,
        };
        Ok(Response::new(ImageFsInfoResponse {
            image_filesystems: vec![usage],
            container_filesystems: Vec::new(),
        }))
    }
}
