//! `import --rootfs`: a plain root filesystem (directory or tarball) becomes a
//! one-layer image, like `docker import`, with optional Dockerfile-style
//! `--change` instructions (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE).

use crate::blobs::Staging;
use crate::digest::{Digest, HashingWriter};
use crate::error::{io, json, Error, Result};
use crate::import::{layer_descriptor, Imported};
use crate::layers;
use crate::reference::Reference;
use crate::refs::now;
use crate::spec::{self, Descriptor, ImageConfig, Manifest, RootFs, RunConfig};
use crate::store::ImageStore;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

impl ImageStore {
    /// Imports a root filesystem directory or tarball as image `name`.
    pub fn import_rootfs(
        &self,
        path: &Path,
        name: &Reference,
        changes: &[String],
    ) -> Result<Imported> {
        let run = parse_changes(changes)?;
        let _gc = self.layout().lock_shared()?;
        let staging = Staging::new(self.layout())?;
        let meta = std::fs::metadata(path).map_err(io("open", path))?;
        let blob = if meta.is_dir() {
            tar_directory(path, &staging)?
        } else {
            let f = File::open(path).map_err(io("open", path))?;
            let what = path.display().to_string();
            staging
                .add_blob(&mut std::io::BufReader::new(f), None, &what)?
                .0
        };
        let diff_id = layers::stage(&staging, &blob, None)?;
        let layer = layer_descriptor(&staging, blob)?;
        let config = ImageConfig {
            created: Some(now()),
            architecture: "amd64".into(),
            os: "linux".into(),
            config: Some(run),
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: vec![diff_id],
            },
            history: vec![
                serde_json::json!({"created": now(), "created_by": "bosun image import"}),
            ],
        };
        let config_bytes = serde_json::to_vec(&config).map_err(json("image config"))?;
        let config_digest = staging.add_bytes(&config_bytes)?;
        let config_desc = Descriptor::new(
            spec::OCI_CONFIG,
            config_digest.clone(),
            config_bytes.len() as u64,
        );
        let manifest = Manifest::oci(config_desc, vec![layer]);
        let manifest_bytes = serde_json::to_vec(&manifest).map_err(json("manifest"))?;
        let manifest_digest = staging.add_bytes(&manifest_bytes)?;
        self.record(&staging, std::slice::from_ref(name), &manifest_digest, None)?;
        Ok(Imported {
            name: name.clone(),
            id: config_digest,
        })
    }
}

/// Writes `dir` as an uncompressed layer tar into the staging area.
fn tar_directory(dir: &Path, staging: &Staging) -> Result<Digest> {
    let tmp = staging.temp_path("rootfs");
    let file = File::create(&tmp).map_err(io("create", &tmp))?;
    let mut builder =
        tar::Builder::new(HashingWriter::new(BufWriter::with_capacity(1 << 20, file)));
    builder.mode(tar::HeaderMode::Complete);
    builder.follow_symlinks(false);
    builder
        .append_dir_all(".", dir)
        .map_err(io("archive directory", dir))?;
    let hashing = builder.into_inner().map_err(io("write", &tmp))?;
    let (buf, digest, _) = hashing.finish();
    buf.into_inner()
        .map_err(|e| e.into_error())
        .map_err(io("write", &tmp))?;
    staging.place_blob(&tmp, &digest)?;
    Ok(digest)
}

/// Applies `--change` instructions to an empty run config.
pub fn parse_changes(changes: &[String]) -> Result<RunConfig> {
    let mut run = RunConfig::default();
    for change in changes {
        let bad = || Error::BadChange(change.clone());
        let (instr, rest) = change
            .trim()
            .split_once(char::is_whitespace)
            .ok_or_else(bad)?;
        let rest = rest.trim();
        match instr.to_ascii_uppercase().as_str() {
            "CMD" => run.cmd = Some(command(rest).ok_or_else(bad)?),
            "ENTRYPOINT" => run.entrypoint = Some(command(rest).ok_or_else(bad)?),
            "ENV" => {
                let (k, v) = rest.split_once(['=', ' ']).ok_or_else(bad)?;
                let env = run.env.get_or_insert_with(Vec::new);
                env.retain(|e| !e.starts_with(&format!("{k}=")));
                env.push(format!("{k}={}", v.trim()));
            }
            "WORKDIR" => run.working_dir = Some(rest.to_string()),
            "USER" => run.user = Some(rest.to_string()),
            "EXPOSE" => {
                let ports = run.exposed_ports.get_or_insert_with(Default::default);
                for p in rest.split_whitespace() {
                    let key = if p.contains('/') {
                        p.to_string()
                    } else {
                        format!("{p}/tcp")
                    };
                    ports.insert(key, serde_json::json!({}));
                }
            }
            _ => return Err(bad()),
        }
    }
    Ok(run)
}

/// `["a","b"]` (exec form) or `a b` (shell form → `/bin/sh -c "a b"`).
fn command(s: &str) -> Option<Vec<String>> {
    if s.starts_with('[') {
        return serde_json::from_str(s).ok();
    }
    (!s.is_empty()).then(|| vec!["/bin/sh".into(), "-c".into(), s.into()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_set_run_config() {
        let run = parse_changes(&[
            r#"CMD ["sh"]"#.into(),
            "ENV PATH=/bin:/sbin".into(),
            "WORKDIR /tmp".into(),
            "EXPOSE 80 53/udp".into(),
            "ENTRYPOINT echo hi".into(),
        ])
        .unwrap();
        assert_eq!(run.cmd.unwrap(), ["sh"]);
        assert_eq!(run.env.unwrap(), ["PATH=/bin:/sbin"]);
        assert_eq!(run.working_dir.as_deref(), Some("/tmp"));
        assert_eq!(run.exposed_ports.unwrap().len(), 2);
        assert_eq!(run.entrypoint.unwrap(), ["/bin/sh", "-c", "echo hi"]);
        assert!(parse_changes(&["FROM x".into()]).is_err());
        assert!(parse_changes(&["CMD [oops".into()]).is_err());
    }
}
