//! The plugin side: serve DevicePlugin for a `DeviceSource` on a socket in
//! the device-plugins directory, register with the kubelet, and register
//! again whenever `kubelet.sock` is recreated (a kubelet restart), as
//! upstream plugins do. The source is polled for device health; each change
//! goes out on every open ListAndWatch stream.

mod nvidia;
mod server;
mod widgets;

pub use nvidia::{detect_gpus, NvidiaGpus};
pub use widgets::Widgets;

use crate::error::{rpc, Result};
use crate::v1beta1::{
    registration_client::RegistrationClient, ContainerAllocateResponse, Device,
    DevicePluginOptions, RegisterRequest,
};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Where a set of devices comes from and how a container gets at them.
pub trait DeviceSource: Send + Sync + 'static {
    /// The extended resource name advertised, e.g. "example.com/widget".
    fn resource(&self) -> &str;
    /// The devices now, with their health (called on every poll).
    fn devices(&self) -> Vec<Device>;
    /// What a container given `ids` needs; an error names what is wrong.
    fn allocate(&self, ids: &[String]) -> std::result::Result<ContainerAllocateResponse, String>;
    /// `size` preferred devices out of `available`, including `must_include`;
    /// `None` when the source has no preference (GetPreferredAllocation is
    /// then not offered).
    fn preferred(
        &self,
        _available: &[String],
        _must_include: &[String],
        _size: usize,
    ) -> Option<Vec<String>> {
        None
    }
}

/// How the plugin meets the kubelet.
#[derive(Debug, Clone)]
pub struct PluginConfig {
    /// The device-plugins directory (holds kubelet.sock).
    pub dir: PathBuf,
    /// The plugin's socket file name in `dir`.
    pub endpoint: String,
    /// How often device health and kubelet.sock are checked.
    pub poll: Duration,
}

impl PluginConfig {
    /// The default socket name for a resource: "bosun-example-com-widget.sock".
    pub fn endpoint_for(resource: &str) -> String {
        format!("bosun-{}.sock", resource.replace(['/', '.'], "-"))
    }
}

/// Serves `source` until `shutdown` resolves, (re)registering with the
/// kubelet; removes the plugin socket on the way out.
pub async fn run(
    source: Arc<dyn DeviceSource>,
    config: PluginConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    crate::names::validate_resource_name(source.resource())?;
    crate::names::validate_endpoint(&config.endpoint)?;
    let socket = config.dir.join(&config.endpoint);
    let (devices_tx, devices_rx) = watch::channel(source.devices());
    let served = server::serve(source.clone(), &socket, devices_rx)?;
    let options = server::options(source.as_ref());
    tokio::pin!(shutdown);
    let mut registered_with = None;
    let mut failed_with = None;
    loop {
        let kubelet = config.dir.join(crate::KUBELET_SOCKET);
        let now = crate::uds::identity(&kubelet);
        if now.is_some() && now != registered_with {
            match register(&config, source.resource(), options).await {
                Ok(()) => {
                    tracing::info!(resource = source.resource(), "registered with the kubelet");
                    registered_with = now;
                }
                // Warn once per kubelet socket; keep retrying quietly.
                Err(e) if failed_with != now => {
                    tracing::warn!(error = %e, "device plugin registration");
                    failed_with = now;
                }
                Err(e) => tracing::debug!(error = %e, "device plugin registration"),
            }
        }
        devices_tx.send_if_modified(|current| {
            let fresh = source.devices();
            let changed = *current != fresh;
            *current = fresh;
            changed
        });
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(config.poll) => {}
        }
    }
    drop(devices_tx);
    served.stop().await;
    let _ = std::fs::remove_file(&socket);
    Ok(())
}

async fn register(
    config: &PluginConfig,
    resource: &str,
    options: DevicePluginOptions,
) -> Result<()> {
    let kubelet = config.dir.join(crate::KUBELET_SOCKET);
    let channel = crate::uds::connect(&kubelet).await?;
    let request = RegisterRequest {
        version: crate::VERSION.to_string(),
        endpoint: config.endpoint.clone(),
        resource_name: resource.to_string(),
        options: Some(options),
    };
    RegistrationClient::new(channel)
        .register(request)
        .await
        .map_err(rpc("Register", &kubelet))?;
    Ok(())
}

/// A device list entry.
pub fn device(id: impl Into<String>, healthy: bool) -> Device {
    Device {
        id: id.into(),
        health: if healthy {
            crate::HEALTHY
        } else {
            crate::UNHEALTHY
        }
        .to_string(),
        topology: None,
    }
}
