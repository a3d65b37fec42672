//! Acceptance 3 of the scheduler/controllers issue, with the real kubectl
//! against `bosun server` and `bosun sim-nodes` (whose pods finish when they
//! carry the completion annotation): a Job never runs more pods than its
//! parallelism and completes; a failing Job stops at backoffLimit; an
//! Indexed Job completes every index; a CronJob makes a Job each minute and
//! keeps only its history limit.

mod controllers_support;

use controllers_support::{kubectl_available, Cluster};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::{Arc, Mutex};

const DONE: &str = "bosun.dev/sim-complete";

fn cluster() -> Cluster {
    let mut c = Cluster::start();
    c.sim(&[
        "--count",
        "3",
        "--ready-delay",
        "1",
        "--complete-annotation",
        DONE,
    ]);
    c.wait_nodes(3);
    c
}

fn job(name: &str, extra_spec: &str, outcome: &str) -> String {
    format!(
        r#"apiVersion: batch/v1
kind: Job
metadata: {{name: {name}}}
spec:
  {extra_spec}
  template:
    metadata:
      annotations: {{"{DONE}": "{outcome}"}}
    spec:
      restartPolicy: Never
      containers: [{{name: main, image: busybox, command: ["true"]}}]
"#
    )
}

fn condition(c: &Cluster, job: &str) -> String {
    c.kubectl(&[
        "get",
        "job",
        job,
        "-o",
        r#"jsonpath={range .status.conditions[?(@.status=="True")]}{.type}/{.reason} {end}"#,
    ])
    .unwrap_or_default()
}

/// Kills the kubectl watch when the test ends, however it ends.
struct Watch(Child);

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Follows a pod watch; returns the largest number of pods seen active at once
/// and how many events were seen.
fn sample_active(c: &Cluster, selector: &str) -> (Watch, Arc<Mutex<(usize, usize)>>) {
    let mut child = c.watch(&[
        "pods",
        "-l",
        selector,
        "--output-watch-events",
        "-o",
        r#"jsonpath={.type} {.object.metadata.name} {.object.status.phase} {.object.metadata.deletionTimestamp}{"\n"}"#,
    ]);
    let out = child.stdout.take().expect("watch stdout");
    let max = Arc::new(Mutex::new((0usize, 0usize)));
    let m = max.clone();
    std::thread::spawn(move || {
        let mut active: HashMap<String, bool> = HashMap::new();
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(ty), Some(name)) = (f.first(), f.get(1)) else {
                continue;
            };
            let running = matches!(f.get(2), Some(&"Pending") | Some(&"Running")) && f.len() == 3;
            active.insert(name.to_string(), *ty != "DELETED" && running);
            let now = active.values().filter(|a| **a).count();
            if let Ok(mut g) = m.lock() {
                g.0 = g.0.max(now);
                g.1 += 1;
            }
        }
    });
    (Watch(child), max)
}

#[test]
fn job_respects_parallelism_and_completes() {
    if !kubectl_available() {
        println!("skipped: kubectl not installed");
        return;
    }
    let c = cluster();
    let (_watch, max) = sample_active(&c, "batch.kubernetes.io/job-name=work");
    c.apply_manifest(&job("work", "completions: 5\n  parallelism: 2", "ok"));
    c.wait("job complete", || {
        condition(&c, "work").contains("Complete/")
    });
    let counts = c.must(&[
        "get",
        "job",
        "work",
        "-o",
        "jsonpath={.status.succeeded}/{.status.failed}/{.status.active}/{.status.completionTime}",
    ]);
    assert!(
        counts.starts_with("5//0/") || counts.starts_with("5/0/0/"),
        "{counts}"
    );
    assert!(condition(&c, "work").contains("SuccessCriteriaMet/"));
    let finalizers = c.must(&[
        "get",
        "pods",
        "-l",
        "batch.kubernetes.io/job-name=work",
        "-o",
        "jsonpath={.items[*].metadata.finalizers}",
    ]);
    assert!(!finalizers.contains("job-tracking"), "{finalizers}");
    let pods = c.must(&["get", "pods", "-l", "job-name=work", "-o", "name"]);
    assert_eq!(pods.lines().count(), 5, "{pods}");
    c.wait("watch saw the pods", || max.lock().is_ok_and(|g| g.1 >= 10));
    let (most, events) = *max.lock().expect("sample");
    assert!(
        (1..=2).contains(&most),
        "{most} pods active at once ({events} events)"
    );
}

