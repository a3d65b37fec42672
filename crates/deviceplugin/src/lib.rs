//! The Kubernetes device plugin API (v1beta1) for bosun: the generated
//! protocol (`v1beta1`), the kubelet's device manager (`Manager`: serves
//! Registration, watches plugins, allocates devices, checkpoints) and a plugin
//! framework with two device sources (`plugin`: fake widgets, NVIDIA GPUs)
//! that `bosun device-plugin` runs.
#![forbid(unsafe_code)]

pub mod error;
pub mod manager;
pub mod names;
pub mod plugin;
pub mod uds;

pub use error::{Error, Result};
pub use manager::{Config, ContainerDevices, DeviceNode, Manager, MountSpec, ResourceCount};

/// Generated messages, clients and servers of `k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1`.
#[allow(clippy::all)]
pub mod v1beta1 {
    tonic::include_proto!("v1beta1");
}

/// The only API version this kubelet and these plugins speak.
pub const VERSION: &str = "v1beta1";
/// The kubelet's Registration socket, a file name in the device-plugins directory.
pub const KUBELET_SOCKET: &str = "kubelet.sock";
/// Where the kubelet and plugins meet unless told otherwise.
pub const DEFAULT_DIR: &str = "/var/lib/kubelet/device-plugins";
/// The checkpoint file in the device-plugins directory (upstream's name).
pub const CHECKPOINT_FILE: &str = "kubelet_internal_checkpoint";
/// `Device.health` of a usable device.
pub const HEALTHY: &str = "Healthy";
/// `Device.health` of a device that must not be allocated.
pub const UNHEALTHY: &str = "Unhealthy";
