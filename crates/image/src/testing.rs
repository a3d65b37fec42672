//! Builds OCI image layouts from scratch (layer tars with files, links,
//! whiteouts and opaque directories), for tests and benchmarks that need
//! images with known content without any registry or external tool.

use crate::digest::Digest;
use crate::spec::{self, Descriptor, Index, Manifest};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// One entry of a test layer.
#[derive(Debug, Clone)]
pub enum Entry {
    /// A regular file with content and mode.
    File(&'static str, Vec<u8>, u32),
    Dir(&'static str),
    Symlink(&'static str, &'static str),
    /// A hard link `path` to `target` (which must come earlier).
    HardLink(&'static str, &'static str),
    /// Deletes `path` from the layers below (`.wh.<name>`).
    Whiteout(&'static str),
    /// Hides everything below in this directory (`<dir>/.wh..wh..opq`).
    Opaque(&'static str),
}

/// Builds an uncompressed layer tar from entries.
pub fn layer_tar(entries: &[Entry]) -> io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        let (path, data): (String, &[u8]) = match e {
            Entry::File(p, data, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                (p.to_string(), data)
            }
            Entry::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                (p.to_string(), &[])
            }
            Entry::Symlink(p, target) | Entry::HardLink(p, target) => {
                let kind = if matches!(e, Entry::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                };
                h.set_entry_type(kind);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, target)?;
                continue;
            }
            Entry::Whiteout(p) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                let path = Path::new(p);
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                let parent = path
                    .parent()
                    .map(|d| d.join(format!(".wh.{name}")))
                    .unwrap_or_default();
                (parent.to_string_lossy().to_string(), &[])
            }
            Entry::Opaque(dir) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                (format!("{dir}/.wh..wh..opq"), &[])
            }
        };
        h.set_size(data.len() as u64);
        b.append_data(&mut h, path, data)?;
    }
    b.into_inner()
}

/// Gzips a layer tar.
pub fn gzip(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data)?;
    enc.finish()
}

/// An OCI layout directory being written.
pub struct LayoutBuilder {
    dir: PathBuf,
    manifests: Vec<Descriptor>,
}

impl LayoutBuilder {
    /// Starts a layout in `dir` (created).
    pub fn new(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir.join("blobs/sha256"))?;
        fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            manifests: Vec::new(),
        })
    }

    fn blob(&self, data: &[u8]) -> io::Result<Digest> {
        let d = Digest::of(data);
        fs::write(self.dir.join("blobs/sha256").join(d.hex()), data)?;
        Ok(d)
    }

    /// Adds an image tagged `tag` from uncompressed layer tars (base first),
    /// gzipping them when `gzip` is set; `cmd` becomes the config's Cmd.
    /// Returns the manifest digest.
    pub fn image(
        &mut self,
        tag: &str,
        layers: &[Vec<u8>],
        gzip: bool,
        cmd: &[&str],
    ) -> io::Result<Digest> {
        let mut descs = Vec::new();
        let mut diff_ids = Vec::new();
        for tar in layers {
            diff_ids.push(Digest::of(tar));
            let (blob, media) = if gzip {
                (self::gzip(tar)?, spec::OCI_LAYER_GZIP)
            } else {
                (tar.clone(), spec::OCI_LAYER_TAR)
            };
            descs.push(Descriptor::new(media, self.blob(&blob)?, blob.len() as u64));
        }
        let config = serde_json::json!({
            "created": "2024-01-01T00:00:00Z",
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": cmd, "Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let config = serde_json::to_vec(&config).map_err(io::Error::other)?;
        let config_desc =
            Descriptor::new(spec::OCI_CONFIG, self.blob(&config)?, config.len() as u64);
        let manifest =
            serde_json::to_vec(&Manifest::oci(config_desc, descs)).map_err(io::Error::other)?;
        let digest = self.blob(&manifest)?;
        let mut desc = Descriptor::new(spec::OCI_MANIFEST, digest.clone(), manifest.len() as u64);
        desc.annotations
            .insert(spec::ANNOTATION_REF_NAME.into(), tag.into());
        self.manifests.push(desc);
        Ok(digest)
    }

    /// Groups images added earlier into a multi-platform index tagged `tag`
    /// (they stop being top-level entries); `members` are (manifest, architecture).
    pub fn index(&mut self, tag: &str, members: &[(&Digest, &str)]) -> io::Result<Digest> {
        let mut entries = Vec::new();
        for (digest, arch) in members {
            let size = fs::metadata(self.dir.join("blobs/sha256").join(digest.hex()))?.len();
            let mut d = Descriptor::new(spec::OCI_MANIFEST, (*digest).clone(), size);
            d.platform = Some(spec::Platform {
                architecture: arch.to_string(),
                os: "linux".into(),
                variant: None,
            });
            entries.push(d);
            self.manifests.retain(|m| &m.digest != *digest);
        }
        let index = Index {
            schema_version: 2,
            media_type: Some(spec::OCI_INDEX.into()),
            manifests: entries,
        };
        let data = serde_json::to_vec(&index).map_err(io::Error::other)?;
        let digest = self.blob(&data)?;
        let mut desc = Descriptor::new(spec::OCI_INDEX, digest.clone(), data.len() as u64);
        desc.annotations
            .insert(spec::ANNOTATION_REF_NAME.into(), tag.into());
        self.manifests.push(desc);
        Ok(digest)
    }

    /// Writes index.json.
    pub fn finish(self) -> io::Result<PathBuf> {
        let index = Index {
            schema_version: 2,
            media_type: Some(spec::OCI_INDEX.into()),
            manifests: self.manifests,
        };
        fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&index).map_err(io::Error::other)?,
        )?;
        Ok(self.dir)
    }
}