#[test]
fn failing_job_stops_at_backoff_limit() {
    if !kubectl_available() {
        println!("skipped: kubectl not installed");
        return;
    }
    let c = cluster();
    c.apply_manifest(&job("doomed", "backoffLimit: 1", "fail"));
    c.wait("job failed", || {
        condition(&c, "doomed").contains("Failed/BackoffLimitExceeded")
    });
    assert!(condition(&c, "doomed").contains("FailureTarget/BackoffLimitExceeded"));
    assert_eq!(
        c.must(&[
            "get",
            "job",
            "doomed",
            "-o",
            "jsonpath={.status.failed}/{.status.active}"
        ]),
        "2/0"
    );
    let pods = c.must(&["get", "pods", "-l", "job-name=doomed", "-o", "name"]);
    assert_eq!(pods.lines().count(), 2, "{pods}");
}

#[test]
fn indexed_job_completes_every_index() {
    if !kubectl_available() {
        println!("skipped: kubectl not installed");
        return;
    }
    let c = cluster();
    c.apply_manifest(&job(
        "indexed",
        "completions: 4\n  parallelism: 2\n  completionMode: Indexed",
        "ok",
    ));
    c.wait("job complete", || {
        condition(&c, "indexed").contains("Complete/")
    });
    assert_eq!(
        c.must(&[
            "get",
            "job",
            "indexed",
            "-o",
            "jsonpath={.status.completedIndexes}/{.status.succeeded}"
        ]),
        "0-3/4"
    );
    let idx = c.must(&["get", "pods", "-l", "job-name=indexed", "-o",
        r#"jsonpath={range .items[*]}{.metadata.annotations.batch\.kubernetes\.io/job-completion-index}{" "}{end}"#]);
    let mut seen: Vec<&str> = idx.split_whitespace().collect();
    seen.sort();
    assert_eq!(seen, ["0", "1", "2", "3"]);
    let env = c.must(&[
        "get",
        "pods",
        "-l",
        "job-name=indexed",
        "-o",
        "jsonpath={.items[0].spec.containers[0].env[0].name}",
    ]);
    assert_eq!(env, "JOB_COMPLETION_INDEX");
}

#[test]
fn cronjob_starts_a_job_each_minute_and_keeps_its_history_limit() {
    if !kubectl_available() {
        println!("skipped: kubectl not installed");
        return;
    }
    let c = cluster();
    c.apply_manifest(&format!(
        r#"apiVersion: batch/v1
kind: CronJob
metadata: {{name: tick}}
spec:
  schedule: "*/1 * * * *"
  timeZone: Etc/UTC
  successfulJobsHistoryLimit: 1
  jobTemplate:
    spec:
      template:
        metadata:
          annotations: {{"{DONE}": "ok"}}
        spec:
          restartPolicy: Never
          containers: [{{name: main, image: busybox}}]
"#
    ));
    let jobs = || -> Vec<String> {
        c.kubectl(&["get", "jobs", "-o", "jsonpath={.items[*].metadata.name}"])
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    let long = std::time::Duration::from_secs(240);
    c.wait_for("the first scheduled job", long, || !jobs().is_empty());
    let first = jobs()[0].clone();
    let minutes: i64 = first
        .strip_prefix("tick-")
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("job name {first}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64 / 60)
        .unwrap_or_default();
    assert!(
        (now - minutes).abs() <= 2,
        "{first} is not named after its minute ({now})"
    );
    c.wait_for("a second job replacing the first", long, || {
        let j = jobs();
        j.iter().any(|n| *n != first) && !j.contains(&first)
    });
    c.wait("the second job completes", || {
        jobs()
            .iter()
            .any(|j| condition(&c, j).contains("Complete/"))
    });
    assert!(jobs().len() <= 2, "{:?}", jobs());
    let status = c.must(&[
        "get",
        "cronjob",
        "tick",
        "-o",
        "jsonpath={.status.lastScheduleTime}/{.status.lastSuccessfulTime}",
    ]);
    assert!(
        status.len() > 30 && !status.starts_with('/') && !status.ends_with('/'),
        "{status}"
    );
}
