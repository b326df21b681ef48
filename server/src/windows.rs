//! Execution windows as the operator writes them: `[[windows]]` in
//! stepline.toml and a trigger's `windows`/`outside` (docs/orchestration.md,
//! "Execution windows"). This parses `"Mon-Fri 01:00-05:00"` and friends and
//! computes, in a time zone with its daylight saving time, whether a window
//! is open and when the next opens: the engine's `Calendar`. Pure: no clock;
//! the caller says "at when".
//!
//! A window is an optional day list and a time range: `Mon-Fri 01:00-05:00`,
//! `Sat,Sun 00:00-24:00`, `22:00-02:00` (every day; past midnight it ends
//! the next morning, so `Fri 22:00-02:00` ends on Saturday), times with
//! seconds (`01:00:30-01:05`). The days are those the window opens on.
//! Wall times are read as schedules read them (`triggers::schedule::Zone`):
//! a time the clocks skip (spring forward) is taken an hour later, a time
//! they repeat (fall back) at its first occurrence.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use serde::Deserialize;
use stepline_runtime::windows::{Calendar, Outside, WindowRule};

use crate::triggers::Zone;

/// One `[[windows]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineWindows {
    /// The state machine's name.
    pub state_machine: String,
    /// When its executions may start (and, with `drain`, its tasks).
    pub windows: Vec<String>,
    /// The zone the windows are read in (default UTC).
    pub timezone: Option<String>,
    /// `hold` (the default), `refuse` or `alert`.
    pub outside: Option<String>,
    /// No task starts while the windows are closed (default false).
    #[serde(default)]
    pub drain: bool,
}

/// The most windows one rule may list.
pub const MAX_WINDOWS: usize = 64;

/// One window: the days it opens on (bit 0 is Monday) and its times, in
/// seconds from midnight; `end` may be 86400 (`24:00`), and an `end` not
/// after `start` ends the next day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    days: u8,
    start: u32,
    end: u32,
}

