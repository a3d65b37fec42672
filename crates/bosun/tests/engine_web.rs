//! Acceptance 3, as root: a detached httpd on the default bridge network
//! with a published (ephemeral) port and a volume; the host fetches the
//! page, `logs` and `exec` work, and `stop` + `rm` leave no process, mount,
//! cgroup, veth or firewall rule behind.

mod engine_common;

use engine_common::{free_port, Env};
use std::io::{Read, Write};
use std::time::{Duration, Instant};
use testkit::{require_program, require_root};

fn http_get(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

fn firewall_rules() -> String {
    let mut text = String::new();
    for (prog, args) in [("iptables-save", vec![]), ("nft", vec!["list", "ruleset"])] {
        if let Ok(out) = std::process::Command::new(prog).args(&args).output() {
            text.push_str(&String::from_utf8_lossy(&out.stdout));
        }
    }
    text
}

#[test]
fn published_httpd_serves_a_volume_and_leaves_nothing() {
    require_root!();
    require_program!("iptables-save");
    let env = Env::new();
    let www = env.dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "<h1>hello from bosun</h1>\n").unwrap();
    let port = free_port();
    let name = testkit::unique_name();
    let publish = format!("{port}:80");
    let volume = format!("{}:/www", www.display());
    let id = env.ok(&[
        "run", "-d", "--name", &name, "-p", &publish, "-v", &volume, "busybox", "httpd", "-f",
        "-vv", "-p", "80", "-h", "/www",
    ]);
    let id = id.trim().to_string();
    let state = env.inspect(&name);
    let pid = state["State"]["Pid"].as_i64().unwrap();
    assert!(state["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .starts_with("10.88."));
    let iflink = env.ok(&["exec", &name, "cat", "/sys/class/net/eth0/iflink"]);
    let host_veth_index = iflink.trim().to_string();

    let deadline = Instant::now() + Duration::from_secs(60);
    let page = loop {
        match http_get(port) {
            Some(p) if p.contains("hello from bosun") => break p,
            other => assert!(Instant::now() < deadline, "no page: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        page.starts_with("HTTP/1.") && page.contains(" 200 "),
        "{page}"
    );
    assert_eq!(
        env.ok(&["exec", &name, "cat", "/www/index.html"]),
        "<h1>hello from bosun</h1>\n"
    );
    assert!(
        !env.ok(&["logs", &name]).is_empty() || !env.bosun(&["logs", &name]).stderr.is_empty(),
        "httpd -vv logs the request"
    );
    let ps = env.ok(&["ps"]);
    assert!(
        ps.contains(&name) && ps.contains(&format!("0.0.0.0:{port}->80/tcp")),
        "{ps}"
    );
    assert!(
        firewall_rules().contains(&id),
        "portmap rules name the container"
    );

    env.ok(&["stop", "-t", "2", &name]);
    env.ok(&["rm", &name]);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "httpd survived"
    );
    assert!(!std::path::Path::new(&format!("/sys/fs/cgroup/cpu/bosun/{id}")).exists());
    assert!(!std::path::Path::new(&format!("/sys/fs/cgroup/memory/bosun/{id}")).exists());
    let veth_left = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .any(|e| {
            std::fs::read_to_string(e.path().join("ifindex"))
                .is_ok_and(|i| i.trim() == host_veth_index)
        });
    assert!(
        !veth_left,
        "host veth (ifindex {host_veth_index}) left behind"
    );
    assert!(
        !firewall_rules().contains(&id),
        "firewall rules left behind"
    );
    env.assert_empty();
}
