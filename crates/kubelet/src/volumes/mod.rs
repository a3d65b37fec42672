//! Pod volumes: emptyDir (disk and Memory), secret, configMap, projected,
//! downwardAPI and hostPath, materialised under the pod's directory and
//! turned into CRI mounts for each container.
//!
//! Layout (upstream's): `<root>/pods/<uid>/volumes/kubernetes.io~<plugin>/<name>`.
//! [`VolumeManager::setup`] is idempotent: the pod worker calls it before
//! creating containers and gets a [`PodVolumes`] whose
//! [`PodVolumes::mounts_for`] gives each container's mounts. Secret,
//! configMap, downwardAPI and projected volumes are written by the
//! [`atomic`] writer and rewritten in place by [`VolumeManager::resync`]
//! (run every few seconds by [`VolumeManager::run_resync`]) when the
//! objects change. [`VolumeManager::teardown`] unmounts and removes the
//! pod's directory.

pub mod atomic;
pub mod downward;
mod host;
mod mounts;
mod resync;
pub mod sources;

pub use downward::Allocatable;
pub use host::HostError;
pub use mounts::{HostVolume, PodVolumes};

use atomic::AtomicError;
use k8s_openapi::api::core::v1::{Pod, Volume};
use sources::{Fetched, SourceError};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Why a pod's volumes could not be set up, mounted or torn down.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("MountVolume.SetUp failed for volume \"{volume}\" : {source}")]
    SetUp {
        volume: String,
        source: Box<SetUpError>,
    },
    #[error("pod has no metadata.uid")]
    NoUid,
    #[error("container \"{container}\" mounts volume \"{volume}\", which the pod does not define")]
    UnknownVolume { container: String, volume: String },
    #[error("volume \"{volume}\" subPath {sub_path:?}: {reason}")]
    SubPath {
        volume: String,
        sub_path: String,
        reason: String,
    },
    #[error("tearing down the volumes of pod {pod_uid}: {source}")]
    Teardown { pod_uid: String, source: HostError },
}

impl VolumeError {
    /// The short reason for an event (`FailedMount` for set-up failures).
    pub fn reason(&self) -> &'static str {
        match self {
            VolumeError::Teardown { .. } => "FailedUnMount",
            _ => "FailedMount",
        }
    }
}