/// A rule's windows in their zone: the engine's [`Calendar`].
#[derive(Debug, Clone)]
pub struct Windows {
    windows: Vec<Window>,
    zone: Zone,
    /// As written, for messages.
    text: Vec<String>,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day(text: &str) -> Result<u32, String> {
    DAYS.iter()
        .position(|d| d.eq_ignore_ascii_case(text.trim()))
        .map(|i| i as u32)
        .ok_or_else(|| format!("'{text}' is not a day: use Mon, Tue, Wed, Thu, Fri, Sat or Sun"))
}

/// `Mon-Fri`, `Sat,Sun`, `Mon-Wed,Fri`; a range may wrap (`Fri-Mon`).
fn parse_days(text: &str) -> Result<u8, String> {
    let mut bits = 0u8;
    for part in text.split(',') {
        match part.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (day(from)?, day(to)?);
                let mut d = from;
                loop {
                    bits |= 1 << d;
                    if d == to {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => bits |= 1 << day(part)?,
        }
    }
    Ok(bits)
}

/// `HH:MM` or `HH:MM:SS`, 24-hour; `24:00` only where `end` is asked.
fn parse_time(text: &str, end: bool) -> Result<u32, String> {
    let bad = || format!("'{text}' is not a time of day like 01:00 or 01:00:30");
    let parts: Vec<&str> = text.split(':').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.len() != 2) {
        return Err(bad());
    }
    let mut values = [0u32; 3];
    for (i, p) in parts.iter().enumerate() {
        values[i] = p.parse().map_err(|_| bad())?;
    }
    let [h, m, s] = values;
    if h == 24 && m == 0 && s == 0 {
        return if end {
            Ok(86_400)
        } else {
            Err(format!(
                "'{text}': 24:00 ends a window; a window starts at 00:00"
            ))
        };
    }
    if h > 23 || m > 59 || s > 59 {
        return Err(bad());
    }
    Ok(h * 3600 + m * 60 + s)
}

fn parse_window(text: &str) -> Result<Window, String> {
    let trimmed = text.trim();
    let (days, times) = match trimmed.split_once(char::is_whitespace) {
        Some((days, times)) => (parse_days(days)?, times.trim()),
        None => (0x7f, trimmed),
    };
    let (start, end) = times
        .split_once('-')
        .ok_or_else(|| format!("'{times}' is not a time range like 01:00-05:00"))?;
    let (start, end) = (parse_time(start, false)?, parse_time(end, true)?);
    if start == end {
        return Err(format!(
            "'{times}' is empty: a window that lasts all day is 00:00-24:00"
        ));
    }
    Ok(Window { days, start, end })
}

impl Windows {
    /// Parses every window (each error names the window) in `zone`.
    pub fn parse(texts: &[String], zone: Zone) -> Result<Self, String> {
        if texts.is_empty() {
            return Err("give at least one window, like \"Mon-Fri 01:00-05:00\"".into());
        }
        if texts.len() > MAX_WINDOWS {
            return Err(format!("at most {MAX_WINDOWS} windows"));
        }
        let windows = texts
            .iter()
            .map(|t| parse_window(t).map_err(|e| format!("\"{t}\": {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            windows,
            zone,
            text: texts.to_vec(),
        })
    }

    /// The instant wall time `seconds` past midnight of `date` is: a time
    /// the clocks skip an hour later; a repeated one its first time for
    /// an opening, its second for a closing, so that a window covers both
    /// passes of an hour lived twice.
    fn instant(&self, date: NaiveDate, seconds: u32, closing: bool) -> Option<DateTime<Utc>> {
        let wall = date.and_time(NaiveTime::MIN) + Duration::seconds(i64::from(seconds));
        let at = |wall| match (self.zone, closing) {
            (Zone::Named(tz), true) => tz
                .from_local_datetime(&wall)
                .latest()
                .map(|t| t.with_timezone(&Utc)),
            _ => self.zone.instant(wall),
        };
        at(wall).or_else(|| at(wall + Duration::hours(1)))
    }

    /// The windows that open on the days around `t`, as instants, in
    /// order of opening.
    fn intervals(&self, t: DateTime<Utc>) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let today = self.zone.local(t).date();
        let mut out = Vec::new();
        for offset in -1..=8 {
            let date = today + Duration::days(offset);
            let weekday = date.weekday().num_days_from_monday();
            for w in &self.windows {
                if w.days & (1 << weekday) == 0 {
                    continue;
                }
                let end_date = if w.end <= w.start {
                    date + Duration::days(1)
                } else {
                    date
                };
                let (Some(open), Some(close)) = (
                    self.instant(date, w.start, false),
                    self.instant(end_date, w.end, true),
                ) else {
                    continue;
                };
                if close > open {
                    out.push((open, close));
                }
            }
        }
        out.sort();
        out
    }
}

impl Calendar for Windows {
    fn is_open(&self, t: DateTime<Utc>) -> bool {
        self.intervals(t)
            .iter()
            .any(|(open, close)| *open <= t && t < *close)
    }

    fn next_open(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.is_open(t) {
            return Some(t);
        }
        self.intervals(t)
            .into_iter()
            .map(|(open, _)| open)
            .find(|open| *open > t)
    }

