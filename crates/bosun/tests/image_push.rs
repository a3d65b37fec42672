//! Pushing images (ours and skopeo's) and pulling them back: a round trip read
//! by skopeo, zstd layers written by skopeo, basic auth against Debian's
//! docker-registry with an htpasswd file, and bearer tokens from a token realm.

mod common;

use common::token_proxy::TokenProxy;
use common::{fails, ok, setup, three_layer_layout, Registry};
use std::fs;
use std::path::Path;

use std::process::Command;
use testkit::{require_root, scratch_dir, Cleanup};

#[test]
fn push_then_pull_round_trips_and_skopeo_reads_what_we_pushed() {
    require_root!();
    let Some((tmp, _cleanup, reg)) = setup() else {
        return;
    };
    let store = tmp.path().join("store");
    let layout = three_layer_layout(tmp.path()).display().to_string();
    ok(&store, &["image", "import", &layout, "local/three:a"]);
    let dest = format!("{}/pushed/three:1", reg.addr);
    let out = ok(&store, &["image", "push", "local/three:a", &dest]);
    assert_eq!(
        out.matches(": Pushed").count(),
        4,
        "3 layers + config: {out}"
    );
    assert!(out.contains("1: digest: sha256:"), "{out}");
    let again = ok(&store, &["push", "local/three:a", &dest]);
    assert_eq!(again.matches("Layer already exists").count(), 4, "{again}");

    let peer = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", &format!("docker://{dest}")])
        .output()
        .unwrap();
    assert!(
        peer.status.success(),
        "{}",
        String::from_utf8_lossy(&peer.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&peer.stdout).unwrap();
    assert_eq!(info["Layers"].as_array().unwrap().len(), 3);

    let other = tmp.path().join("other");
    ok(&other, &["pull", &dest]);
    let id = |root: &Path, name: &str| {
        let v: serde_json::Value =
            serde_json::from_str(&ok(root, &["image", "inspect", name])).unwrap();
        v[0]["Id"].as_str().unwrap().to_string()
    };
    assert_eq!(id(&other, &dest), id(&store, "local/three:a"));

    // save as a tar, then `image load -i` it elsewhere: same image.
    let archive = tmp.path().join("three.tar").display().to_string();
    ok(&store, &["image", "save", "local/three:a", &archive]);
    let third = tmp.path().join("third");
    let out = ok(&third, &["image", "load", "-i", &archive]);
    assert_eq!(out.trim(), "Loaded image: local/three:a");
    assert_eq!(id(&third, "local/three:a"), id(&store, "local/three:a"));

    // save to stdout piped into load from stdin, as `docker save | docker load`.
    let fourth = tmp.path().join("fourth");
    let bosun = env!("CARGO_BIN_EXE_bosun");
    let pipeline = format!(
        "{bosun} --root {} image save local/three:a - | {bosun} --root {} image load",
        store.display(),
        fourth.display()
    );
    let out = Command::new("sh").args(["-c", &pipeline]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Loaded image: local/three:a"
    );
    assert_eq!(id(&fourth, "local/three:a"), id(&store, "local/three:a"));
    assert_eq!(fs::read_dir(fourth.join("image/tmp")).unwrap().count(), 0);
}

#[test]
fn zstd_layers_pushed_by_skopeo_pull_and_unpack() {
    require_root!();
    let Some((tmp, _cleanup, reg)) = setup() else {
        return;
    };
    let layout = three_layer_layout(tmp.path());
    let out = Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--dest-compress-format=zstd",
            "--dest-compress",
        ])
        .arg(format!("oci:{}:a", layout.display()))
        .arg(format!("docker://{}/zstd:a", reg.addr))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = tmp.path().join("store");
    ok(&store, &["pull", &format!("{}/zstd:a", reg.addr)]);
    let images = image::ImageStore::open(&store).unwrap();
    let img = images.get(&format!("{}/zstd:a", reg.addr)).unwrap();
    let media: Vec<&str> = img
        .manifest
        .layers
        .iter()
        .map(|l| l.media_type.as_str())
        .collect();
    assert!(
        media.iter().all(|m| m.ends_with("zstd")),
        "skopeo did not write zstd: {media:?}"
    );
    let top = images.layout().layer(&img.diff_ids()[2]).join("fs/d/a");
    assert_eq!(fs::metadata(top).unwrap().len(), 100_000);
}

/// A bcrypt htpasswd line made with Python's crypt module (Debian's python3).
fn htpasswd_line(user: &str, password: &str) -> Option<String> {
    let script = format!(
        "import crypt; print('{user}:' + crypt.crypt('{password}', crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))"
    );
    let out = Command::new("python3")
        .args(["-W", "ignore", "-c", &script])
        .output()
        .ok()?;
    let line = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && line.contains("$2")).then(|| line.trim().to_string())
}

