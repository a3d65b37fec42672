//! Removing what a container holds. Two levels: [`release`] frees what only
//! a running container needs (the runtime's state and cgroup, the network
//! namespace, veth, IP lease and portmap rules) and is what the monitor does
//! when the container exits; [`purge`] also removes the snapshot and the
//! record (`rm`, `--rm`, a failed create). Both are idempotent and keep
//! going past errors, reporting the first.

use crate::create::{parse_publish_text, Engine};
use crate::records::ContainerRecord;
use crate::{network, Error, Result};

/// Frees the runtime state, cgroup and network of a stopped container.
pub fn release(engine: &Engine, record: &ContainerRecord) -> Result<()> {
    let mut first: Option<Error> = None;
    let rt = engine.runtime();
    match rt.delete(&record.id, true) {
        Ok(()) | Err(runtime::Error::NotFound(_)) => {}
        Err(e) => {
            first.get_or_insert(e.into());
        }
    }
    destroy_cgroup(&record.id);
    let ports: Vec<_> = record
        .ports
        .iter()
        .filter_map(|p| parse_publish_text(p))
        .collect();
    if let Err(e) = network::teardown(&engine.root, &record.id, &ports) {
        first.get_or_insert(e);
    }
    first.map_or(Ok(()), Err)
}

/// The cgroup at /bosun/<id>, in case the runtime did not remove it, and
/// the shared /bosun parent once no container uses it.
fn destroy_cgroup(id: &str) {
    if let Ok(h) = cgroups::Hierarchy::detect() {
        if let Ok(cg) = cgroups::Cgroup::new(&h, Some(&format!("/bosun/{id}")), id) {
            if cg.exists() {
                let _ = cg.destroy();
            }
            cg.prune_empty_parent();
        }
    }
}

/// Removes an exited `--rm` container in two steps: first everything that
/// is visible (cgroup, network, the rootfs mount; the snapshot and container
/// directories are renamed to dot-names that every listing skips), then,
/// by calling the returned closure, the files themselves. Deleting a few
/// directories costs milliseconds each on a busy ext4 journal, so the monitor
/// reports the exit status between the two steps.
pub fn purge_deferred(engine: &Engine, record: &ContainerRecord) -> impl FnOnce() {
    let _ = release(engine, record);
    let mut trash = Vec::new();
    if let Ok(images) = engine.images() {
        let dir = images.layout().snapshot(&record.id);
        let _ = nix::mount::umount2(&dir.join("rootfs"), nix::mount::MntFlags::MNT_DETACH);
        let hidden = dir.with_file_name(format!(".{}.removing", record.id));
        if std::fs::rename(&dir, &hidden).is_ok() {
            trash.push(hidden);
        }
    }
    let dir = engine.records.dir_of(&record.id);
    let hidden = dir.with_file_name(format!(".{}.removing", record.id));
    if engine.records.hide(&record.id, &hidden).is_ok() {
        trash.push(hidden);
    }
    let engine_root = engine.root.clone();
    let id = record.id.clone();
    move || {
        for d in trash {
            let _ = std::fs::remove_dir_all(d);
        }
        // Anything the renames missed goes the slow way.
        if let Ok(engine) = Engine::open(&engine_root) {
            if let Ok(r) = engine.records.find(&id) {
                purge(&engine, &r);
            }
        }
    }
}

/// Removes everything of the container, its record last.
pub fn purge(engine: &Engine, record: &ContainerRecord) -> Option<Error> {
    let mut first = release(engine, record).err();
    if let Ok(images) = engine.images() {
        match images.remove_snapshot(&record.id) {
            Ok(()) | Err(image::Error::Snapshot { .. }) => {}
            Err(e) => {
                first.get_or_insert(e.into());
            }
        }
    }
    if let Err(e) = engine.records.remove(&record.id) {
        first.get_or_insert(e);
    }
    first
}
