//! Times one container's cgroup life on this host, as root: name + create,
//! apply (cpu quota, memory, pids), add a process, destroy (which kills it).
//! This is the cgroup share of a runtime's `run`; print medians and p90s.
//! "destroy (live)" is dominated by the killed process's own exit in the
//! kernel (2–9 ms here); "destroy (empty)" is what `delete` pays after exit.
//!
//! `cargo run --release -p cgroups --example cgroup_cycle [-- N]` (default 50).

use std::process::Command;
use std::time::{Duration, Instant};

use cgroups::{Cgroup, Hierarchy};
use oci_spec::runtime::LinuxResources;

fn main() -> anyhow::Result<()> {
    anyhow::ensure!(testkit::is_root(), "run as root: it creates cgroups");
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(50);
    let h = Hierarchy::detect()?;
    let r: LinuxResources = serde_json::from_str(
        r#"{"cpu": {"quota": 20000, "period": 100000, "shares": 512},
            "memory": {"limit": 67108864, "swap": 67108864}, "pids": {"limit": 64}}"#,
    )?;
    let mut phases: [Vec<Duration>; 5] = Default::default();
    for _ in 0..n {
        // An empty cgroup: what `delete` costs after the container exited.
        let name = testkit::unique_name();
        let cg = Cgroup::new(&h, Some(&format!("/{name}")), &name)?;
        cg.create()?;
        let t = Instant::now();
        cg.destroy()?;
        phases[4].push(t.elapsed());

        let name = testkit::unique_name();
        let mut child = Command::new("sleep").arg("60").spawn()?;
        let t0 = Instant::now();
        let cg = Cgroup::new(&h, Some(&format!("/{name}")), &name)?;
        cg.create()?;
        let t1 = Instant::now();
        cg.apply(&r)?;
        let t2 = Instant::now();
        cg.add_task(child.id() as i32)?;
        let t3 = Instant::now();
        cg.destroy()?;
        let t4 = Instant::now();
        child.wait()?;
        for (i, d) in [t1 - t0, t2 - t1, t3 - t2, t4 - t3].into_iter().enumerate() {
            phases[i].push(d);
        }
    }
    println!(
        "{n} cycles on {:?} (hybrid: {})",
        h.version(),
        h.is_hybrid()
    );
    for (name, mut v) in [
        "create",
        "apply",
        "add_task",
        "destroy (live)",
        "destroy (empty)",
    ]
    .into_iter()
    .zip(phases)
    {
        v.sort();
        let at = |q: f64| v[((v.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1e3;
        println!(
            "{name:>15}: median {:7.3} ms  p90 {:7.3} ms",
            at(0.5),
            at(0.9)
        );
    }
    Ok(())
}
