//! The Registration service and, per registered plugin, the task that
//! connects to it and follows its ListAndWatch stream until it ends.

use super::state::Plugin;
use super::Shared;
use crate::error::{rpc, Result};
use crate::uds::Served;
use crate::v1beta1::registration_server::{Registration, RegistrationServer};
use crate::v1beta1::{
    device_plugin_client::DevicePluginClient, Empty, ListAndWatchResponse, RegisterRequest,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status};

/// Binds `<dir>/kubelet.sock` and serves Registration.
pub(crate) fn serve(shared: Arc<Shared>) -> Result<Served> {
    let path = shared.dir.join(crate::KUBELET_SOCKET);
    let service = RegistrationServer::new(Service { shared });
    crate::uds::serve(tonic::service::Routes::new(service), &path)
}

struct Service {
    shared: Arc<Shared>,
}

#[tonic::async_trait]
impl Registration for Service {
    async fn register(&self, request: Request<RegisterRequest>) -> Result<Response<Empty>, Status> {
        let req = request.into_inner();
        if req.version != crate::VERSION {
            return Err(Status::invalid_argument(format!(
                "unsupported device plugin API version {:?} (this kubelet speaks {})",
                req.version,
                crate::VERSION
            )));
        }
        crate::names::validate_resource_name(&req.resource_name)
            .and_then(|_| crate::names::validate_endpoint(&req.endpoint))
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        tracing::info!(resource = %req.resource_name, endpoint = %req.endpoint, "device plugin registered");
        let generation = {
            let mut state = self.shared.lock();
            let r = state
                .resources
                .entry(req.resource_name.clone())
                .or_default();
            r.generation += 1;
            if let Some(old) = r.task.take() {
                old.abort();
            }
            r.generation
        };
        let shared = self.shared.clone();
        let resource = req.resource_name.clone();
        let task = tokio::spawn(follow(shared, req, generation));
        let mut state = self.shared.lock();
        if let Some(r) = state.resources.get_mut(&resource) {
            if r.generation == generation {
                r.task = Some(task.abort_handle());
            }
        }
        Ok(Response::new(Empty {}))
    }
}

/// Connects to a registered plugin, follows its device list, and marks its
/// devices unhealthy when the stream ends (the plugin died or went away).
async fn follow(shared: Arc<Shared>, req: RegisterRequest, generation: u64) {
    let resource = req.resource_name.clone();
    if let Err(e) = follow_stream(&shared, &req, generation).await {
        tracing::warn!(resource = %resource, error = %e, "device plugin stream ended");
    } else {
        tracing::info!(resource = %resource, "device plugin stream closed");
    }
    let mut state = shared.lock();
    let current = state.resources.get(&resource).map(|r| r.generation) == Some(generation);
    if current {
        state.mark_unhealthy(&resource);
        drop(state);
        shared.save();
        shared.notify();
    }
}

async fn follow_stream(shared: &Shared, req: &RegisterRequest, generation: u64) -> Result<()> {
    let socket = shared.dir.join(&req.endpoint);
    let channel = connect_with_retry(&socket).await?;
    let mut client = DevicePluginClient::new(channel);
    let mut stream = client
        .list_and_watch(Empty {})
        .await
        .map_err(rpc("ListAndWatch", &socket))?
        .into_inner();
    {
        let mut state = shared.lock();
        let Some(r) = state.resources.get_mut(&req.resource_name) else {
            return Ok(());
        };
        if r.generation != generation {
            return Ok(());
        }
        r.plugin = Some(Plugin {
            socket: socket.clone(),
            options: req.options.unwrap_or_default(),
            client,
        });
    }
    while let Some(update) = stream
        .message()
        .await
        .map_err(rpc("ListAndWatch", &socket))?
    {
        if !apply(shared, &req.resource_name, generation, update) {
            return Ok(());
        }
    }
    Ok(())
}

/// Applies one device list; false when this plugin has been replaced.
fn apply(shared: &Shared, resource: &str, generation: u64, update: ListAndWatchResponse) -> bool {
    let devices: BTreeMap<String, bool> = update
        .devices
        .into_iter()
        .map(|d| (d.id, d.health == crate::HEALTHY))
        .collect();
    let mut state = shared.lock();
    if state.resources.get(resource).map(|r| r.generation) != Some(generation) {
        return false;
    }
    let changed = state.set_devices(resource, devices);
    drop(state);
    tracing::debug!(resource, changed, "device list from plugin");
    shared.save();
    if changed {
        shared.notify();
    }
    true
}

/// A plugin registers once it serves, but give a slow one a few tries.
async fn connect_with_retry(socket: &std::path::Path) -> Result<tonic::transport::Channel> {
    let mut tries = 0;
    loop {
        match crate::uds::connect(socket).await {
            Ok(channel) => return Ok(channel),
            Err(e) if tries >= 10 => return Err(e),
            Err(_) => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(200 * tries)).await;
            }
        }
    }
}
