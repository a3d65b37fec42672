//! Reading and writing cgroup files with errors that name the file and value.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;
use std::str::FromStr;

use crate::{Error, Result};

/// Writes `value` to `dir/file` (no newline: the kernel parses the write).
/// Makes one cgroup directory; one that already exists is fine.
pub(crate) fn mkdir(dir: &Path) -> Result<()> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(Error::Create {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

pub(crate) fn write(dir: &Path, file: &str, value: impl ToString) -> Result<()> {
    let path = dir.join(file);
    let value = value.to_string();
    tracing::trace!(path = %path.display(), value = %value, "cgroup write");
    fs::write(&path, &value).map_err(|source| Error::Write {
        path,
        value,
        source,
    })
}

/// Reads `dir/file` whole.
pub(crate) fn read(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    fs::read_to_string(&path).map_err(|source| Error::Read { path, source })
}

/// Reads `dir/file`, or `None` when the file does not exist (an older kernel,
/// a controller that is not enabled, or a cgroup removed meanwhile: ENODEV).
pub(crate) fn read_opt(dir: &Path, file: &str) -> Result<Option<String>> {
    let path = dir.join(file);
    match fs::read_to_string(&path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) if e.raw_os_error() == Some(nix::libc::ENODEV) => Ok(None),
        Err(source) => Err(Error::Read { path, source }),
    }
}

/// Parses `value` read from `dir/file` as a number.
pub(crate) fn parse<T: FromStr>(dir: &Path, file: &str, value: &str) -> Result<T> {
    value.trim().parse().map_err(|_| Error::Parse {
        path: dir.join(file),
        value: value.trim().to_string(),
        expected: "a number",
    })
}

/// Reads a single number from `dir/file`.
pub(crate) fn read_u64(dir: &Path, file: &str) -> Result<u64> {
    let s = read(dir, file)?;
    parse(dir, file, &s)
}

/// Reads a number that may be `max` (v2) from `dir/file`; `max` is `None`.
pub(crate) fn read_max(dir: &Path, file: &str) -> Result<Option<u64>> {
    let s = read(dir, file)?;
    if s.trim() == "max" {
        return Ok(None);
    }
    parse(dir, file, &s).map(Some)
}

/// Looks `key` up in a flat keyed file (`key value` per line: memory.stat,
/// cpu.stat, memory.events, memory.oom_control).
pub(crate) fn keyed(dir: &Path, file: &str, text: &str, key: &str) -> Result<Option<u64>> {
    for line in text.lines() {
        let mut it = line.split_whitespace();
        if it.next() == Some(key) {
            let v = it.next().unwrap_or_default();
            return parse(dir, file, v).map(Some);
        }
    }
    Ok(None)
}

/// True when `dir/file` exists.
pub(crate) fn exists(dir: &Path, file: &str) -> bool {
    dir.join(file).exists()
}
