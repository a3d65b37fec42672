//! Device plugins end to end: the kubelet's `deviceplugin::Manager` serving
//! Registration in a scratch directory and the real `bosun device-plugin`
//! process talking v1beta1 gRPC to it over unix sockets. Registration,
//! ListAndWatch counts, distinct allocations until the devices run out,
//! health changes, a plugin crash and restart, a manager restart that reloads
//! its checkpoint, and NVIDIA GPUs on a fake /dev tree (and on real hardware
//! when present).

use deviceplugin::{Config, Manager, ResourceCount};
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WIDGET: &str = "example.com/widget";
const GPU: &str = "nvidia.com/gpu";

/// A running `bosun device-plugin`, killed and reaped on drop.
struct PluginProcess {
    child: Child,
}

impl PluginProcess {
    fn start(args: &[&str]) -> PluginProcess {
        let child = Command::new(env!("CARGO_BIN_EXE_bosun"))
            .arg("device-plugin")
            .args(["--poll-ms", "100"])
            .args(args)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn bosun device-plugin");
        PluginProcess { child }
    }

    fn widgets(dirs: &Dirs, count: usize) -> PluginProcess {
        let count = count.to_string();
        PluginProcess::start(&[
            "--resource",
            WIDGET,
            "--count",
            &count,
            "--dir",
            path_str(&dirs.plugins),
            "--state-dir",
            path_str(&dirs.widgets),
        ])
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PluginProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A scratch directory with the device-plugins dir and the widget state.
struct Dirs {
    _scratch: tempfile::TempDir,
    plugins: PathBuf,
    widgets: PathBuf,
}

fn dirs() -> Dirs {
    let scratch = testkit::scratch_dir();
    Dirs {
        plugins: scratch.path().join("device-plugins"),
        widgets: scratch.path().join("widgets"),
        _scratch: scratch,
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("scratch paths are UTF-8")
}

async fn manager(dirs: &Dirs) -> Manager {
    let config = Config {
        dir: dirs.plugins.clone(),
    };
    Manager::start(config)
        .await
        .expect("start the device manager")
}

/// Polls `check` until it holds (generous: the machine is loaded).
async fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_counts(m: &Manager, resource: &str, capacity: u64, allocatable: u64) {
    let want = ResourceCount {
        capacity,
        allocatable,
    };
    wait_for(&format!("{resource} at {want:?}"), || {
        m.resources().get(resource) == Some(&want)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn widgets_register_allocate_distinct_devices_and_report_health() {
    let dirs = dirs();
    let m = manager(&dirs).await;
    let mut changes = m.subscribe();
    let _plugin = PluginProcess::widgets(&dirs, 4);
    wait_counts(&m, WIDGET, 4, 4).await;
    assert!(
        changes.has_changed().unwrap(),
        "registration notified subscribers"
    );
    changes.mark_unchanged();

    let mut seen = BTreeSet::new();
    for i in 0..4 {
        let pod = format!("pod-{i}");
        let got = m.allocate(&pod, "main", WIDGET, 1).await.expect("allocate");
        assert_eq!(got.device_ids.len(), 1);
        let id = got.device_ids[0].clone();
        if i == 0 {
            assert_eq!(id, "widget3", "the plugin's preferred allocation is used");
        }
        assert_eq!(got.envs["WIDGET_IDS"], id);
        assert_eq!(got.mounts.len(), 1);
        assert_eq!(got.mounts[0].container_path, format!("/run/widgets/{id}"));
        let content = std::fs::read_to_string(&got.mounts[0].host_path).unwrap();
        assert_eq!(content.trim(), id);
        assert!(seen.insert(id), "devices are distinct");
        let again = m.allocate(&pod, "main", WIDGET, 1).await.unwrap();
        assert_eq!(again, got, "a container keeps its devices");
    }
    let fifth = m.allocate("pod-4", "main", WIDGET, 1).await;
    assert!(
        matches!(
            fifth,
            Err(deviceplugin::Error::Insufficient { available: 0, .. })
        ),
        "fifth allocation fails: {fifth:?}"
    );

    m.retain_pods(&HashSet::from([
        "pod-1".into(),
        "pod-2".into(),
        "pod-3".into(),
    ]));
    let freed = m
        .allocate("pod-4", "main", WIDGET, 1)
        .await
        .expect("freed device");
    assert_eq!(
        freed.device_ids,
        ["widget3"],
        "pod-0's device went to pod-4"
    );

    std::fs::write(dirs.widgets.join("unhealthy/widget1"), "").unwrap();
    wait_counts(&m, WIDGET, 4, 3).await;
    assert!(
        changes.has_changed().unwrap(),
        "health change notified subscribers"
    );
    std::fs::remove_file(dirs.widgets.join("unhealthy/widget1")).unwrap();
    wait_counts(&m, WIDGET, 4, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_killed_and_restarted_registers_again() {
    let dirs = dirs();
    let m = manager(&dirs).await;
    let mut plugin = PluginProcess::widgets(&dirs, 3);
    wait_counts(&m, WIDGET, 3, 3).await;
    plugin.kill();
    wait_counts(&m, WIDGET, 3, 0).await;
    assert!(m.allocate("pod-a", "main", WIDGET, 1).await.is_err());
    let _plugin = PluginProcess::widgets(&dirs, 3);
    wait_counts(&m, WIDGET, 3, 3).await;
    let got = m.allocate("pod-a", "main", WIDGET, 1).await.unwrap();
    assert_eq!(got.device_ids.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manager_restart_reloads_checkpoint_and_plugin_re_registers() {
    let dirs = dirs();
    let mut first = manager(&dirs).await;
    let _plugin = PluginProcess::widgets(&dirs, 4);
    wait_counts(&first, WIDGET, 4, 4).await;
    let held = first.allocate("pod-a", "main", WIDGET, 2).await.unwrap();
    first.stop();
    drop(first);

    let second = manager(&dirs).await;
    assert_eq!(
        second.allocated("pod-a", "main", WIDGET),
        Some(held.clone()),
        "allocations come back from the checkpoint"
    );
    wait_counts(&second, WIDGET, 4, 4).await;
    let too_many = second.allocate("pod-b", "main", WIDGET, 3).await;
    assert!(
        matches!(
            too_many,
            Err(deviceplugin::Error::Insufficient { available: 2, .. })
        ),
        "pod-a's devices stay taken: {too_many:?}"
    );
    let rest = second.allocate("pod-b", "main", WIDGET, 2).await.unwrap();
    assert!(rest
        .device_ids
        .iter()
        .all(|id| !held.device_ids.contains(id)));
}

/// A fake /dev with two GPUs and the control nodes.
fn fake_dev_root(dirs: &Dirs) -> PathBuf {
    let root = dirs.widgets.join("root");
    let dev = root.join("dev");
    std::fs::create_dir_all(&dev).unwrap();
    for f in [
        "nvidia0",
        "nvidia1",
        "nvidiactl",
        "nvidia-uvm",
        "nvidia-uvm-tools",
    ] {
        std::fs::write(dev.join(f), "").unwrap();
    }
    root
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpus_on_a_fake_dev_tree_are_detected_and_allocated() {
    let dirs = dirs();
    let root = fake_dev_root(&dirs);
    let m = manager(&dirs).await;
    // No --resource or --count: the plugin detects the GPUs itself.
    let _plugin = PluginProcess::start(&[
        "--dir",
        path_str(&dirs.plugins),
        "--dev-root",
        path_str(&root),
    ]);
    wait_counts(&m, GPU, 2, 2).await;
    let got = m.allocate("pod-gpu", "cuda", GPU, 2).await.unwrap();
    let paths: Vec<&str> = got
        .devices
        .iter()
        .map(|d| d.container_path.as_str())
        .collect();
    for want in [
        "/dev/nvidia0",
        "/dev/nvidia1",
        "/dev/nvidiactl",
        "/dev/nvidia-uvm",
        "/dev/nvidia-uvm-tools",
    ] {
        assert!(paths.contains(&want), "{want} in {paths:?}");
    }
    let mut visible: Vec<&str> = got.envs["NVIDIA_VISIBLE_DEVICES"].split(',').collect();
    visible.sort();
    assert_eq!(visible, ["0", "1"]);
    assert!(got
        .devices
        .iter()
        .all(|d| d.host_path.starts_with(path_str(&root))));
    std::fs::remove_file(root.join("dev/nvidia1")).unwrap();
    wait_counts(&m, GPU, 2, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpus_on_real_hardware() {
    if deviceplugin::plugin::detect_gpus(Path::new("/")).is_empty() {
        eprintln!("skipped: no NVIDIA GPU on this host (no /dev/nvidia0 or other /dev/nvidia<N>)");
        return;
    }
    let dirs = dirs();
    let gpus = deviceplugin::plugin::detect_gpus(Path::new("/")).len() as u64;
    let m = manager(&dirs).await;
    let _plugin = PluginProcess::start(&["--resource", GPU, "--dir", path_str(&dirs.plugins)]);
    wait_counts(&m, GPU, gpus, gpus).await;
    let got = m.allocate("pod-gpu", "cuda", GPU, 1).await.unwrap();
    assert!(got
        .devices
        .iter()
        .any(|d| d.container_path == "/dev/nvidiactl"));
}

#[test]
fn no_resource_and_no_gpus_is_a_one_line_error() {
    let dirs = dirs();
    let out = Command::new(env!("CARGO_BIN_EXE_bosun"))
        .args([
            "device-plugin",
            "--dir",
            path_str(&dirs.plugins),
            "--dev-root",
            path_str(&dirs.widgets),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no --resource given and no"), "{stderr}");
}
