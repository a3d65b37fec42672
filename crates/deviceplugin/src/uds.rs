//! gRPC over unix sockets: a tonic channel to a socket path, and a listener
//! that replaces a stale socket file.

use crate::error::{io, Error, Result};
use hyper_util::rt::TokioIo;
use std::path::Path;
use tokio::sync::oneshot;
use tonic::transport::{Channel, Endpoint, Uri};

/// Connects a gRPC channel to the unix socket at `path` (connected now, so a
/// missing or dead socket is an error here rather than on the first call).
pub async fn connect(path: &Path) -> Result<Channel> {
    let socket = path.to_path_buf();
    let endpoint = Endpoint::from_static("http://[::]:50051");
    endpoint
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(
                    tokio::net::UnixStream::connect(socket).await?,
                ))
            }
        }))
        .await
        .map_err(|source| Error::Connect {
            path: path.to_path_buf(),
            source,
        })
}

/// Binds a unix listener at `path`, creating the directory and removing a
/// stale socket file first.
pub fn listen(path: &Path) -> Result<tokio_stream::wrappers::UnixListenerStream> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(io("remove stale socket", path)(e))
        }
        _ => {}
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(io("listen on", path))?;
    Ok(tokio_stream::wrappers::UnixListenerStream::new(listener))
}

/// The identity of a file (device, inode, change time), to notice it being
/// recreated even when the new file reuses the old inode number.
pub fn identity(path: &Path) -> Option<(u64, u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino(), m.ctime(), m.ctime_nsec()))
}

/// A gRPC server running on a unix socket; `stop` ends it and waits.
pub(crate) struct Served {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Served {
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }

    /// Stops without waiting (from synchronous code such as `Drop`).
    pub fn stop_now(self) {
        let _ = self.stop.send(());
    }
}

/// Serves `routes` on a fresh unix socket at `path` in a task.
pub(crate) fn serve(routes: tonic::service::Routes, path: &Path) -> Result<Served> {
    let incoming = listen(path)?;
    let (stop, stopped) = oneshot::channel::<()>();
    let path = path.to_path_buf();
    let task = tokio::spawn(async move {
        let served = tonic::transport::Server::builder()
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            })
            .await;
        if let Err(source) = served {
            tracing::error!(error = %Error::Serve { path, source }, "gRPC server");
        }
    });
    Ok(Served { stop, task })
}