    fn describe(&self) -> String {
        format!("{} ({})", self.text.join(", "), self.zone)
    }
}

/// `hold`, `refuse` or `alert`.
pub fn parse_outside(text: &str) -> Result<Outside, String> {
    match text {
        "hold" => Ok(Outside::Hold),
        "refuse" => Ok(Outside::Refuse),
        "alert" => Ok(Outside::Alert),
        other => Err(format!("'{other}' is not one of hold, refuse, alert")),
    }
}

/// A rule from its parts as written; errors name the field.
pub fn rule(
    windows: &[String],
    timezone: Option<&str>,
    outside: Option<&str>,
    drain: bool,
) -> Result<WindowRule, String> {
    let zone = Zone::parse(timezone.unwrap_or("UTC")).map_err(|e| format!("timezone: {e}"))?;
    let calendar = Windows::parse(windows, zone).map_err(|e| format!("windows: {e}"))?;
    let outside = outside
        .map(parse_outside)
        .transpose()
        .map_err(|e| format!("outside: {e}"))?
        .unwrap_or(Outside::Hold);
    Ok(WindowRule {
        calendar: Arc::new(calendar),
        outside,
        drain,
    })
}

impl MachineWindows {
    pub fn rule(&self) -> Result<WindowRule, String> {
        rule(
            &self.windows,
            self.timezone.as_deref(),
            self.outside.as_deref(),
            self.drain,
        )
    }
}

/// Checks `[[windows]]`; the error starts with the entry.
pub fn check(all: &[MachineWindows]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for (i, w) in all.iter().enumerate() {
        let at = format!("windows[{i}]");
        if w.state_machine.is_empty() || w.state_machine.contains(':') {
            return Err(format!(
                "{at}.state_machine: '{}' is not a state machine name",
                w.state_machine
            ));
        }
        if !seen.insert(w.state_machine.as_str()) {
            return Err(format!(
                "{at}.state_machine: '{}' is listed twice",
                w.state_machine
            ));
        }
        w.rule().map_err(|e| format!("{at}.{e}"))?;
    }
    Ok(())
}

/// The rules by state machine name, as the engine takes them.
pub fn rules(
    all: &[MachineWindows],
) -> Result<std::collections::HashMap<String, Arc<WindowRule>>, String> {
    all.iter()
        .map(|w| Ok((w.state_machine.clone(), Arc::new(w.rule()?))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn windows(list: &[&str], zone: &str) -> Windows {
        let texts: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
        Windows::parse(&texts, Zone::parse(zone).unwrap()).unwrap()
    }

    /// (instant, open?, next opening) for each case.
    fn check(w: &Windows, cases: &[(&str, bool, &str)]) {
        for (at, open, next) in cases {
            assert_eq!(w.is_open(t(at)), *open, "open at {at}");
            assert_eq!(
                w.next_open(t(at)).map(|n| n.to_rfc3339()),
                Some(t(next).to_rfc3339()),
                "next opening after {at}"
            );
        }
    }

    #[test]
    fn weekdays_in_utc() {
        // 2026-12-07 is a Monday.
        let w = windows(&["Mon-Fri 01:00-05:00"], "UTC");
        check(
            &w,
            &[
                ("2026-12-07T00:59:59Z", false, "2026-12-07T01:00:00Z"),
                ("2026-12-07T01:00:00Z", true, "2026-12-07T01:00:00Z"),
                ("2026-12-07T04:59:59Z", true, "2026-12-07T04:59:59Z"),
                ("2026-12-07T05:00:00Z", false, "2026-12-08T01:00:00Z"),
                // Friday evening: next on Monday.
                ("2026-12-11T06:00:00Z", false, "2026-12-14T01:00:00Z"),
                ("2026-12-13T12:00:00Z", false, "2026-12-14T01:00:00Z"),
            ],
        );
    }

    #[test]
    fn past_midnight_belongs_to_the_day_it_opens() {
        // Friday 22:00 to Saturday 02:00 only.
        let w = windows(&["Fri 22:00-02:00"], "UTC");
        check(
            &w,
            &[
                ("2026-12-11T21:00:00Z", false, "2026-12-11T22:00:00Z"),
                ("2026-12-11T23:30:00Z", true, "2026-12-11T23:30:00Z"),
                ("2026-12-12T01:59:00Z", true, "2026-12-12T01:59:00Z"),
                ("2026-12-12T02:00:00Z", false, "2026-12-18T22:00:00Z"),
                // Thursday night is not Friday's window.
                ("2026-12-11T01:00:00Z", false, "2026-12-11T22:00:00Z"),
            ],
        );
        let every = windows(&["22:00-02:00"], "UTC");
        assert!(every.is_open(t("2026-12-08T01:00:00Z")));
    }

    #[test]
    fn lists_whole_days_and_seconds() {
        let w = windows(
            &["Sat,Sun 00:00-24:00", "Mon-Wed,Fri 12:00:30-12:00:45"],
            "UTC",
        );
        check(
            &w,
            &[
                ("2026-12-12T00:00:00Z", true, "2026-12-12T00:00:00Z"),
                ("2026-12-13T23:59:59Z", true, "2026-12-13T23:59:59Z"),
                ("2026-12-14T00:00:00Z", false, "2026-12-14T12:00:30Z"),
                ("2026-12-14T12:00:44Z", true, "2026-12-14T12:00:44Z"),
                ("2026-12-14T12:00:45Z", false, "2026-12-15T12:00:30Z"),
                // Thursday has none.
                ("2026-12-17T00:00:00Z", false, "2026-12-18T12:00:30Z"),
            ],
        );
        // Windows that touch make one opening.
        let joined = windows(&["Sat 00:00-24:00", "Sun 00:00-12:00"], "UTC");
        assert!(joined.is_open(t("2026-12-12T23:59:59Z")));
        assert!(joined.is_open(t("2026-12-13T00:00:00Z")));
    }

    #[test]
    fn paris_across_daylight_saving_time() {
        // 2026-03-29: Paris goes from 02:00 CET to 03:00 CEST.
        let w = windows(&["01:00-05:00"], "Europe/Paris");
        check(
            &w,
            &[
                // The day before: 01:00 CET is 00:00Z.
                ("2026-03-27T23:00:00Z", false, "2026-03-28T00:00:00Z"),
                ("2026-03-28T03:59:59Z", true, "2026-03-28T03:59:59Z"),
                ("2026-03-28T04:00:00Z", false, "2026-03-29T00:00:00Z"),
                // That day the window is three hours long: it ends at
                // 05:00 CEST, 03:00Z.
                ("2026-03-29T02:59:59Z", true, "2026-03-29T02:59:59Z"),
                ("2026-03-29T03:00:00Z", false, "2026-03-29T23:00:00Z"),
                // The day after opens at 01:00 CEST, 23:00Z the day before.
                ("2026-03-30T02:30:00Z", true, "2026-03-30T02:30:00Z"),
            ],
        );
        // A window opening at a time the clocks skip opens an hour later.
        let skipped = windows(&["Sun 02:30-04:00"], "Europe/Paris");
        check(
            &skipped,
            &[("2026-03-28T12:00:00Z", false, "2026-03-29T01:30:00Z")],
        );
        // 2026-10-25: 03:00 CEST goes back to 02:00 CET; 02:00-03:00 is
        // lived twice, and the window covers both.
        let repeated = windows(&["Sun 02:00-03:00"], "Europe/Paris");
        check(
            &repeated,
            &[
                ("2026-10-24T12:00:00Z", false, "2026-10-25T00:00:00Z"),
                ("2026-10-25T00:30:00Z", true, "2026-10-25T00:30:00Z"),
                ("2026-10-25T01:30:00Z", true, "2026-10-25T01:30:00Z"),
                ("2026-10-25T02:00:00Z", false, "2026-11-01T01:00:00Z"),
            ],
        );
        // Ending inside the repeated hour: at its second pass.
        let inside = windows(&["Sun 01:00-02:30"], "Europe/Paris");
        check(
            &inside,
            &[
                ("2026-10-24T23:00:00Z", true, "2026-10-24T23:00:00Z"),
                // 02:15 CET, the second 02:15 of the night.
                ("2026-10-25T01:15:00Z", true, "2026-10-25T01:15:00Z"),
                ("2026-10-25T01:30:00Z", false, "2026-11-01T00:00:00Z"),
            ],
        );
    }

    #[test]
    fn mistakes_are_named() {
        let zone = Zone::utc();
        for (text, expected) in [
            ("Mon-Fri 1:00-05:00", "not a time of day"),
            ("Mon-Fri 01:00-25:00", "not a time of day"),
            ("Mon-Fri 01:00", "not a time range"),
            ("Moon 01:00-02:00", "not a day"),
            ("01:00-01:00", "is empty"),
            ("24:00-02:00", "24:00 ends a window"),
            ("Mon-Fri 01:60-02:00", "not a time of day"),
        ] {
            let err = Windows::parse(&[text.to_owned()], zone).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
            assert!(err.contains(text), "{text}: {err}");
        }
        assert!(
            Windows::parse(&[], zone)
                .unwrap_err()
                .contains("at least one")
        );
        assert!(
            rule(&["01:00-02:00".into()], Some("Mars/Olympus"), None, false)
                .unwrap_err()
                .starts_with("timezone:")
        );
        assert!(
            rule(&["01:00-02:00".into()], None, Some("wait"), false)
                .unwrap_err()
                .starts_with("outside:")
        );
    }

    #[test]
    fn describes_itself() {
        let w = windows(&["Mon-Fri 01:00-05:00"], "Europe/Paris");
        assert_eq!(w.describe(), "Mon-Fri 01:00-05:00 (Europe/Paris)");
    }
}
