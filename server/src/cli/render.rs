//! Terminal presentation for the client commands: colours (only on a
//! terminal, never with NO_COLOR), aligned tables, statuses, short
//! one-line previews of JSON payloads, times (labelled with their zone)
//! and the one duration format.

use std::io::{IsTerminal, Write};

use chrono::{DateTime, Local, Utc};
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

/// The clock times are shown in: UTC (the default, as the server records
/// them) or this machine's zone (`--local`). Every time printed says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Zone {
    #[default]
    Utc,
    Local,
}

impl Zone {
    /// `2026-12-07 17:52:03 UTC`, or `2026-12-07 18:52:03 +01:00` in
    /// local time (the offset in force at that moment).
    pub fn date_time(self, t: DateTime<Utc>) -> String {
        match self {
            Zone::Utc => t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            Zone::Local => t
                .with_timezone(&Local)
                .format("%Y-%m-%d %H:%M:%S %:z")
                .to_string(),
        }
    }

    /// [`Zone::date_time`] of an RFC 3339 string from the server; anything
    /// else as it is (empty for null).
    pub fn date_time_of(self, value: &Value) -> String {
        parse_time(value).map_or_else(
            || value.as_str().unwrap_or("").to_owned(),
            |t| self.date_time(t),
        )
    }

    /// `17:52:03.842`: a timeline's clock, whose column heading carries the
    /// zone ([`Zone::label`]).
    pub fn clock(self, t: DateTime<Utc>) -> String {
        match self {
            Zone::Utc => t.format("%H:%M:%S%.3f").to_string(),
            Zone::Local => t.with_timezone(&Local).format("%H:%M:%S%.3f").to_string(),
        }
    }

    /// `UTC`, or the local offset at `t` (`+01:00`).
    pub fn label(self, t: DateTime<Utc>) -> String {
        match self {
            Zone::Utc => "UTC".to_owned(),
            Zone::Local => t.with_timezone(&Local).format("%:z").to_string(),
        }
    }
}

/// THE duration format of stepline, for every duration the CLI prints
/// (and the one the web pages are to print; docs/cli.md, "Times and
/// durations"): the two largest units that matter, without spaces.
///
/// | length | written |
/// |---|---|
/// | under a minute | seconds with milliseconds: `0.004s`, `1.204s`, `59.999s` |
/// | under an hour | minutes and seconds: `3m34s`, `59m59s` |
/// | under a day | hours and minutes: `2h05m` |
/// | a day or more | days and hours: `3d07h` |
///
/// Each unit is cut, not rounded (`3m34.9s` is `3m34s`), so a duration
/// never shows more than has passed; a negative one is `0.000s`.
pub fn duration_ms(ms: i64) -> String {
    let ms = ms.max(0);
    const MINUTE: i64 = 60_000;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;
    if ms < MINUTE {
        format!("{}.{:03}s", ms / 1000, ms % 1000)
    } else if ms < HOUR {
        format!("{}m{:02}s", ms / MINUTE, (ms % MINUTE) / 1000)
    } else if ms < DAY {
        format!("{}h{:02}m", ms / HOUR, (ms % HOUR) / MINUTE)
    } else {
        format!("{}d{:02}h", ms / DAY, (ms % DAY) / HOUR)
    }
}

/// [`duration_ms`] from `from` to `to`.
pub fn duration(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    duration_ms((to - from).num_milliseconds())
}

/// [`duration_ms`] of a `std` duration (a clock on this side).
pub fn elapsed(d: std::time::Duration) -> String {
    duration_ms(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// How long an execution ran (or has been running, against `now`).
pub fn execution_duration(execution: &Value, now: DateTime<Utc>) -> String {
    match parse_time(&execution["startDate"]) {
        Some(start) => duration(start, parse_time(&execution["stopDate"]).unwrap_or(now)),
        None => String::new(),
    }
}

/// The stream a width is asked for.
#[derive(Debug, Clone, Copy)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How many columns a line on `stream` may take: `$COLUMNS` when set (a
/// script's or a test's choice wins), else the terminal's width, else
/// `None` (a pipe or a file: no width to fit).
pub fn width(stream: Stream) -> Option<usize> {
    if let Some(columns) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|c| *c > 0)
    {
        return Some(columns);
    }
    let size = match stream {
        Stream::Stdout => terminal_size::terminal_size_of(std::io::stdout()),
        Stream::Stderr => terminal_size::terminal_size_of(std::io::stderr()),
    };
    size.map(|(terminal_size::Width(w), _)| usize::from(w))
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

    #[test]
    fn durations_have_one_format() {
        let cases = [
            (-5, "0.000s"),
            (0, "0.000s"),
            (4, "0.004s"),
            (1_204, "1.204s"),
            (59_999, "59.999s"),
            (60_000, "1m00s"),
            (214_900, "3m34s"),
            (3_599_999, "59m59s"),
            (3_600_000, "1h00m"),
            (7_500_000, "2h05m"),
            (86_399_999, "23h59m"),
            (86_400_000, "1d00h"),
            (3 * 86_400_000 + 7 * 3_600_000 + 59 * 60_000, "3d07h"),
        ];
        for (ms, text) in cases {
            assert_eq!(duration_ms(ms), text, "{ms} ms");
        }
        assert_eq!(elapsed(std::time::Duration::from_millis(2_412)), "2.412s");
    }

    #[test]
    fn times_say_their_zone() {
        let t = DateTime::parse_from_rfc3339("2026-12-07T17:52:03.842Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(Zone::Utc.date_time(t), "2026-12-07 17:52:03 UTC");
        assert_eq!(Zone::Utc.clock(t), "17:52:03.842");
        assert_eq!(Zone::Utc.label(t), "UTC");
        let local = Zone::Local.date_time(t);
        let offset = Zone::Local.label(t);
        assert!(local.ends_with(&format!(" {offset}")), "{local}");
        assert!(
            offset.starts_with('+') || offset.starts_with('-'),
            "{offset}"
        );
        assert_eq!(
            Zone::Utc.date_time_of(&serde_json::json!("2026-12-07T17:52:03Z")),
            "2026-12-07 17:52:03 UTC"
        );
        assert_eq!(Zone::Utc.date_time_of(&Value::Null), "");
    }
}
