//! Black-box tests of the command line itself: help, version, bad input.

use std::process::Command;

fn bosun(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bosun"))
        .args(args)
        .output()
        .expect("cannot run the bosun binary")
}

#[test]
fn version_prints_version_commit_and_kubernetes_api() {
    let out = bosun(&["version"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
    assert!(text.contains("git commit:"), "{text}");
    assert!(text.contains("v1.33"), "{text}");
}

#[test]
fn version_json_is_valid_json_shape() {
    let out = bosun(&["version", "-o", "json"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.trim().starts_with('{') && text.trim().ends_with('}'),
        "{text}"
    );
    assert!(text.contains("\"kubernetesVersion\":\"v1.33.0\""), "{text}");
}

#[test]
fn help_lists_existing_subcommands() {
    let out = bosun(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("version"), "{text}");
}

#[test]
fn unknown_subcommand_is_an_error_with_nonzero_exit() {
    let out = bosun(&["frobnicate"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("frobnicate"), "{err}");
}
