//! Docker's rules for building a container's process from image + flags.

use super::*;
use crate::options::{parse_volume, Resources, RunOptions};

fn image() -> ImageDefaults {
    ImageDefaults {
        entrypoint: vec!["/entry".into()],
        cmd: vec!["default".into(), "args".into()],
        env: vec!["PATH=/custom/bin".into(), "FOO=image".into()],
        working_dir: Some("/app".into()),
        user: None,
    }
}

fn ctx() -> SpecContext {
    SpecContext {
        id: "0123456789abcdef0123".into(),
        rootfs: "/var/lib/bosun/rootfs".into(),
        cgroups_path: "/bosun/0123456789abcdef0123".into(),
        network: Network::None,
        etc_files: vec![],
        user: (0, 0, vec![]),
    }
}

#[test]
fn command_follows_docker_entrypoint_and_cmd_rules() {
    let mut opts = RunOptions::default();
    assert_eq!(
        command_line(&image(), &opts).unwrap(),
        ["/entry", "default", "args"]
    );
    opts.command = vec!["mine".into()];
    assert_eq!(command_line(&image(), &opts).unwrap(), ["/entry", "mine"]);
    opts.entrypoint = Some(vec!["/bin/sh".into()]);
    assert_eq!(command_line(&image(), &opts).unwrap(), ["/bin/sh", "mine"]);
    // --entrypoint drops the image's Cmd too.
    opts.command.clear();
    assert_eq!(command_line(&image(), &opts).unwrap(), ["/bin/sh"]);
    let empty = ImageDefaults::default();
    assert!(matches!(
        command_line(&empty, &RunOptions::default()),
        Err(Error::NoCommand)
    ));
}

#[test]
fn env_layers_image_defaults_then_user() {
    let mut opts = RunOptions {
        tty: true,
        ..Default::default()
    };
    opts.env.push(("FOO".into(), "user".into()));
    let env = environment(&image(), &opts, "host1");
    assert_eq!(
        env,
        [
            "PATH=/custom/bin",
            "FOO=user",
            "HOSTNAME=host1",
            "TERM=xterm"
        ]
    );
    let env = environment(&ImageDefaults::default(), &RunOptions::default(), "h");
    assert_eq!(env[0], format!("PATH={}", defaults::DEFAULT_PATH));
}

#[test]
fn spec_has_namespaces_mounts_caps_and_limits() {
    let dir = testkit::scratch_dir();
    let opts = RunOptions {
        hostname: Some("web".into()),
        workdir: Some("/w".into()),
        cap_add: vec!["net_admin".into()],
        cap_drop: vec!["CAP_MKNOD".into()],
        volumes: vec![parse_volume(&format!("{}:/data:ro", dir.path().display())).unwrap()],
        resources: Resources {
            cpu_period: Some(100_000),
            cpu_quota: Some(20_000),
            memory: Some(32 << 20),
            pids_limit: Some(16),
            ..Default::default()
        },
        ..Default::default()
    };
    let spec = build_spec(&image(), &opts, &ctx()).unwrap();
    assert_eq!(spec.hostname().as_deref(), Some("web"));
    let process = spec.process().as_ref().unwrap();
    assert_eq!(process.cwd().to_str(), Some("/w"));
    let json = serde_json::to_value(&spec).unwrap();
    let caps = json["process"]["capabilities"]["effective"]
        .as_array()
        .unwrap();
    assert!(caps.contains(&json!("CAP_NET_ADMIN")));
    assert!(!caps.contains(&json!("CAP_MKNOD")));
    assert!(!caps.contains(&json!("CAP_SYS_ADMIN")));
    let ns: Vec<&str> = json["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert_eq!(ns, ["pid", "ipc", "uts", "mount", "network"]);
    assert_eq!(json["linux"]["resources"]["cpu"]["quota"], 20_000);
    assert_eq!(json["linux"]["resources"]["memory"]["limit"], 32 << 20);
    assert_eq!(json["linux"]["resources"]["pids"]["limit"], 16);
    assert_eq!(json["linux"]["cgroupsPath"], "/bosun/0123456789abcdef0123");
    let data = json["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/data")
        .unwrap();
    assert!(data["options"].as_array().unwrap().contains(&json!("ro")));
    assert!(json["linux"]["maskedPaths"]
        .as_array()
        .unwrap()
        .contains(&json!("/proc/kcore")));
    assert_eq!(json["process"]["noNewPrivileges"], true);
}

#[test]
fn default_hostname_is_short_id_and_host_network_has_no_netns() {
    let mut c = ctx();
    c.network = Network::Host;
    let spec = build_spec(&image(), &RunOptions::default(), &c).unwrap();
    assert_eq!(spec.hostname().as_deref(), Some("0123456789ab"));
    let json = serde_json::to_value(&spec).unwrap();
    assert!(!json["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["type"] == "network"));
}

#[test]
fn privileged_gets_every_capability_and_no_masks() {
    let opts = RunOptions {
        privileged: true,
        ..Default::default()
    };
    let json = serde_json::to_value(build_spec(&image(), &opts, &ctx()).unwrap()).unwrap();
    let caps = json["process"]["capabilities"]["bounding"]
        .as_array()
        .unwrap();
    assert!(caps.contains(&json!("CAP_SYS_ADMIN")));
    assert!(json["linux"]["maskedPaths"]
        .as_array()
        .is_none_or(|m| m.is_empty()));
}

#[test]
fn cap_drop_all_leaves_only_added() {
    let opts = RunOptions {
        cap_drop: vec!["ALL".into()],
        cap_add: vec!["CHOWN".into()],
        ..Default::default()
    };
    let json = serde_json::to_value(build_spec(&image(), &opts, &ctx()).unwrap()).unwrap();
    assert_eq!(
        json["process"]["capabilities"]["effective"],
        json!(["CAP_CHOWN"])
    );
}

#[test]
fn init_runs_the_command_behind_docker_init() {
    let opts = RunOptions {
        init: true,
        command: vec!["sleep".into(), "1".into()],
        ..Default::default()
    };
    assert_eq!(
        process_args(&image(), &opts).unwrap(),
        ["/sbin/docker-init", "--", "/entry", "sleep", "1"]
    );
    let json = serde_json::to_value(build_spec(&image(), &opts, &ctx()).unwrap()).unwrap();
    let init = json["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/sbin/docker-init")
        .unwrap();
    assert_eq!(init["source"], defaults::INIT_BINARY);
    assert!(init["options"].as_array().unwrap().contains(&json!("ro")));
}
