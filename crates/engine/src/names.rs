//! Container ids (64 hex characters, like Docker's) and readable random
//! names (`adjective_noun`) for containers started without `--name`.

use std::io::Read;

const ADJECTIVES: &[&str] = &[
    "brave", "calm", "clever", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid",
    "merry", "nimble", "proud", "quiet", "rapid", "sharp", "steady", "swift", "tidy", "vivid",
    "witty", "zesty", "bold", "crisp",
];
const NOUNS: &[&str] = &[
    "anchor", "barge", "buoy", "cutter", "dinghy", "ferry", "galley", "harbor", "keel", "ketch",
    "mast", "oar", "pier", "rudder", "sail", "schooner", "skiff", "sloop", "tugboat", "wharf",
    "yawl", "dock", "hull", "deck",
];

/// `n` random bytes from the kernel.
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        if f.read_exact(&mut buf).is_ok() {
            return buf;
        }
    }
    // /dev/urandom is always there on Linux; fall back to time + pid mixing regardless.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
        ^ u128::from(std::process::id()) << 64;
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (seed >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(151);
    }
    buf
}

/// A new container id: 32 random bytes as 64 lowercase hex characters.
pub fn new_id() -> String {
    random_bytes::<32>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A random `adjective_noun` name.
pub fn random_name() -> String {
    let [a, b] = random_bytes::<2>();
    format!(
        "{}_{}",
        ADJECTIVES[usize::from(a) % ADJECTIVES.len()],
        NOUNS[usize::from(b) % NOUNS.len()]
    )
}

/// Docker's rule for names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex_and_distinct() {
        let (a, b) = (new_id(), new_id());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn names_follow_dockers_rule() {
        assert!(valid_name(&random_name()));
        assert!(valid_name("web"));
        assert!(valid_name("a.b-c_d"));
        assert!(!valid_name("w"));
        assert!(!valid_name("-web"));
        assert!(!valid_name("we b"));
        assert!(!valid_name(""));
    }
}
