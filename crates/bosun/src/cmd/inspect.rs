//! `bosun inspect`: a JSON array of containers shaped like Docker's
//! `docker inspect` (the fields bosun knows).

use anyhow::Result;
use engine::records::{ContainerRecord, Status};
use engine::Engine;
use serde_json::{json, Value};
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  bosun inspect web
  bosun inspect web | jq -r '.[0].NetworkSettings.IPAddress'")]
pub struct Args {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(root: &Path, a: Args) -> Result<ExitCode> {
    let engine = Engine::open(root)?;
    let mut out = Vec::new();
    for name in &a.containers {
        let rec = engine.records.find(name)?;
        let rec = engine::ops::refresh(&engine, &rec)?;
        let spec = std::fs::read(engine.bundle(&rec.id).join("config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .unwrap_or(Value::Null);
        out.push(document(&rec, &spec));
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}

fn document(r: &ContainerRecord, spec: &Value) -> Value {
    let (status, running, pid, code, started, finished, oom) = match &r.status {
        Status::Created => ("created", false, 0, 0, "", "", false),
        Status::Running { pid, started_at } => {
            ("running", true, *pid, 0, started_at.as_str(), "", false)
        }
        Status::Exited {
            code,
            finished_at,
            oom_killed,
        } => (
            "exited",
            false,
            0,
            *code,
            "",
            finished_at.as_str(),
            *oom_killed,
        ),
    };
    let ports: serde_json::Map<String, Value> = r
        .ports
        .iter()
        .filter_map(|p| engine::create::parse_publish_text(p))
        .map(|p| {
            (
                format!("{}/{}", p.container_port, p.protocol),
                json!([{"HostIp": p.host_ip.unwrap_or_else(|| "0.0.0.0".into()), "HostPort": p.host_port.to_string()}]),
            )
        })
        .collect();
    let process = &spec["process"];
    json!({
        "Id": r.id,
        "Created": r.created,
        "Path": r.command.first(),
        "Args": r.command.get(1..).unwrap_or_default(),
        "State": {
            "Status": status, "Running": running, "Paused": false, "Restarting": false,
            "OOMKilled": oom, "Dead": false, "Pid": pid, "ExitCode": code,
            "StartedAt": started, "FinishedAt": finished,
        },
        "Image": r.image_id,
        "Name": format!("/{}", r.name),
        "MonitorPid": r.monitor_pid,
        "HostConfig": {
            "NetworkMode": r.network,
            "AutoRemove": r.auto_remove,
            "ReadonlyRootfs": spec["root"]["readonly"],
            "CapAdd": Value::Null,
            "Resources": spec["linux"]["resources"],
            "CgroupParent": "/bosun",
        },
        "Mounts": spec["mounts"],
        "Config": {
            "Hostname": r.hostname,
            "Tty": r.tty,
            "OpenStdin": r.interactive,
            "Env": process["env"],
            "Cmd": r.command,
            "Image": r.image,
            "WorkingDir": process["cwd"],
            "User": format!("{}:{}", process["user"]["uid"], process["user"]["gid"]),
        },
        "NetworkSettings": {
            "IPAddress": r.ip.clone().unwrap_or_default(),
            "Gateway": if r.ip.is_some() { "10.88.0.1" } else { "" },
            "Ports": ports,
        },
    })
}
