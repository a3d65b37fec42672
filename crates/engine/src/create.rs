//! Creating a container: everything before a process exists. The image is
//! resolved, a record is written (so the name is taken first, as Docker
//! does), the overlay snapshot is mounted, the network is made and the OCI
//! bundle (`<root>/containers/<id>/bundle/config.json`) is written. Any
//! failure undoes all of it through [`crate::remove::purge`].

use crate::network::{self, Mode};
use crate::options::{Publish, RunOptions};
use crate::records::{ContainerRecord, Records, Status};
use crate::spec::{self, ImageDefaults, Network, SpecContext};
use crate::{logs, names, remove, Error, Result};
use std::path::{Path, PathBuf};

/// The engine bound to one state root (shared with the image store).
pub struct Engine {
    pub root: PathBuf,
    pub records: Records,
}

/// What `bosun run` / `create` asked for besides the run options.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub image: String,
    pub opts: RunOptions,
    pub network: Mode,
    pub ports: Vec<Publish>,
    pub auto_remove: bool,
}

impl Engine {
    pub fn open(root: &Path) -> Result<Engine> {
        Ok(Engine {
            root: root.to_path_buf(),
            records: Records::open(root)?,
        })
    }

    /// The OCI runtime's state lives under `<root>/runtime`.
    pub fn runtime(&self) -> runtime::Runtime {
        runtime::Runtime::new(self.root.join("runtime"))
    }

    pub fn images(&self) -> Result<image::ImageStore> {
        Ok(image::ImageStore::open(&self.root)?)
    }

    pub fn bundle(&self, id: &str) -> PathBuf {
        self.records.dir_of(id).join("bundle")
    }

    /// Creates the container (no process yet); returns its record.
    pub fn create(&self, req: &CreateRequest) -> Result<ContainerRecord> {
        let images = self.images()?;
        if !looks_like_id(&req.image) {
            image::Reference::parse(&req.image)?;
        }
        let img = images.get(&req.image)?;
        let id = names::new_id();
        let name = match &req.opts.name {
            Some(n) if !names::valid_name(n) => {
                return Err(Error::InvalidFlag {
                    flag: "--name",
                    value: n.clone(),
                    reason: "Invalid container name, only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                        .into(),
                })
            }
            Some(n) => n.clone(),
            None => names::random_name(),
        };
        let defaults = image_defaults(&img.runtime_defaults());
        let record = ContainerRecord {
            id: id.clone(),
            name,
            image: req.image.clone(),
            image_id: img.id().to_string(),
            command: spec::command_line(&defaults, &req.opts)?,
            created: logs::now_rfc3339(),
            status: Status::Created,
            monitor_pid: None,
            auto_remove: req.auto_remove,
            ports: req.ports.iter().map(publish_text).collect(),
            network: req.network.as_str().into(),
            ip: None,
            tty: req.opts.tty,
            interactive: req.opts.interactive,
            hostname: spec::hostname(&req.opts, &id),
        };
        self.records.insert(&record)?;
        match self.prepare(&record, req, &images, &img.name, &defaults) {
            Ok(r) => Ok(r),
            Err(e) => {
                remove::purge(self, &record);
                Err(e)
            }
        }
    }

    fn prepare(
        &self,
        record: &ContainerRecord,
        req: &CreateRequest,
        images: &image::ImageStore,
        image_name: &str,
        defaults: &ImageDefaults,
    ) -> Result<ContainerRecord> {
        let rootfs = if req.auto_remove {
            volatile_snapshot(images, &record.id, image_name)?
        } else {
            images.prepare(&record.id, image_name)?
        };
        let user = resolve_user(&rootfs, &req.opts, defaults)?;
        self.check_published(&record.id, &req.ports)?;
        let attached = network::setup(&self.root, &record.id, req.network, &req.ports)?;
        let dir = self.records.dir_of(&record.id);
        let etc_files =
            network::etc_files(&dir, req.network, &record.hostname, attached.ip.as_deref())?;
        let ctx = SpecContext {
            id: record.id.clone(),
            rootfs,
            cgroups_path: format!("/bosun/{}", record.id),
            network: match (&attached.netns, req.network) {
                (_, Mode::Host) => Network::Host,
                (Some(p), _) => Network::Join(p.clone()),
                (None, _) => Network::None,
            },
            etc_files,
            user,
        };
        let spec = spec::build_spec(defaults, &req.opts, &ctx)?;
        write_bundle(&self.bundle(&record.id), &spec)?;
        self.records.update(&record.id, |r| {
            r.ip = attached.ip.clone();
            Ok(())
        })
    }
}

impl Engine {
    /// Refuses a host port another running container of this root publishes
    /// (portmap's DNAT rules hold no socket, so a bind test cannot see them).
    pub fn check_published(&self, id: &str, ports: &[Publish]) -> Result<()> {
        for other in self.records.all()? {
            if other.id == id || !other.is_running() {
                continue;
            }
            for p in other.ports.iter().filter_map(|t| parse_publish_text(t)) {
                if ports
                    .iter()
                    .any(|q| q.host_port == p.host_port && q.protocol == p.protocol)
                {
                    let ip = p.host_ip.as_deref().unwrap_or("0.0.0.0");
                    return Err(Error::PortInUse(format!("{ip}:{}", p.host_port)));
                }
            }
        }
        Ok(())
    }
}

