//! Selector tests with the selectors kubectl and controllers send.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn label_selector_operators_match_like_upstream() {
    let web = labels(&[("app", "web"), ("tier", "a"), ("version", "3")]);
    let db = labels(&[("app", "db"), ("canary", "true")]);
    let cases = [
        ("", true, true),
        ("app=web", true, false),
        ("app==web", true, false),
        ("app!=web", false, true),
        ("app in (a,web)", true, false),
        ("app in (a, b)", false, false),
        ("app notin (web)", false, true),
        ("canary", false, true),
        ("!canary", true, false),
        ("tier notin (a)", false, true),
        ("app=web,tier in (a,b),!canary", true, false),
        ("version>2", true, false),
        ("version<2", false, false),
        ("missing=", false, false),
        ("example.com/role!=x", true, true),
    ];
    for (sel, on_web, on_db) in cases {
        let s = LabelSelector::parse(sel).unwrap();
        assert_eq!(s.matches(&web), on_web, "{sel} on web");
        assert_eq!(s.matches(&db), on_db, "{sel} on db");
    }
}

#[test]
fn label_selector_errors_name_the_bad_token() {
    for (sel, token) in [
        ("app in a", "a"),
        ("app in (a", "end of input"),
        ("app=web,", "end of input"),
        ("a b", "b"),
        ("app=-bad-", "-bad-"),
        ("app==(x)", "("),
        ("=x", "="),
        ("version>x", "x"),
    ] {
        match LabelSelector::parse(sel) {
            Err(SelectorError::Syntax { token: t, .. }) => assert_eq!(t, token, "{sel}"),
            other => panic!("{sel}: {other:?}"),
        }
    }
}

#[test]
fn label_selector_object_converts_and_prints_sorted() {
    let obj = json!({
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "canary", "operator": "DoesNotExist"}
        ]
    });
    let s = LabelSelector::from_object(&obj).unwrap();
    assert_eq!(s.to_string(), "app=web,!canary,tier in (a,b)");
    let pod = json!({"metadata": {"labels": {"app": "web", "tier": "b"}}});
    assert!(s.matches_object(&pod));
    assert!(!s.matches_object(&json!({"metadata": {}})));
    assert_eq!(LabelSelector::parse(&s.to_string()).unwrap(), s);
    assert!(LabelSelector::from_object(&json!({})).unwrap().is_empty());
}

#[test]
fn label_selector_object_errors_name_the_field() {
    let bad = json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]});
    let err = LabelSelector::from_object(&bad).unwrap_err();
    assert!(
        err.to_string().contains("matchExpressions[0].values"),
        "{err}"
    );
    let bad = json!({"matchExpressions": [{"key": "a", "operator": "Near"}]});
    let err = LabelSelector::from_object(&bad).unwrap_err();
    assert!(
        err.to_string().contains("matchExpressions[0].operator"),
        "{err}"
    );
    let bad = json!({"matchLabels": {"app": 3}});
    assert!(LabelSelector::from_object(&bad)
        .unwrap_err()
        .to_string()
        .contains("matchLabels.app"));
}

#[test]
fn field_selectors_from_kubectl_match_objects() {
    let pod = json!({
        "metadata": {"name": "web-1", "namespace": "default"},
        "spec": {"nodeName": "n1"},
        "status": {"phase": "Running"}
    });
    let sel = FieldSelector::parse("spec.nodeName=n1,status.phase!=Failed").unwrap();
    assert!(sel.matches_object(&pod));
    assert!(!FieldSelector::parse("metadata.name==web-2")
        .unwrap()
        .matches_object(&pod));
    assert!(FieldSelector::parse("spec.nodeName!=")
        .unwrap()
        .matches_object(&pod));
    assert!(!FieldSelector::parse("spec.missing!=")
        .unwrap()
        .matches_object(&pod));
    assert!(FieldSelector::parse("").unwrap().is_empty());
    let describe =
        "involvedObject.name=web-1,involvedObject.namespace=default,involvedObject.uid=u-1";
    let sel = FieldSelector::parse(describe).unwrap();
    assert_eq!(sel.requirements.len(), 3);
    assert_eq!(sel.exact("involvedObject.uid"), Some("u-1"));
    assert_eq!(sel.to_string(), describe);
}

#[test]
fn field_selector_escapes_and_errors() {
    let sel = FieldSelector::parse(r"metadata.name=a\,b").unwrap();
    assert_eq!(sel.requirements[0].value, "a,b");
    assert_eq!(sel.to_string(), r"metadata.name=a\,b");
    match FieldSelector::parse("spec.nodeName") {
        Err(SelectorError::Syntax { token, .. }) => assert_eq!(token, "spec.nodeName"),
        other => panic!("{other:?}"),
    }
    assert!(FieldSelector::parse("=x").is_err());
}

#[test]
fn field_labels_are_checked_per_kind() {
    let sel = FieldSelector::parse("spec.nodeName=n1,status.phase=Running").unwrap();
    assert!(sel.check_supported("", "Pod").is_ok());
    let err = FieldSelector::parse("spec.replicas=1")
        .unwrap()
        .check_supported("apps", "Deployment")
        .unwrap_err();
    assert_eq!(err.to_string(), "field label not supported: spec.replicas");
    assert!(FieldSelector::parse("metadata.name=x")
        .unwrap()
        .check_supported("apps", "Deployment")
        .is_ok());
    let event = json!({"involvedObject": {"name": "web-1"}, "source": {"component": "kubelet"}});
    let sel = FieldSelector::parse("involvedObject.name=web-1,source=kubelet").unwrap();
    assert!(sel.check_supported("", "Event").is_ok());
    assert!(sel.matches_kind("", "Event", &event));
    assert!(
        !sel.matches_object(&event),
        "plain paths do not know the alias"
    );
    let node = json!({"spec": {"unschedulable": true}});
    assert!(FieldSelector::parse("spec.unschedulable=true")
        .unwrap()
        .matches_kind("", "Node", &node));
}
