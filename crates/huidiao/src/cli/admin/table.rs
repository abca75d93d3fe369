//! How `huidiao admin` prints an answer's `data`: aligned tables for people, JSON for scripts,
//! bare ids with `-q`.

use serde_json::Value;

/// What kind of answer a command gets.
pub enum Shape {
    /// One object: shown as field/value lines.
    Object,
    /// A page of items: shown as a table of these columns.
    List(&'static [&'static str]),
    /// No data: this sentence says what was done.
    Done(String),
}

pub struct Output {
    pub json: bool,
    pub quiet: bool,
}

impl Output {
    pub fn print(&self, data: &Value, shape: &Shape) {
        let text = if self.json {
            match shape {
                Shape::Done(_) => String::new(),
                _ => format!("{data}\n"),
            }
        } else if self.quiet {
            ids(data, shape)
        } else {
            match shape {
                Shape::Object => object(data),
                Shape::List(columns) => list(data, columns),
                Shape::Done(sentence) => format!("{sentence}\n"),
            }
        };
        print!("{text}");
    }
}

/// The one value a script needs next: the token of a new token, else the id; a list's ids.
fn ids(data: &Value, shape: &Shape) -> String {
    let id = |item: &Value| {
        ["token", "id", "event_type"].iter().find_map(|key| item[*key].as_str()).map(|id| format!("{id}\n"))
    };
    match shape {
        Shape::Object => id(data).unwrap_or_default(),
        Shape::List(_) => items(data).iter().filter_map(id).collect(),
        Shape::Done(_) => String::new(),
    }
}

fn items(data: &Value) -> &[Value] {
    data["items"].as_array().map(Vec::as_slice).unwrap_or_default()
}

/// A value as a table cell: strings bare, absent as `-`, anything else as JSON.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(text) => text.clone(),
        Value::Array(values) if values.is_empty() => "-".into(),
        Value::Array(values) if values.iter().all(|v| !v.is_object() && !v.is_array()) => {
            values.iter().map(cell).collect::<Vec<_>>().join(", ")
        }
        other => other.to_string(),
    }
}

/// Rows under a header, each column as wide as its widest cell.
fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter().map(|r| r[i].chars().count()).chain([header[i].chars().count()]).max().unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    std::iter::once(line(header)).chain(rows.iter().map(|r| line(r))).collect()
}

/// A page as a table of `columns`, and how to get the next page.
fn list(data: &Value, columns: &[&str]) -> String {
    let items = items(data);
    if items.is_empty() {
        return "(none)\n".into();
    }
    let header: Vec<String> = columns.iter().map(|c| c.to_uppercase()).collect();
    let rows: Vec<Vec<String>> =
        items.iter().map(|item| columns.iter().map(|c| cell(&item[*c])).collect()).collect();
    let mut text = table(&header, &rows);
    if data["has_more"] == true {
        text += &format!("more: --page-token {}\n", cell(&data["next_page_token"]));
    }
    text
}

/// An object as field/value lines; a field holding a list of objects (a delivery's attempt log)
/// follows as its own table.
fn object(data: &Value) -> String {
    let Some(fields) = data.as_object() else { return format!("{}\n", cell(data)) };
    let (nested, plain): (Vec<_>, Vec<_>) =
        fields.iter().partition(|(_, v)| v.as_array().is_some_and(|a| a.iter().any(Value::is_object)));
    let rows: Vec<Vec<String>> = plain.iter().map(|(k, v)| vec![(*k).clone(), cell(v)]).collect();
    let mut text = table(&["FIELD".into(), "VALUE".into()], &rows);
    for (name, value) in nested {
        let entries = value.as_array().map(Vec::as_slice).unwrap_or_default();
        let mut columns: Vec<&str> = Vec::new();
        for key in entries.iter().filter_map(Value::as_object).flat_map(|e| e.keys()) {
            if !columns.contains(&key.as_str()) {
                columns.push(key);
            }
        }
        let header: Vec<String> = columns.iter().map(|c| c.to_uppercase()).collect();
        let rows: Vec<Vec<String>> =
            entries.iter().map(|e| columns.iter().map(|c| cell(&e[*c])).collect()).collect();
        text += &format!("\n{name}:\n{}", table(&header, &rows));
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn lists_align_their_columns_and_say_how_to_go_on() {
        let page = json!({"items": [{"id": "1", "name": "a"}, {"id": "22", "name": null}],
            "has_more": true, "next_page_token": "t0k"});
        assert_eq!(list(&page, &["id", "name"]), "ID  NAME\n1   a\n22  -\nmore: --page-token t0k\n");
        assert_eq!(ids(&page, &Shape::List(&["id"])), "1\n22\n");
    }

    #[test]
    fn objects_show_fields_and_their_nested_lists() {
        let delivery =
            json!({"id": "7", "attempt_log": [{"at": 1, "status_code": 500}, {"at": 2, "error": "x"}]});
        let text = object(&delivery);
        assert!(text.starts_with("FIELD  VALUE\nid     7\n"), "{text}");
        assert!(
            text.contains("attempt_log:\nAT  STATUS_CODE  ERROR\n1   500          -\n2   -            x\n"),
            "{text}"
        );
        assert_eq!(ids(&json!({"id": "9", "token": "pat_x"}), &Shape::Object), "pat_x\n");
    }
}