/// What went wrong with one volume.
#[derive(Debug, thiserror::Error)]
pub enum SetUpError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Host(#[from] HostError),
    #[error(transparent)]
    Write(#[from] AtomicError),
    #[error("getting {kind} \"{name}\": {source}")]
    Api {
        kind: &'static str,
        name: String,
        source: kube::Error,
    },
    #[error("volume type is not supported by bosun")]
    Unsupported,
}

/// Sets up and tears down pod volumes under the kubelet's root directory.
pub struct VolumeManager {
    client: kube::Client,
    root: PathBuf,
    node: Allocatable,
    /// Pods whose volumes are set up, for resync; one writer at a time.
    pods: Mutex<HashMap<String, Arc<Pod>>>,
    write: tokio::sync::Mutex<()>,
}

impl VolumeManager {
    /// A manager for the kubelet root `root` (e.g. /var/lib/bosun/kubelet).
    pub fn new(client: kube::Client, root: impl Into<PathBuf>, node: Allocatable) -> Self {
        VolumeManager {
            client,
            root: root.into(),
            node,
            pods: Mutex::new(HashMap::new()),
            write: tokio::sync::Mutex::new(()),
        }
    }

    /// `<root>/pods/<uid>`: everything the kubelet keeps for one pod.
    pub fn pod_dir(&self, uid: &str) -> PathBuf {
        self.root.join("pods").join(uid)
    }

    /// Sets up every volume of `pod` (idempotent) and returns their host paths.
    pub async fn setup(&self, pod: &Pod) -> Result<PodVolumes, VolumeError> {
        let uid = pod.metadata.uid.clone().ok_or(VolumeError::NoUid)?;
        let mut fetched = Fetched::default();
        let mut volumes = BTreeMap::new();
        for vol in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
            let host = self
                .setup_one(pod, &uid, vol, &mut fetched)
                .await
                .map_err(|source| VolumeError::SetUp {
                    volume: vol.name.clone(),
                    source: Box::new(source),
                })?;
            volumes.insert(vol.name.clone(), host);
        }
        self.lock_pods().insert(uid, Arc::new(pod.clone()));
        Ok(PodVolumes {
            pod: pod.clone(),
            volumes,
        })
    }

    async fn setup_one(
        &self,
        pod: &Pod,
        uid: &str,
        vol: &Volume,
        fetched: &mut Fetched,
    ) -> Result<HostVolume, SetUpError> {
        let dir = |plugin: &str| {
            self.pod_dir(uid)
                .join("volumes")
                .join(plugin)
                .join(&vol.name)
        };
        if let Some(src) = &vol.host_path {
            host::check_host_path(src)?;
            return Ok(HostVolume {
                path: PathBuf::from(&src.path),
                read_only: false,
                creates_sub_paths: true,
            });
        }
        if let Some(src) = &vol.empty_dir {
            let path = dir("kubernetes.io~empty-dir");
            host::setup_empty_dir(&path, src)?;
            return Ok(HostVolume {
                path,
                read_only: false,
                creates_sub_paths: true,
            });
        }
        let Some(plugin) = atomic_plugin(vol) else {
            return Err(SetUpError::Unsupported);
        };
        let path = dir(plugin);
        let ns = namespace(pod);
        self.fetch_for(&ns, vol, fetched).await?;
        let payload = resync::payload(vol, fetched, pod, &self.node)?;
        let _guard = self.write.lock().await;
        atomic::write(&path, &payload)?;
        Ok(HostVolume {
            path,
            read_only: true,
            creates_sub_paths: false,
        })
    }

    /// Gets the Secrets and ConfigMaps `vol` reads that are not in `fetched` yet.
    async fn fetch_for(
        &self,
        ns: &str,
        vol: &Volume,
        fetched: &mut Fetched,
    ) -> Result<(), SetUpError> {
        let (secrets, config_maps) = resync::references(vol);
        use std::collections::hash_map::Entry;
        for name in secrets {
            if let Entry::Vacant(e) = fetched.secrets.entry(name) {
                let obj = self.get("secret", ns, e.key()).await?;
                e.insert(obj);
            }
        }
        for name in config_maps {
            if let Entry::Vacant(e) = fetched.config_maps.entry(name) {
                let obj = self.get("configmap", ns, e.key()).await?;
                e.insert(obj);
            }
        }
        Ok(())
    }

    async fn get<K>(
        &self,
        kind: &'static str,
        ns: &str,
        name: &str,
    ) -> Result<Option<K>, SetUpError>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let api: kube::Api<K> = kube::Api::namespaced(self.client.clone(), ns);
        api.get_opt(name).await.map_err(|source| SetUpError::Api {
            kind,
            name: name.to_string(),
            source,
        })
    }

    /// Unmounts and removes the pod's directory; forgets the pod. Safe to repeat.
    pub async fn teardown(&self, pod_uid: &str) -> Result<(), VolumeError> {
        let _guard = self.write.lock().await;
        self.lock_pods().remove(pod_uid);
        let dir = self.pod_dir(pod_uid);
        let err = |source| VolumeError::Teardown {
            pod_uid: pod_uid.to_string(),
            source,
        };
        host::unmount_all(&dir).map_err(err)?;
        let left = host::mounts_under(&dir).map_err(err)?;
        if let Some(p) = left.first() {
            let source = std::io::Error::other("still mounted");
            return Err(err(HostError::Io {
                op: "unmount",
                path: p.clone(),
                source,
            }));
        }
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(err(HostError::Io {
                op: "remove",
                path: dir,
                source,
            })),
        }
    }

    /// The uids of the pods whose volumes are set up.
    pub fn pods(&self) -> Vec<String> {
        self.lock_pods().keys().cloned().collect()
    }

    fn lock_pods(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Pod>>> {
        self.pods.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The kubelet root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// The plugin directory of a volume the atomic writer fills.
fn atomic_plugin(vol: &Volume) -> Option<&'static str> {
    if vol.secret.is_some() {
        Some("kubernetes.io~secret")
    } else if vol.config_map.is_some() {
        Some("kubernetes.io~configmap")
    } else if vol.projected.is_some() {
        Some("kubernetes.io~projected")
    } else if vol.downward_api.is_some() {
        Some("kubernetes.io~downward-api")
    } else {
        None
    }
}

fn namespace(pod: &Pod) -> String {
    pod.metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into())
}
