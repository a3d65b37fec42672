//! `--format` for list commands, as Docker users write it: `json` (one object
//! per line), a Go-template-like `{{.Field}}` string, or `table …` for the same
//! with a header and aligned columns. Only field references are supported.

use std::collections::BTreeMap;

/// One row: field name → value.
pub type Fields = BTreeMap<&'static str, String>;

/// Renders `rows` with `format`; returns the lines to print.
pub fn render(format: &str, rows: &[Fields]) -> anyhow::Result<Vec<String>> {
    if format == "json" {
        return rows.iter().map(|r| Ok(serde_json::to_string(r)?)).collect();
    }
    let (table, template) = match format.strip_prefix("table") {
        Some(rest) => (true, rest.trim_start()),
        None => (false, format),
    };
    let template = template.replace("\\t", "\t").replace("\\n", "\n");
    let mut lines = Vec::new();
    if table {
        lines.push(expand(&template, &|name| header(name))?);
    }
    for row in rows {
        lines.push(expand(&template, &|name| row.get(name).cloned())?);
    }
    if table {
        return Ok(align(&lines));
    }
    Ok(lines)
}

/// Renders a template against a JSON document (`inspect --format`): `{{.A.B}}`
/// walks objects; strings print bare, lists as `[a b]`, others as JSON.
pub fn render_value(format: &str, doc: &serde_json::Value) -> anyhow::Result<String> {
    if format == "json" {
        return Ok(serde_json::to_string(doc)?);
    }
    let template = format.replace("\\t", "\t").replace("\\n", "\n");
    expand(&template, &|path| {
        let mut v = doc;
        for key in path.split('.').filter(|k| !k.is_empty()) {
            v = v.get(key)?;
        }
        Some(go_print(v))
    })
}

/// A JSON value the way Go's text/template prints it.
fn go_print(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "<nil>".into(),
        serde_json::Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(go_print).collect();
            format!("[{}]", inner.join(" "))
        }
        other => other.to_string(),
    }
}

/// `CreatedSince` → `CREATED SINCE`, as Docker's table headers read.
fn header(name: &str) -> Option<String> {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if i > 0 && c.is_uppercase() && name != "ID" {
            out.push(' ');
        }
        out.extend(c.to_uppercase());
    }
    Some(out)
}

/// Replaces every `{{.Name}}` (spaces allowed inside the braces).
fn expand(template: &str, lookup: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find("}}")
            .ok_or_else(|| anyhow::anyhow!("--format: unclosed {{{{ in {template:?}"))?;
        let inner = rest[start + 2..start + end].trim();
        let name = inner.strip_prefix('.').ok_or_else(|| {
            anyhow::anyhow!("--format: only {{{{.Field}}}} is supported, got {{{{{inner}}}}}")
        })?;
        let value =
            lookup(name).ok_or_else(|| anyhow::anyhow!("--format: unknown field .{name}"))?;
        out.push_str(&value);
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Pads tab-separated cells to the widest in each column (three spaces apart).
pub fn align(lines: &[String]) -> Vec<String> {
    let cells: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let cols = cells.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            cells
                .iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    cells
        .iter()
        .map(|row| {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<w$}", w = widths[c] + 3));
                }
            }
            line.trim_end().to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Fields {
        Fields::from([
            ("Repository", "busybox".into()),
            ("Tag", "latest".into()),
            ("ID", "abc".into()),
        ])
    }

    #[test]
    fn templates_json_and_tables() {
        let rows = [row()];
        assert_eq!(
            render("{{.Repository}}:{{ .Tag }}", &rows).unwrap(),
            ["busybox:latest"]
        );
        assert_eq!(
            render("json", &rows).unwrap(),
            [r#"{"ID":"abc","Repository":"busybox","Tag":"latest"}"#]
        );
        assert_eq!(
            render("table {{.Repository}}\\t{{.ID}}", &rows).unwrap(),
            ["REPOSITORY   ID", "busybox      abc"]
        );
        assert!(render("{{.Nope}}", &rows).is_err());
        assert!(render("{{json .}}", &rows).is_err());
    }

    #[test]
    fn inspect_templates_walk_the_document() {
        let doc = serde_json::json!({"Id": "sha256:x", "Config": {"Cmd": ["sh", "-c"]}, "Size": 5});
        assert_eq!(
            render_value("{{.Id}} {{.Config.Cmd}} {{.Size}}", &doc).unwrap(),
            "sha256:x [sh -c] 5"
        );
        assert!(render_value("{{.Config.Nope}}", &doc).is_err());
    }
}
