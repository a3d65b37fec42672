//! Import of OCI image layouts (directory or tar) and `docker save` archives:
//! every blob is verified against its digest, layers are unpacked into the
//! staging area, and names are set only after everything is committed.

use crate::blobs::Staging;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layers;
use crate::reference::Reference;
use crate::source::Source;
use crate::spec::{self, Descriptor, ImageConfig, Index, Manifest};
use crate::store::ImageStore;
use serde::Deserialize;
use std::path::Path;

/// One image an import named.
#[derive(Debug, Clone)]
pub struct Imported {
    pub name: Reference,
    pub id: Digest,
}

/// An entry of a `docker save` archive's manifest.json.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

impl ImageStore {
    /// Imports an OCI layout or a `docker save` archive (directory or tar).
    /// `name` renames the image (and picks it by tag when the layout has several).
    pub fn import(&self, path: &Path, name: Option<&Reference>) -> Result<Vec<Imported>> {
        let _gc = self.layout().lock_shared()?;
        let staging = Staging::new(self.layout())?;
        let src = Source::open(path, &staging)?;
        let images = if src.has("manifest.json") {
            docker_archive(&src, &staging, name)?
        } else if src.has("index.json") {
            oci_layout(&src, &staging, name)?
        } else {
            return Err(Error::BadArchive {
                path: path.to_path_buf(),
                reason:
                    "neither an OCI layout (index.json) nor a docker save archive (manifest.json)"
                        .into(),
            });
        };
        let mut out = Vec::new();
        for (names, manifest) in images {
            let record = self.record(&staging, &names, &manifest, None)?;
            out.extend(names.into_iter().map(|name| Imported {
                name,
                id: record.config.clone(),
            }));
        }
        Ok(out)
    }
}

type Found = Vec<(Vec<Reference>, Digest)>;

fn oci_layout(src: &Source, staging: &Staging, name: Option<&Reference>) -> Result<Found> {
    let index: Index = spec::parse(&src.read("index.json", staging)?, "index.json")?;
    let mut chosen: Vec<&Descriptor> = index.manifests.iter().collect();
    if let Some(n) = name {
        if chosen.len() > 1 {
            chosen.retain(|d| d.annotations.get(spec::ANNOTATION_REF_NAME) == n.tag.as_ref());
        }
        if chosen.len() != 1 {
            return Err(bad(
                src,
                format!("no single image tagged {:?} in index.json", n.tag),
            ));
        }
    }
    let mut out = Vec::new();
    for desc in chosen {
        let names = match name {
            Some(n) => vec![n.clone()],
            None => vec![name_from_annotations(src, desc)?],
        };
        let manifest = resolve_platform(src, staging, desc)?;
        copy_image(src, staging, &manifest)?;
        out.push((names, manifest));
    }
    Ok(out)
}

/// The image name an index entry carries (containerd's or a full ref.name).
fn name_from_annotations(src: &Source, desc: &Descriptor) -> Result<Reference> {
    let full = desc
        .annotations
        .get(spec::ANNOTATION_IMAGE_NAME)
        .or_else(|| {
            desc.annotations
                .get(spec::ANNOTATION_REF_NAME)
                .filter(|r| r.contains(':') || r.contains('/'))
        });
    match full {
        Some(n) => Reference::parse(n),
        None => Err(bad(
            src,
            "image has no name in index.json; give NAME[:TAG]".into(),
        )),
    }
}

/// Follows nested indexes down to the linux/amd64 manifest.
fn resolve_platform(src: &Source, staging: &Staging, desc: &Descriptor) -> Result<Digest> {
    let mut desc = desc.clone();
    for _ in 0..4 {
        if spec::is_manifest(&desc.media_type) {
            return Ok(desc.digest);
        }
        if !spec::is_index(&desc.media_type) {
            return Err(Error::Unsupported {
                what: "media type",
                value: desc.media_type.clone(),
            });
        }
        let data = read_blob(src, staging, &desc.digest)?;
        let index: Index = spec::parse(&data, "nested index")?;
        desc = index
            .pick_amd64()
            .cloned()
            .ok_or_else(|| Error::NoPlatform {
                reference: src.path().display().to_string(),
            })?;
    }
    Err(bad(src, "indexes nested too deep".into()))
}

fn read_blob(src: &Source, staging: &Staging, d: &Digest) -> Result<Vec<u8>> {
    let d = src.blob(&blob_rel(d), Some(d), staging)?;
    staging.read_blob(&d)
}

