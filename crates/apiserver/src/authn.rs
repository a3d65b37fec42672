//! Authentication: who is calling. A client certificate signed by the cluster
//! CA (CN = user, O = groups) or a bearer token from the token file; anything
//! else is anonymous and gets 401.

use std::collections::HashMap;
use std::path::Path;
use tokio_rustls::rustls::pki_types::CertificateDer;

/// An authenticated user, as the authorizer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
}

impl User {
    fn new(name: impl Into<String>, mut groups: Vec<String>) -> Self {
        groups.push("system:authenticated".into());
        Self {
            name: name.into(),
            groups,
        }
    }
}

/// The user named by a verified client certificate (rustls already checked
/// the chain against the cluster CA).
pub fn from_certificate(cert: &CertificateDer<'_>) -> Option<User> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let subject = parsed.subject();
    let name = subject
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect();
    Some(User::new(name, groups))
}

/// Static bearer tokens: `token,user,uid[,"group1,group2"]` per line, as
/// kube-apiserver's `--token-auth-file`.
#[derive(Debug, Default, Clone)]
pub struct Tokens {
    by_token: HashMap<String, User>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read the token file {path}")]
pub struct TokenFileError {
    path: String,
    #[source]
    source: std::io::Error,
}

impl Tokens {
    /// Reads the token file; a missing file means no tokens.
    pub fn load(path: &Path) -> Result<Self, TokenFileError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(TokenFileError {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        Ok(Self::parse(&text))
    }

    pub fn parse(text: &str) -> Self {
        let mut by_token = HashMap::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.splitn(4, ',');
            let (Some(token), Some(user)) = (parts.next(), parts.next()) else {
                continue;
            };
            let _uid = parts.next();
            let groups = parts
                .next()
                .map(|g| {
                    g.trim_matches('"')
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            by_token.insert(token.to_string(), User::new(user, groups));
        }
        Self { by_token }
    }

    /// Adds a token (the `--token` join token).
    pub fn insert(&mut self, token: &str, user: &str, groups: Vec<String>) {
        self.by_token
            .insert(token.to_string(), User::new(user, groups));
    }

    /// The user for an `Authorization` header value, if it is a known bearer token.
    pub fn authenticate(&self, authorization: &str) -> Option<User> {
        let token = authorization.strip_prefix("Bearer ")?.trim();
        self.by_token.get(token).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_lines_map_to_users_and_groups() {
        let t = Tokens::parse("# comment\nabc,admin,1,\"system:masters,dev\"\nxyz,bob,2\n");
        let admin = t.authenticate("Bearer abc").unwrap();
        assert_eq!(admin.name, "admin");
        assert!(admin.groups.contains(&"system:masters".to_string()));
        assert_eq!(t.authenticate("Bearer xyz").unwrap().name, "bob");
        assert!(t.authenticate("Bearer nope").is_none());
        assert!(t.authenticate("Basic abc").is_none());
    }
}
