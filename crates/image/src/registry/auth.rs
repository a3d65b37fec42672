//! Answers a registry's `WWW-Authenticate` challenge: `Bearer` (fetch a token
//! from the realm for the service and scope, with credentials if we have
//! them) or `Basic` (send the credentials).

use crate::error::{Error, Result};
use std::collections::HashMap;

/// What to send on later requests.
#[derive(Clone)]
pub enum Auth {
    Bearer(String),
    Basic(String, String),
}

impl Auth {
    pub fn apply(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::Bearer(t) => req.bearer_auth(t),
            Auth::Basic(u, p) => req.basic_auth(u, Some(p)),
        }
    }
}

/// Obtains credentials that satisfy `challenge` (the header's value).
pub async fn answer(
    http: &reqwest::Client,
    url: &str,
    challenge: &str,
    creds: Option<&(String, String)>,
) -> Result<Auth> {
    let fail = |reason: String| Error::Auth {
        url: url.to_string(),
        reason,
    };
    let (scheme, params) = parse_challenge(challenge);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => creds
            .map(|(u, p)| Auth::Basic(u.clone(), p.clone()))
            .ok_or_else(|| fail("the registry wants a user name and password".into())),
        "bearer" => {
            let realm = params
                .get("realm")
                .ok_or_else(|| fail("bearer challenge without realm".into()))?;
            let token = fetch_token(http, realm, &params, creds)
                .await
                .map_err(fail)?;
            Ok(Auth::Bearer(token))
        }
        other => Err(fail(format!("unsupported auth scheme {other:?}"))),
    }
}

async fn fetch_token(
    http: &reqwest::Client,
    realm: &str,
    params: &HashMap<String, String>,
    creds: Option<&(String, String)>,
) -> std::result::Result<String, String> {
    let query: Vec<(&str, &str)> = ["service", "scope"]
        .iter()
        .filter_map(|k| params.get(*k).map(|v| (*k, v.as_str())))
        .collect();
    let mut req = http.get(realm).query(&query);
    if let Some((u, p)) = creds {
        req = req.basic_auth(u, Some(p));
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("token service {realm}: {}", super::describe(&e)))?;
    if !resp.status().is_success() {
        return Err(format!("token service {realm}: {}", resp.status()));
    }
    #[derive(serde::Deserialize)]
    struct TokenResponse {
        token: Option<String>,
        access_token: Option<String>,
    }
    let data = resp
        .bytes()
        .await
        .map_err(|e| format!("token service {realm}: {e}"))?;
    let body: TokenResponse =
        serde_json::from_slice(&data).map_err(|e| format!("token service {realm}: {e}"))?;
    body.token
        .or(body.access_token)
        .ok_or_else(|| format!("token service {realm}: no token in the answer"))
}

/// `Bearer realm="https://auth",service="reg",scope="repository:a:pull"` →
/// ("Bearer", {realm, service, scope}). Quoted values may contain commas.
pub fn parse_challenge(header: &str) -> (String, HashMap<String, String>) {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let value = if chars.peek() == Some(&'"') {
            chars.next();
            let mut v = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => v.extend(chars.next()),
                    '"' => break,
                    c => v.push(c),
                }
            }
            v
        } else {
            chars.by_ref().take_while(|c| *c != ',').collect()
        };
        params.insert(key.trim().to_ascii_lowercase(), value);
    }
    (scheme.to_string(), params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenges() {
        let (scheme, p) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        );
        assert_eq!(scheme, "Bearer");
        assert_eq!(p["realm"], "https://auth.docker.io/token");
        assert_eq!(p["service"], "registry.docker.io");
        assert_eq!(p["scope"], "repository:library/busybox:pull,push");
        let (scheme, p) = parse_challenge(r#"Basic realm="Registry Realm""#);
        assert_eq!(
            (scheme.as_str(), p["realm"].as_str()),
            ("Basic", "Registry Realm")
        );
    }
}