fn blob_rel(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// Copies a manifest, its config and its layers, unpacking each layer.
fn copy_image(src: &Source, staging: &Staging, manifest: &Digest) -> Result<()> {
    let m: Manifest = spec::parse(&read_blob(src, staging, manifest)?, "manifest")?;
    let config: ImageConfig =
        spec::parse(&read_blob(src, staging, &m.config.digest)?, "image config")?;
    check_layer_count(&m, &config, src)?;
    for (layer, diff_id) in m.layers.iter().zip(&config.rootfs.diff_ids) {
        if !layers::is_unpacked(staging.layout(), diff_id) {
            src.blob(&blob_rel(&layer.digest), Some(&layer.digest), staging)?;
        }
        layers::stage(staging, &layer.digest, Some(diff_id))?;
    }
    Ok(())
}

fn check_layer_count(m: &Manifest, config: &ImageConfig, src: &Source) -> Result<()> {
    if m.layers.len() == config.rootfs.diff_ids.len() {
        return Ok(());
    }
    Err(bad(
        src,
        format!(
            "manifest has {} layers but the config lists {} diff ids",
            m.layers.len(),
            config.rootfs.diff_ids.len()
        ),
    ))
}

fn docker_archive(src: &Source, staging: &Staging, name: Option<&Reference>) -> Result<Found> {
    let entries: Vec<DockerEntry> =
        spec::parse(&src.read("manifest.json", staging)?, "manifest.json")?;
    if name.is_some() && entries.len() != 1 {
        return Err(bad(
            src,
            "NAME can only be given for an archive with one image".into(),
        ));
    }
    let mut out = Vec::new();
    for entry in &entries {
        let names = match name {
            Some(n) => vec![n.clone()],
            None => entry
                .repo_tags
                .iter()
                .flatten()
                .map(|t| Reference::parse(t))
                .collect::<Result<Vec<_>>>()?,
        };
        if names.is_empty() {
            return Err(bad(src, "image has no RepoTags; give NAME[:TAG]".into()));
        }
        out.push((names, docker_image(src, staging, entry)?));
    }
    Ok(out)
}

/// Turns one docker-archive image into an OCI manifest with its blobs staged.
fn docker_image(src: &Source, staging: &Staging, entry: &DockerEntry) -> Result<Digest> {
    let config_digest = src.blob(&entry.config, None, staging)?;
    let config_data = staging.read_blob(&config_digest)?;
    let config: ImageConfig = spec::parse(&config_data, "image config")?;
    if entry.layers.len() != config.rootfs.diff_ids.len() {
        return Err(bad(
            src,
            "layer count differs from the config's diff ids".into(),
        ));
    }
    let mut descs = Vec::new();
    for (rel, diff_id) in entry.layers.iter().zip(&config.rootfs.diff_ids) {
        let digest = src.blob(rel, None, staging)?;
        layers::stage(staging, &digest, Some(diff_id))?;
        descs.push(layer_descriptor(staging, digest)?);
    }
    let config_desc = Descriptor::new(spec::OCI_CONFIG, config_digest, config_data.len() as u64);
    let manifest = Manifest::oci(config_desc, descs);
    let bytes = serde_json::to_vec(&manifest).map_err(crate::error::json("manifest"))?;
    staging.add_bytes(&bytes)
}

/// A descriptor for a staged layer blob, gzip, zstd or plain by its first bytes.
pub(crate) fn layer_descriptor(staging: &Staging, digest: Digest) -> Result<Descriptor> {
    use std::io::Read;
    let path = staging
        .blob_path(&digest)
        .unwrap_or_else(|| staging.layout().blob(&digest));
    let err = crate::error::io("read layer", &path);
    let mut f = std::fs::File::open(&path).map_err(crate::error::io("open layer", &path))?;
    let size = f
        .metadata()
        .map_err(crate::error::io("stat layer", &path))?
        .len();
    let mut magic = [0u8; 4];
    let n = f.read(&mut magic).map_err(err)?;
    let media = match &magic[..n] {
        [0x1f, 0x8b, ..] => spec::OCI_LAYER_GZIP,
        [0x28, 0xb5, 0x2f, 0xfd] => spec::OCI_LAYER_ZSTD,
        _ => spec::OCI_LAYER_TAR,
    };
    Ok(Descriptor::new(media, digest, size))
}

fn bad(src: &Source, reason: String) -> Error {
    Error::BadArchive {
        path: src.path().to_path_buf(),
        reason,
    }
}
