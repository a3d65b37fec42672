//! `save`: writes an image as an OCI image layout, as a directory or (for a
//! path ending in `.tar`) a tar archive, readable by skopeo (`oci:DIR:TAG`),
//! podman and `bosun image import`.

use crate::digest::Digest;
use crate::error::{io, json, Result};
use crate::spec::{self, Descriptor, Index};
use crate::store::{Image, ImageStore};
use std::fs;
use std::path::Path;

impl ImageStore {
    /// Saves image `name` to `dest` (a directory, or a `.tar` file).
    pub fn save(&self, name: &str, dest: &Path) -> Result<()> {
        let image = self.get(name)?;
        let manifest_path = self.layout().blob(&image.record.manifest);
        let size = fs::metadata(&manifest_path)
            .map_err(io("stat", &manifest_path))?
            .len();
        let index = index_for(&image, size)?;
        let mut blobs = vec![image.record.manifest.clone(), image.record.config.clone()];
        blobs.extend(image.manifest.layers.iter().map(|l| l.digest.clone()));
        let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
        if dest.extension().is_some_and(|e| e == "tar") {
            self.save_tar(dest, layout, &index, &blobs)
        } else {
            self.save_dir(dest, layout, &index, &blobs)
        }
    }

    fn save_dir(&self, dest: &Path, layout: &[u8], index: &[u8], blobs: &[Digest]) -> Result<()> {
        let dir = dest.join("blobs/sha256");
        fs::create_dir_all(&dir).map_err(io("create directory", &dir))?;
        for d in blobs {
            let to = dir.join(d.hex());
            fs::copy(self.layout().blob(d), &to).map_err(io("copy blob to", &to))?;
        }
        let p = dest.join("oci-layout");
        fs::write(&p, layout).map_err(io("write", &p))?;
        let p = dest.join("index.json");
        fs::write(&p, index).map_err(io("write", &p))
    }

    fn save_tar(&self, dest: &Path, layout: &[u8], index: &[u8], blobs: &[Digest]) -> Result<()> {
        let tmp = dest.with_extension("tar.partial");
        let file = fs::File::create(&tmp).map_err(io("create", &tmp))?;
        let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
        let w = io("write", &tmp);
        let result = (|| -> std::io::Result<()> {
            append_bytes(&mut tar, "oci-layout", layout)?;
            append_bytes(&mut tar, "index.json", index)?;
            for d in blobs {
                let name = format!("blobs/sha256/{}", d.hex());
                tar.append_path_with_name(self.layout().blob(d), name)?;
            }
            tar.into_inner()?.into_inner().map_err(|e| e.into_error())?;
            Ok(())
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(w(e));
        }
        fs::rename(&tmp, dest).map_err(io("rename", dest))
    }
}

fn append_bytes<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    data: &[u8],
) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_cksum();
    tar.append_data(&mut h, name, data)
}

/// index.json naming the image by tag (for skopeo's `oci:DIR:TAG`) and in full.
fn index_for(image: &Image, size: u64) -> Result<Vec<u8>> {
    let media = image
        .manifest
        .media_type
        .clone()
        .unwrap_or_else(|| spec::OCI_MANIFEST.into());
    let mut desc = Descriptor::new(&media, image.record.manifest.clone(), size);
    if let Some((_, tag)) = image
        .name
        .rsplit_once(':')
        .filter(|(_, t)| !t.contains('/'))
    {
        desc.annotations
            .insert(spec::ANNOTATION_REF_NAME.into(), tag.into());
    }
    desc.annotations
        .insert(spec::ANNOTATION_IMAGE_NAME.into(), image.name.clone());
    let index = Index {
        schema_version: 2,
        media_type: Some(spec::OCI_INDEX.into()),
        manifests: vec![desc],
    };
    serde_json::to_vec(&index).map_err(json("index.json"))
}