/// The snapshot of an `--rm` container, mounted with overlayfs' `volatile`
/// (as podman does for `--rm`): its upper layer is thrown away at exit, so
/// the sync of the upper filesystem at unmount (a journal commit, tens of
/// ms on a busy disk) buys nothing. Kernels without `volatile` get a plain mount.
fn volatile_snapshot(images: &image::ImageStore, id: &str, image: &str) -> Result<PathBuf> {
    images.create_snapshot(id, image)?;
    let rootfs = images.rootfs(id);
    let opts = images.mount_options(id)?;
    let mount = |o: &str| {
        nix::mount::mount(
            Some("overlay"),
            &rootfs,
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(o),
        )
    };
    mount(&format!("{opts},volatile"))
        .or_else(|_| mount(&opts))
        .map_err(|e| Error::Io {
            path: rootfs.clone(),
            source: e.into(),
        })?;
    Ok(rootfs)
}

fn looks_like_id(s: &str) -> bool {
    s.starts_with("sha256:") || (s.len() >= 12 && s.chars().all(|c| c.is_ascii_hexdigit()))
}

fn image_defaults(d: &image::RuntimeDefaults) -> ImageDefaults {
    ImageDefaults {
        entrypoint: d.entrypoint.clone(),
        cmd: d.cmd.clone(),
        env: d.env.clone(),
        working_dir: d.working_dir.clone(),
        user: d.user.clone(),
    }
}

/// `-p` as Docker prints it: `0.0.0.0:8080->80/tcp`.
pub fn publish_text(p: &Publish) -> String {
    format!(
        "{}:{}->{}/{}",
        p.host_ip.as_deref().unwrap_or("0.0.0.0"),
        p.host_port,
        p.container_port,
        p.protocol
    )
}

/// Parses [`publish_text`] back (for restarting a stopped container).
pub fn parse_publish_text(s: &str) -> Option<Publish> {
    let (host, ctr) = s.split_once("->")?;
    let (ip, hport) = host.rsplit_once(':')?;
    let (cport, proto) = ctr.split_once('/')?;
    Some(Publish {
        host_ip: (ip != "0.0.0.0").then(|| ip.to_string()),
        host_port: hport.parse().ok()?,
        container_port: cport.parse().ok()?,
        protocol: proto.to_string(),
    })
}

/// uid, gid and groups from `-u` or the image's User, names looked up in
/// the image's /etc/passwd and /etc/group.
fn resolve_user(
    rootfs: &Path,
    opts: &RunOptions,
    defaults: &ImageDefaults,
) -> Result<(u32, u32, Vec<u32>)> {
    if let Some(u) = opts.user {
        let gid = u
            .gid
            .or_else(|| passwd_entry(rootfs, &u.uid.to_string()).map(|e| e.2));
        return Ok((u.uid, gid.unwrap_or(0), Vec::new()));
    }
    let Some(user) = &defaults.user else {
        return Ok((0, 0, Vec::new()));
    };
    let (u, g) = user.split_once(':').unwrap_or((user, ""));
    let (uid, pgid) = match u.parse::<u32>() {
        Ok(n) => (n, passwd_entry(rootfs, u).map_or(0, |e| e.2)),
        Err(_) => {
            let e = passwd_entry(rootfs, u).ok_or_else(|| Error::InvalidFlag {
                flag: "--user",
                value: user.clone(),
                reason: format!("unable to find user {u}: no matching entries in passwd file"),
            })?;
            (e.1, e.2)
        }
    };
    let gid = if g.is_empty() {
        pgid
    } else {
        g.parse().unwrap_or(pgid)
    };
    Ok((uid, gid, Vec::new()))
}

/// (name, uid, gid) of the passwd entry whose name or uid is `who`.
fn passwd_entry(rootfs: &Path, who: &str) -> Option<(String, u32, u32)> {
    let text = std::fs::read_to_string(rootfs.join("etc/passwd")).ok()?;
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        let (name, uid, gid) = (f.first()?, f.get(2)?, f.get(3)?);
        (*name == who || *uid == who)
            .then(|| Some((name.to_string(), uid.parse().ok()?, gid.parse().ok()?)))?
    })
}

fn write_bundle(dir: &Path, spec: &oci_spec::runtime::Spec) -> Result<()> {
    let io = |e: std::io::Error| Error::Io {
        path: dir.to_path_buf(),
        source: e,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let json = serde_json::to_vec_pretty(spec).map_err(|e| Error::Corrupt {
        path: dir.join("config.json"),
        reason: e.to_string(),
    })?;
    std::fs::write(dir.join("config.json"), json).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_ports_round_trip() {
        let p = crate::options::parse_publish("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(publish_text(&p), "127.0.0.1:8080->80/udp");
        assert_eq!(parse_publish_text(&publish_text(&p)), Some(p));
        let q = crate::options::parse_publish("8080:80").unwrap();
        assert_eq!(parse_publish_text(&publish_text(&q)), Some(q));
    }

    #[test]
    fn users_resolve_from_the_image() {
        let dir = testkit::scratch_dir();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nwww:x:33:44::/var/www:/bin/false\n",
        )
        .unwrap();
        let mut d = ImageDefaults {
            user: Some("www".into()),
            ..Default::default()
        };
        let opts = RunOptions::default();
        assert_eq!(
            resolve_user(dir.path(), &opts, &d).unwrap(),
            (33, 44, vec![])
        );
        d.user = Some("nobody".into());
        assert!(resolve_user(dir.path(), &opts, &d).is_err());
    }
}
