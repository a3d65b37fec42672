//! `bosun device-plugin`: a Kubernetes device plugin (API v1beta1). Either
//! fake widgets (`--resource example.com/widget --count N`: files under
//! --state-dir, unhealthy while `<state-dir>/unhealthy/widget<i>` exists) or
//! NVIDIA GPUs (`--resource nvidia.com/gpu`, or neither flag when
//! /dev/nvidia<N> exist under --dev-root). Registers with the kubelet in
//! --dir (default: where `bosun agent`/`server` with the same --root serve)
//! and again whenever the kubelet restarts.

use anyhow::{bail, Context};
use clap::Args as ClapArgs;
use deviceplugin::plugin::{self, DeviceSource, NvidiaGpus, PluginConfig, Widgets};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

const GPU: &str = "nvidia.com/gpu";
const WIDGET: &str = "example.com/widget";

/// Serve a device plugin (fake widgets or NVIDIA GPUs) to the kubelet.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Extended resource to advertise: nvidia.com/gpu for GPUs, anything
    /// else for fake widgets (default: GPUs if /dev/nvidia<N> exist).
    #[arg(long)]
    pub resource: Option<String>,
    /// Number of fake widgets (default 4; implies example.com/widget without --resource).
    #[arg(long)]
    pub count: Option<usize>,
    /// The kubelet's device-plugins directory (holds kubelet.sock); default:
    /// `<root>/kubelet/device-plugins`, where bosun's own kubelet serves.
    /// An upstream kubelet uses /var/lib/kubelet/device-plugins.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The plugin's socket file name in --dir (default: from the resource name).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Where widget files live; `<state-dir>/unhealthy/widget<i>` marks one unhealthy.
    #[arg(long, default_value = "/run/bosun/widgets")]
    pub state_dir: PathBuf,
    /// Root under which /dev/nvidia* are looked for (a fake tree in tests).
    #[arg(long, default_value = "/")]
    pub dev_root: PathBuf,
    /// How often device health and the kubelet socket are checked, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub poll_ms: u64,
}

pub fn run(root: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let source = source(&args)?;
    let config = PluginConfig {
        endpoint: args
            .endpoint
            .clone()
            .unwrap_or_else(|| PluginConfig::endpoint_for(source.resource())),
        dir: args
            .dir
            .unwrap_or_else(|| root.join("kubelet").join("device-plugins")),
        poll: Duration::from_millis(args.poll_ms.max(10)),
    };
    let rt = tokio::runtime::Runtime::new().context("start the async runtime")?;
    rt.block_on(async {
        tracing::info!(resource = source.resource(), dir = %config.dir.display(), "serving device plugin");
        plugin::run(source, config, cri::shutdown_signal()).await
    })
    .context("device plugin")?;
    Ok(ExitCode::SUCCESS)
}

fn source(args: &Args) -> anyhow::Result<Arc<dyn DeviceSource>> {
    let resource = match (&args.resource, args.count) {
        (Some(r), _) => r.clone(),
        (None, Some(_)) => WIDGET.to_string(),
        (None, None) if !plugin::detect_gpus(&args.dev_root).is_empty() => GPU.to_string(),
        (None, None) => bail!(
            "no --resource given and no {} found",
            gpu_glob(&args.dev_root)
        ),
    };
    if resource == GPU {
        if plugin::detect_gpus(&args.dev_root).is_empty() {
            bail!("no {} found", gpu_glob(&args.dev_root));
        }
        return Ok(Arc::new(NvidiaGpus::new(&args.dev_root)));
    }
    let widgets = Widgets::create(&resource, args.count.unwrap_or(4), &args.state_dir)
        .context("create the widget files")?;
    Ok(Arc::new(widgets))
}

fn gpu_glob(dev_root: &Path) -> String {
    format!("{}/nvidia[0-9]*", dev_root.join("dev").display())
}
