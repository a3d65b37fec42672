//! Turns a request path and query into what it asks for: a resource request
//! (group, version, resource, namespace, name, subresource, verb) or a
//! non-resource path, plus the decoded query parameters.

use crate::registry::{self, Resource};
use percent_encoding::percent_decode_str;
use std::collections::HashMap;

/// Decoded query parameters (the last value wins, except where a list is asked for).
#[derive(Debug, Default, Clone)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

fn decode(s: &str) -> String {
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        let pairs = raw
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (decode(k), decode(v)),
                None => (decode(p), String::new()),
            })
            .collect();
        Self { pairs }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated parameter (`command=a&command=b`).
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// `true`/`1` style booleans.
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    pub fn as_map(&self) -> HashMap<&str, &str> {
        self.pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

/// A request for a resource (or one of its subresources).
#[derive(Debug, Clone)]
pub struct ResourcePath {
    pub resource: &'static Resource,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// The legacy `/watch/` path prefix was used.
    pub watch_prefix: bool,
}

/// What a path names.
#[derive(Debug, Clone)]
pub enum Target {
    /// A served resource path.
    Resource(ResourcePath),
    /// `/api/v1/<unknown>` or `/apis/g/v/<unknown>`: a 404 for an unknown resource.
    UnknownResource,
    /// Everything else (`/version`, `/api`, `/apis/apps/v1`, …).
    Other,
}

/// Parses `/api/v1/...` and `/apis/<group>/<version>/...`.
pub fn parse(path: &str) -> Target {
    let segs: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] if !rest.is_empty() => ("", *v, rest),
        ["apis", g, v, rest @ ..] if !rest.is_empty() => (*g, *v, rest),
        _ => return Target::Other,
    };
    let (watch_prefix, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    match rest {
        ["namespaces", ns, plural, tail @ ..]
            if registry::find(group, version, plural).is_some() =>
        {
            finish(group, version, Some(ns), plural, tail, watch_prefix)
        }
        [plural, tail @ ..] => finish(group, version, None, plural, tail, watch_prefix),
        [] => Target::Other,
    }
}

fn finish(
    group: &str,
    version: &str,
    namespace: Option<&str>,
    plural: &str,
    rest: &[&str],
    watch_prefix: bool,
) -> Target {
    let Some(resource) = registry::find(group, version, plural) else {
        return Target::UnknownResource;
    };
    if rest.len() > 2 {
        return Target::UnknownResource;
    }
    Target::Resource(ResourcePath {
        resource,
        namespace: namespace.map(str::to_string),
        name: rest.first().map(|s| s.to_string()),
        subresource: rest.get(1).map(|s| s.to_string()),
        watch_prefix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(path: &str) -> ResourcePath {
        match parse(path) {
            Target::Resource(r) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn paths_name_resource_namespace_name_and_subresource() {
        let r = res("/api/v1/namespaces/default/pods/web/status");
        assert_eq!(r.resource.plural, "pods");
        assert_eq!(r.namespace.as_deref(), Some("default"));
        assert_eq!(r.name.as_deref(), Some("web"));
        assert_eq!(r.subresource.as_deref(), Some("status"));
        let ns = res("/api/v1/namespaces/kube-system");
        assert_eq!(ns.resource.plural, "namespaces");
        assert_eq!(ns.name.as_deref(), Some("kube-system"));
        let d = res("/apis/apps/v1/deployments");
        assert!(d.namespace.is_none() && d.name.is_none());
        assert!(res("/api/v1/watch/namespaces/a/pods").watch_prefix);
        assert!(matches!(parse("/api/v1/frobs"), Target::UnknownResource));
        assert!(matches!(parse("/apis/apps/v1"), Target::Other));
    }

    #[test]
    fn query_decodes_percent_and_plus() {
        let q = Query::parse(Some(
            "fieldSelector=metadata.name%3Dx&labelSelector=app+in+(a,b)&watch=1",
        ));
        assert_eq!(q.get("fieldSelector"), Some("metadata.name=x"));
        assert_eq!(q.get("labelSelector"), Some("app in (a,b)"));
        assert!(q.flag("watch"));
    }
}
