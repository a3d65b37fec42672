//! Flag parsing as Docker users type it, including the errors they expect.

use super::*;

#[test]
fn env_pairs_and_passthrough() {
    assert_eq!(
        parse_env("A=b=c").unwrap(),
        Some(("A".into(), "b=c".into()))
    );
    assert_eq!(
        parse_env("EMPTY=").unwrap(),
        Some(("EMPTY".into(), String::new()))
    );
    assert!(parse_env("=x").is_err());
    std::env::set_var("BOSUN_ENGINE_TEST_VAR", "v1");
    assert_eq!(
        parse_env("BOSUN_ENGINE_TEST_VAR").unwrap(),
        Some(("BOSUN_ENGINE_TEST_VAR".into(), "v1".into()))
    );
    assert_eq!(parse_env("BOSUN_ENGINE_TEST_UNSET_VAR").unwrap(), None);
}

#[test]
fn env_file_skips_comments_and_blanks() {
    let dir = testkit::scratch_dir();
    let path = dir.path().join("env");
    std::fs::write(&path, "# comment\n\nA=1\n  B=two words \n").unwrap();
    assert_eq!(
        parse_env_file(&path).unwrap(),
        vec![("A".into(), "1".into()), ("B".into(), "two words".into())]
    );
    let err = parse_env_file(&dir.path().join("missing")).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn volumes() {
    let dir = testkit::scratch_dir();
    let host = dir.path().to_str().unwrap();
    let v = parse_volume(&format!("{host}:/data:ro")).unwrap();
    assert_eq!(v.container, "/data");
    assert!(v.read_only);
    assert!(!parse_volume(&format!("{host}:/data")).unwrap().read_only);
    let err = parse_volume("/no/such/dir/bosun:/x").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid mount config: bind source path does not exist: /no/such/dir/bosun"
    );
    assert!(parse_volume(&format!("{host}:relative")).is_err());
    assert!(parse_volume(&format!("{host}:/x:rx"))
        .unwrap_err()
        .to_string()
        .contains("invalid mode"));
    assert!(parse_volume("named:/x").is_err());
}

#[test]
fn publish() {
    let p = parse_publish("8080:80").unwrap();
    assert_eq!(
        (p.host_port, p.container_port, p.protocol.as_str()),
        (8080, 80, "tcp")
    );
    let p = parse_publish("127.0.0.1:5353:53/udp").unwrap();
    assert_eq!(p.host_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(p.protocol, "udp");
    assert!(parse_publish("80").is_err());
    assert!(parse_publish("99999:80")
        .unwrap_err()
        .to_string()
        .contains("invalid port"));
    assert!(parse_publish("80:80/sctp").is_err());
}

#[test]
fn memory_sizes() {
    assert_eq!(parse_memory("32m").unwrap(), 32 << 20);
    assert_eq!(parse_memory("1G").unwrap(), 1 << 30);
    assert_eq!(parse_memory("64MB").unwrap(), 64 << 20);
    assert_eq!(parse_memory("10485760").unwrap(), 10 << 20);
    assert!(parse_memory("1k").unwrap_err().to_string().contains("6MB"));
    assert!(parse_memory("12q").is_err());
    assert!(parse_memory("m").is_err());
}

#[test]
fn cpus_to_quota() {
    assert_eq!(parse_cpus("0.2").unwrap(), (100_000, 20_000));
    assert_eq!(parse_cpus("1.5").unwrap(), (100_000, 150_000));
    assert!(parse_cpus("0").is_err());
    assert!(parse_cpus("-1").is_err());
    assert!(parse_cpus("abc").is_err());
}

#[test]
fn users() {
    assert_eq!(
        parse_user("1000").unwrap(),
        User {
            uid: 1000,
            gid: None
        }
    );
    assert_eq!(
        parse_user("1000:100").unwrap(),
        User {
            uid: 1000,
            gid: Some(100)
        }
    );
    assert!(parse_user("nobody").is_err());
}
