//! Terminal presentation for the client commands: colours (only on a
//! terminal, never with NO_COLOR), aligned tables, statuses, short
//! one-line previews of JSON payloads, times and durations.

use std::io::{IsTerminal, Write};

use chrono::{DateTime, Utc};
use serde_json::Value;

/// Whether to colour, decided once per command from the real stdout (the
/// writer a command gets may be a buffer in tests; then it is not a
/// terminal either).
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub colour: bool,
}

#[derive(Debug, Clone, Copy)]
pub enum Tone {
    Good,
    Bad,
    Warn,
    Active,
    Dim,
    Bold,
}

impl Style {
    pub fn for_stdout() -> Self {
        Self {
            colour: std::io::stdout().is_terminal() && colours_allowed(),
        }
    }

    pub fn for_stderr() -> Self {
        Self {
            colour: std::io::stderr().is_terminal() && colours_allowed(),
        }
    }

    pub fn paint(&self, tone: Tone, text: &str) -> String {
        if !self.colour {
            return text.to_owned();
        }
        let code = match tone {
            Tone::Good => "32",
            Tone::Bad => "31",
            Tone::Warn => "33",
            Tone::Active => "36",
            Tone::Dim => "2",
            Tone::Bold => "1",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }
}

/// <https://no-color.org>: any non-empty NO_COLOR turns colours off.
fn colours_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The tone of an execution status.
pub fn status_tone(status: &str) -> Tone {
    match status {
        "SUCCEEDED" => Tone::Good,
        "FAILED" | "TIMED_OUT" => Tone::Bad,
        "ABORTED" => Tone::Warn,
        _ => Tone::Active,
    }
}

/// The tone of a history event type.
pub fn event_tone(event_type: &str) -> Option<Tone> {
    if event_type.ends_with("Failed") || event_type.ends_with("TimedOut") {
        Some(Tone::Bad)
    } else if event_type.ends_with("Aborted") {
        Some(Tone::Warn)
    } else if event_type == "ExecutionSucceeded" {
        Some(Tone::Good)
    } else {
        None
    }
}

/// A cell: its text, and how to paint it.
pub struct Cell {
    pub text: String,
    pub tone: Option<Tone>,
}

impl Cell {
    pub fn plain(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            tone: None,
        }
    }

    pub fn toned(text: impl Into<String>, tone: Tone) -> Self {
        Self {
            text: text.into(),
            tone: Some(tone),
        }
    }
}

/// Writes rows under a header, columns aligned on the text's width (in
/// characters, colours aside); the last column is not padded.
pub fn table(out: &mut dyn Write, style: Style, header: &[&str], rows: &[Vec<Cell>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.text.chars().count());
            }
        }
    }
    let line = |cells: Vec<(String, Option<Tone>)>| {
        let last = cells.len().saturating_sub(1);
        let mut text = String::new();
        for (i, (cell, tone)) in cells.into_iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            let painted = match tone {
                Some(tone) => style.paint(tone, &cell),
                None => cell,
            };
            text.push_str(&painted);
            if i < last {
                text.push_str(&" ".repeat(pad + 2));
            }
        }
        text
    };
    let head = header
        .iter()
        .map(|h| (h.to_string(), Some(Tone::Bold)))
        .collect();
    let _ = writeln!(out, "{}", line(head));
    for row in rows {
        let cells = row.iter().map(|c| (c.text.clone(), c.tone)).collect();
        let _ = writeln!(out, "{}", line(cells));
    }
}

/// A JSON value on one line, cut to `max` characters with an ellipsis.
pub fn preview(value: &Value, max: usize) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    shorten(&text, max)
}

pub fn shorten(text: &str, max: usize) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= max {
        return one_line;
    }
    let cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

pub fn parse_time(value: &Value) -> Option<DateTime<Utc>> {
    value
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// `2026-11-22 06:30:01` (UTC, as the server records it).
pub fn date_time(value: &Value) -> String {
    parse_time(value).map_or_else(
        || value.as_str().unwrap_or("").to_owned(),
        |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

/// `1.234s`, `2m05s`, `3h02m`.
pub fn duration(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let ms = (to - from).num_milliseconds().max(0);
    if ms < 60_000 {
        format!("{}.{:03}s", ms / 1000, ms % 1000)
    } else if ms < 3_600_000 {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    } else {
        format!("{}h{:02}m", ms / 3_600_000, (ms / 60_000) % 60)
    }
}

/// How long an execution ran (or has been running, against `now`).
pub fn execution_duration(execution: &Value, now: DateTime<Utc>) -> String {
    match parse_time(&execution["startDate"]) {
        Some(start) => duration(start, parse_time(&execution["stopDate"]).unwrap_or(now)),
        None => String::new(),
    }
}

/// Key-value lines (`key:` aligned), the keys dimmed on a terminal.
pub fn fields(out: &mut dyn Write, style: Style, rows: &[(&str, String)]) {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    for (key, value) in rows {
        let label = format!("{key}:");
        let _ = writeln!(
            out,
            "{}{} {value}",
            style.paint(Tone::Dim, &label),
            " ".repeat(width - label.len())
        );
    }
}

/// A JSON payload, pretty, indented under a heading.
pub fn block(out: &mut dyn Write, style: Style, heading: &str, value: &Value) {
    let _ = writeln!(out, "{}", style.paint(Tone::Bold, heading));
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    for line in text.lines() {
        let _ = writeln!(out, "  {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_on_characters_and_leave_the_last_column_alone() {
        let mut out = Vec::new();
        let rows = vec![
            vec![Cell::plain("été"), Cell::plain("x")],
            vec![Cell::plain("a"), Cell::toned("SUCCEEDED", Tone::Good)],
        ];
        table(
            &mut out,
            Style { colour: false },
            &["NAME", "STATUS"],
            &rows,
        );
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "NAME  STATUS\nété   x\na     SUCCEEDED\n"
        );
    }

    #[test]
    fn previews_are_one_short_line() {
        assert_eq!(preview(&serde_json::json!({"a": 1}), 20), r#"{"a":1}"#);
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("a\nb", 10), "a b");
    }
}
