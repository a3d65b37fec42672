//! Fake devices for tests and demos: `count` widgets, each a small file
//! `<state>/widget<i>`. A widget is unhealthy while `<state>/unhealthy/widget<i>`
//! exists (or its file is gone). A container given widgets gets each file
//! bind-mounted at `/run/widgets/widget<i>` and `WIDGET_IDS=widget1,widget3`.
//! The plugin prefers the highest-numbered free widgets, which makes its
//! GetPreferredAllocation visible in tests.

use super::{device, DeviceSource};
use crate::error::{io, Result};
use crate::v1beta1::{ContainerAllocateResponse, Device, Mount};
use std::path::{Path, PathBuf};

/// Where the widgets live inside a container.
pub const CONTAINER_DIR: &str = "/run/widgets";
/// The environment variable listing a container's widgets.
pub const ENV: &str = "WIDGET_IDS";

pub struct Widgets {
    resource: String,
    count: usize,
    state: PathBuf,
}

impl Widgets {
    /// Creates the widget files and the `unhealthy/` directory under `state`.
    pub fn create(resource: &str, count: usize, state: &Path) -> Result<Widgets> {
        let unhealthy = state.join("unhealthy");
        std::fs::create_dir_all(&unhealthy).map_err(io("create", &unhealthy))?;
        for i in 0..count {
            let path = state.join(format!("widget{i}"));
            std::fs::write(&path, format!("widget{i}\n")).map_err(io("write", &path))?;
        }
        Ok(Widgets {
            resource: resource.to_string(),
            count,
            state: state.to_path_buf(),
        })
    }

    fn ids(&self) -> impl Iterator<Item = String> {
        (0..self.count).map(|i| format!("widget{i}"))
    }
}

impl DeviceSource for Widgets {
    fn resource(&self) -> &str {
        &self.resource
    }

    fn devices(&self) -> Vec<Device> {
        self.ids()
            .map(|id| {
                let healthy = self.state.join(&id).exists()
                    && !self.state.join("unhealthy").join(&id).exists();
                device(id, healthy)
            })
            .collect()
    }

    fn allocate(&self, ids: &[String]) -> std::result::Result<ContainerAllocateResponse, String> {
        let mut response = ContainerAllocateResponse::default();
        for id in ids {
            if !self.ids().any(|known| known == *id) {
                return Err(format!("no widget {id}"));
            }
            response.mounts.push(Mount {
                container_path: format!("{CONTAINER_DIR}/{id}"),
                host_path: self.state.join(id).to_string_lossy().into_owned(),
                read_only: true,
            });
        }
        response.envs.insert(ENV.to_string(), ids.join(","));
        Ok(response)
    }

    fn preferred(
        &self,
        available: &[String],
        must_include: &[String],
        size: usize,
    ) -> Option<Vec<String>> {
        let mut chosen: Vec<String> = must_include.to_vec();
        let mut rest: Vec<&String> = available.iter().filter(|id| !chosen.contains(id)).collect();
        rest.sort_by_key(|id| std::cmp::Reverse(widget_number(id)));
        chosen.extend(
            rest.into_iter()
                .take(size.saturating_sub(chosen.len()))
                .cloned(),
        );
        Some(chosen)
    }
}

fn widget_number(id: &str) -> u64 {
    id.trim_start_matches("widget").parse().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_follows_marker_files_and_allocate_mounts_files() {
        let dir = tempfile::tempdir().unwrap();
        let w = Widgets::create("example.com/widget", 3, dir.path()).unwrap();
        assert!(w.devices().iter().all(|d| d.health == crate::HEALTHY));
        std::fs::write(dir.path().join("unhealthy/widget1"), "").unwrap();
        let health: Vec<_> = w.devices().into_iter().map(|d| d.health).collect();
        assert_eq!(health, [crate::HEALTHY, crate::UNHEALTHY, crate::HEALTHY]);
        let r = w.allocate(&["widget2".into()]).unwrap();
        assert_eq!(r.envs[ENV], "widget2");
        assert_eq!(r.mounts[0].container_path, "/run/widgets/widget2");
        assert!(w.allocate(&["widget9".into()]).is_err());
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let p = w.preferred(&ids(&["widget0", "widget2", "widget10"]), &[], 2);
        assert_eq!(p.unwrap(), ids(&["widget10", "widget2"]));
    }
}
