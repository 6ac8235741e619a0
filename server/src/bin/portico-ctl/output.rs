//! Tables for people. Scripts use `-o json`, which prints the API's answers as they are.

use serde_json::Value;

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Columns padded to their widest cell, the header first.
fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = vec![line(header.iter().map(|h| h.to_string()).collect())];
    out.extend(rows.into_iter().map(line));
    out.join("\n")
}

pub fn instances(items: &[Value]) -> String {
    if items.is_empty() {
        return "No instances.".into();
    }
    let rows = items
        .iter()
        .map(|i| {
            vec![
                text(&i["name"]),
                text(&i["environment_name"]),
                text(&i["status"]),
                text(&i["replicas"]),
                text(&i["plan_name"]),
                text(&i["id"]),
            ]
        })
        .collect();
    table(
        &["NAME", "ENVIRONMENT", "STATUS", "REPLICAS", "PLAN", "ID"],
        rows,
    )
}

pub fn instance(i: &Value) -> String {
    let r = &i["resources"];
    let mut out = vec![
        format!("Name:         {}", text(&i["name"])),
        format!("Id:           {}", text(&i["id"])),
        format!("Status:       {}", text(&i["status"])),
        format!(
            "Environment:  {} ({})",
            text(&i["environment_name"]),
            text(&i["region_name"])
        ),
        format!("Plan:         {}", text(&i["plan_name"])),
        format!(
            "Resources:    {} replicas, {} mCPU, {} MiB memory, {} GiB storage",
            text(&r["replicas"]),
            text(&r["cpu_millicores"]),
            text(&r["memory_mib"]),
            text(&r["storage_gib"])
        ),
    ];
    if let Some(reason) = i["status_reason"].as_str() {
        out.push(format!("Reason:       {reason}"));
    }
    for p in i["parameters"].as_array().into_iter().flatten() {
        out.push(format!("  {} = {}", text(&p["name"]), text(&p["value"])));
    }
    out.push("Actions:".into());
    for a in i["actions"].as_array().into_iter().flatten() {
        let state = match a["reason"].as_str() {
            Some(why) => format!("no: {why}"),
            None => "yes".into(),
        };
        out.push(format!("  {:<14} {state}", text(&a["operation"])));
    }
    out.join("\n")
}

/// One line: "stop 1f3c…: running (attempt 2): Draining connections (40%)".
pub fn progress(op: &Value) -> String {
    let mut s = format!(
        "{} {}: {}",
        text(&op["operation"]),
        text(&op["id"]),
        text(&op["state"])
    );
    if op["attempts"].as_u64().unwrap_or(0) > 1 {
        s += &format!(" (attempt {})", op["attempts"]);
    }
    match (
        op["progress_message"].as_str(),
        op["progress_percent"].as_u64(),
    ) {
        (Some(m), Some(p)) => s += &format!(": {m} ({p}%)"),
        (Some(m), None) => s += &format!(": {m}"),
        (None, Some(p)) => s += &format!(": {p}%"),
        (None, None) => {}
    }
    if let Some(e) = op["last_error"].as_str() {
        s += &format!(": {e}");
    }
    s
}

pub fn operation(op: &Value) -> String {
    format!(
        "{}\ninstance {} is {}",
        progress(op),
        text(&op["instance_id"]),
        text(&op["instance_status"])
    )
}

pub fn tenants(items: &[Value]) -> String {
    if items.is_empty() {
        return "No tenants.".into();
    }
    let rows = items
        .iter()
        .map(|t| {
            vec![
                text(&t["id"]),
                text(&t["name"]),
                text(&t["plan"]),
                if t["suspended"] == true {
                    "suspended".into()
                } else {
                    "active".into()
                },
            ]
        })
        .collect();
    table(&["ID", "NAME", "PLAN", "STATE"], rows)
}

pub fn audit(lines: &[Value]) -> String {
    if lines.is_empty() {
        return "No audit lines.".into();
    }
    let rows = lines
        .iter()
        .map(|l| {
            vec![
                text(&l["time"]),
                text(&l["actor"]),
                text(&l["operation"]),
                text(&l["instance"]),
                text(&l["outcome"]),
                text(&l["reason"]),
            ]
        })
        .collect();
    table(
        &[
            "TIME",
            "ACTOR",
            "OPERATION",
            "INSTANCE",
            "OUTCOME",
            "REASON",
        ],
        rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_line_up_their_columns() {
        let t = instances(&[
            json!({"name": "web", "environment_name": "Production", "status": "running",
                   "replicas": 3, "plan_name": "Pro", "id": "1"}),
            json!({"name": "staging-api", "environment_name": "Staging", "status": "stopped",
                   "replicas": 1, "plan_name": "Pro", "id": "2"}),
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        let col = lines[0].find("ENVIRONMENT").unwrap();
        assert_eq!(lines[1].find("Production"), Some(col));
        assert_eq!(lines[2].find("Staging"), Some(col));
    }

    #[test]
    fn progress_reads_as_one_line() {
        let op = json!({"operation": "stop", "id": "op-1", "state": "running", "attempts": 2,
                        "progress_message": "Draining", "progress_percent": 40});
        assert_eq!(
            progress(&op),
            "stop op-1: running (attempt 2): Draining (40%)"
        );
    }
}