#[test]
fn basic_auth_registries_take_user_credentials_for_push_and_pull() {
    require_root!();
    if !testkit::on_path("docker-registry") || !testkit::on_path("skopeo") {
        eprintln!("skipped: docker-registry and skopeo are needed");
        return;
    }
    let Some(line) = htpasswd_line("alice", "s3cret") else {
        eprintln!("skipped: python3's crypt module cannot make a bcrypt hash");
        return;
    };
    let tmp = scratch_dir();
    let htpasswd = tmp.path().join("htpasswd");
    fs::write(&htpasswd, line + "\n").unwrap();
    let mut cleanup = Cleanup::new();
    let extra = format!(
        "auth:\n  htpasswd:\n    realm: bosun-test\n    path: {}\n",
        htpasswd.display()
    );
    let reg = Registry::start_with(tmp.path(), &mut cleanup, &extra);

    let store = tmp.path().join("store");
    let layout = three_layer_layout(tmp.path()).display().to_string();
    ok(&store, &["image", "import", &layout, "local/three:a"]);
    let dest = format!("{}/private/three:a", reg.addr);
    let err = fails(&store, &["image", "push", "local/three:a", &dest]);
    assert!(err.contains("authentication failed"), "{err}");
    ok(
        &store,
        &[
            "image",
            "push",
            "--user",
            "alice:s3cret",
            "local/three:a",
            &dest,
        ],
    );

    let other = tmp.path().join("other");
    let err = fails(&other, &["pull", "--user", "alice:wrong", &dest]);
    assert!(err.contains("401"), "{err}");
    ok(&other, &["pull", "--user", "alice:s3cret", &dest]);
    assert!(ok(&other, &["images", "-q"]).trim().len() == 12);
}

#[test]
fn bearer_token_challenges_are_answered_from_the_realm() {
    require_root!();
    let Some((tmp, mut cleanup, reg)) = setup() else {
        return;
    };
    // "alice:s3cret" in base64: the token service wants it when asked to.
    let open = TokenProxy::start(&reg.addr, None, &mut cleanup);
    let guarded = TokenProxy::start(&reg.addr, Some("YWxpY2U6czNjcmV0"), &mut cleanup);
    let store = tmp.path().join("store");
    let layout = three_layer_layout(tmp.path()).display().to_string();
    ok(&store, &["image", "import", &layout, "local/three:a"]);

    ok(
        &store,
        &[
            "image",
            "push",
            "local/three:a",
            &format!("{}/tok/three:a", open.addr),
        ],
    );
    let other = tmp.path().join("other");
    ok(&other, &["pull", &format!("{}/tok/three:a", open.addr)]);
    let scopes = open.scopes.lock().unwrap().clone();
    assert!(
        scopes.contains(&"repository:tok/three:pull,push".to_string()),
        "{scopes:?}"
    );
    assert!(
        scopes.contains(&"repository:tok/three:pull".to_string()),
        "{scopes:?}"
    );

    let third = tmp.path().join("third");
    let name = format!("{}/tok/three:a", guarded.addr);
    let err = fails(&third, &["pull", &name]);
    assert!(
        err.contains("authentication failed") && err.contains("token service"),
        "{err}"
    );
    ok(&third, &["pull", "--user", "alice:s3cret", &name]);
}

/// The host's first global IPv4 address (a registry there is not loopback,
/// so bosun speaks HTTPS to it).
fn host_ip() -> Option<String> {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let cidr = text
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)?;
    Some(cidr.split('/').next()?.to_string())
}

/// A CA and a server certificate for `ip`, made with openssl in `dir`.
fn make_certs(dir: &Path, ip: &str) -> bool {
    let script = format!(
        "set -e; cd {dir}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt -days 1 -subj /CN=bosun-test-ca
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key -out srv.csr -subj /CN=bosun-test-registry
printf 'subjectAltName=IP:{ip}\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > ext
openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out srv.crt -days 1 -extfile ext",
        dir = dir.display()
    );
    Command::new("sh")
        .args(["-c", &script])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn tls_registries_are_trusted_through_certs_d() {
    require_root!();
    if !testkit::on_path("docker-registry") || !testkit::on_path("openssl") {
        eprintln!("skipped: docker-registry and openssl are needed");
        return;
    }
    let Some(ip) = host_ip() else {
        eprintln!("skipped: no global IPv4 address to serve TLS on");
        return;
    };
    let tmp = scratch_dir();
    assert!(make_certs(tmp.path(), &ip), "openssl failed");
    let mut cleanup = Cleanup::new();
    let tls = format!(
        "  tls:\n    certificate: {}\n    key: {}\n",
        tmp.path().join("srv.crt").display(),
        tmp.path().join("srv.key").display()
    );
    let reg = Registry::start_on(tmp.path(), &mut cleanup, &ip, &tls);
    let store = tmp.path().join("store");
    let layout = three_layer_layout(tmp.path()).display().to_string();
    ok(&store, &["image", "import", &layout, "local/three:a"]);
    let dest = format!("{}/tls/three:a", reg.addr);

    let err = fails(&store, &["image", "push", "local/three:a", &dest]);
    assert!(
        err.contains("https://") && err.to_lowercase().contains("certificate"),
        "{err}"
    );
    for root in [&store, &tmp.path().join("other")] {
        let certs = root.join("certs.d").join(&reg.addr);
        fs::create_dir_all(&certs).unwrap();
        fs::copy(tmp.path().join("ca.crt"), certs.join("ca.crt")).unwrap();
    }
    ok(&store, &["image", "push", "local/three:a", &dest]);
    let out = ok(&tmp.path().join("other"), &["pull", &dest]);
    assert!(out.contains("Downloaded newer image"), "{out}");
}
