//! Schedule expressions as EventBridge writes them: `rate(N unit)` and
//! `cron(minutes hours day-of-month month day-of-week year)`, and the slots
//! they define. Pure: no clock, no I/O; the caller says "after when".
//!
//! A schedule is read in a [`Zone`]: `UTC`, a fixed offset (`+02:00`), or
//! a named IANA zone (`Europe/Paris`) with its daylight saving time. In a
//! named zone, as EventBridge Scheduler does it:
//! - a cron slot whose wall time does not exist (the hour skipped when the
//!   clocks go forward) is skipped;
//! - a cron slot whose wall time happens twice (the hour repeated when the
//!   clocks go back) fires once, at its first occurrence;
//! - a rate counts elapsed time: `rate(1 day)` is every 24 hours, so its
//!   wall time moves by an hour with daylight saving time.
//!
//! `rate(...)` slots are anchored on the Unix epoch in the zone's standard
//! offset (`rate(5 minutes)` fires at :00, :05, ...; `rate(1 day)` at
//! midnight standard time), so every slot is a deterministic instant that a
//! restart computes again.

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, Offset, TimeZone,
    Timelike, Utc,
};
use chrono_tz::OffsetComponents;

/// The time zone a schedule is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// `UTC` or a fixed offset: every wall time exists exactly once.
    Fixed(FixedOffset),
    /// An IANA zone, with its daylight saving time rules.
    Named(chrono_tz::Tz),
}

impl Zone {
    /// `UTC`, `Z`, a fixed offset `+HH:MM` / `-HH:MM`, or an IANA zone name
    /// as the tz database spells it (`Europe/Paris`, `America/New_York`).
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.eq_ignore_ascii_case("utc") || text == "Z" || text.starts_with(['+', '-']) {
            return parse_offset(text).map(Zone::Fixed);
        }
        text.parse::<chrono_tz::Tz>().map(Zone::Named).map_err(|_| {
            format!(
                "'{text}' is not a time zone: use UTC, a fixed offset like +02:00, or an IANA zone name like Europe/Paris (spelled as the tz database does, case included)"
            )
        })
    }

    /// The UTC zone.
    pub fn utc() -> Self {
        Zone::Fixed(Utc.fix())
    }

    /// The wall time at instant `t`.
    pub(crate) fn local(&self, t: DateTime<Utc>) -> NaiveDateTime {
        match self {
            Zone::Fixed(offset) => t.with_timezone(offset).naive_local(),
            Zone::Named(tz) => t.with_timezone(tz).naive_local(),
        }
    }

    /// The instant of wall time `local`: `None` when the clocks skip it,
    /// the first of the two when they repeat it.
    pub(crate) fn instant(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self {
            Zone::Fixed(offset) => offset
                .from_local_datetime(&local)
                .earliest()
                .map(|t| t.with_timezone(&Utc)),
            Zone::Named(tz) => tz
                .from_local_datetime(&local)
                .earliest()
                .map(|t| t.with_timezone(&Utc)),
        }
    }

    /// The first instant strictly after `t` whose wall time here is
    /// `time` (a schedule slot's `finished_by`); on a day the clocks skip
    /// that time, an hour later.
    pub fn next_wall_time(&self, t: DateTime<Utc>, time: chrono::NaiveTime) -> DateTime<Utc> {
        let mut date = self.local(t).date();
        for _ in 0..4 {
            let wall = date.and_time(time);
            let at = self
                .instant(wall)
                .or_else(|| self.instant(wall + Duration::hours(1)));
            if let Some(at) = at.filter(|at| *at > t) {
                return at;
            }
            date = date.succ_opt().unwrap_or(date);
        }
        t + Duration::days(1)
    }

    /// The offset rates are anchored on at instant `t`, in seconds: the
    /// fixed offset, or the named zone's standard offset (without daylight
    /// saving time), so that rate slots keep their elapsed-time rhythm
    /// across the clock changes.
    fn rate_offset(&self, t: DateTime<Utc>) -> i64 {
        match self {
            Zone::Fixed(offset) => offset.local_minus_utc().into(),
            Zone::Named(tz) => tz
                .offset_from_utc_datetime(&t.naive_utc())
                .base_utc_offset()
                .num_seconds(),
        }
    }
}

impl std::fmt::Display for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Zone::Fixed(offset) if offset.local_minus_utc() == 0 => f.write_str("UTC"),
            Zone::Fixed(offset) => write!(f, "{offset}"),
            Zone::Named(tz) => f.write_str(tz.name()),
        }
    }
}

/// A parsed schedule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Every `seconds`, anchored on the epoch.
    Rate {
        seconds: i64,
    },
    Cron(Box<Cron>),
}

/// The last year a cron expression can name (EventBridge's bound).
const LAST_YEAR: i32 = 2199;
const FIRST_YEAR: i32 = 1970;

/// A compiled `cron(...)` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    months: u16,
    /// Bit `y - 1970` for every allowed year.
    years: [u64; 4],
    days: Days,
}

/// The day fields: EventBridge allows one of day-of-month and day-of-week,
/// the other being `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Days {
    Month(Vec<MonthDay>),
    Week(Vec<WeekDay>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum MonthDay {
    /// Bits 1..=31.
    Set(u32),
    /// `L`: the last day of the month.
    Last,
    /// `nW`: the weekday (Monday to Friday) nearest day n, in the month.
    NearestWeekday(u32),
    /// `LW`: the last weekday of the month.
    LastWeekday,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum WeekDay {
    /// Bits 1..=7, 1 being Sunday (EventBridge's numbering).
    Set(u8),
    /// `nL`: the last day n of the month.
    Last(u32),
    /// `n#k`: the k-th day n of the month.
    Nth(u32, u32),
}

impl Schedule {
    /// Parses `rate(...)` or `cron(...)`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Some(inner) = text.strip_prefix("rate(").and_then(|t| t.strip_suffix(')')) {
            return parse_rate(inner);
        }
        if let Some(inner) = text.strip_prefix("cron(").and_then(|t| t.strip_suffix(')')) {
            return Cron::parse(inner).map(|c| Schedule::Cron(Box::new(c)));
        }
        Err(format!(
            "'{text}' is not a schedule expression: expected rate(N unit) or cron(minutes hours day-of-month month day-of-week year)"
        ))
    }

    /// The first slot strictly after `after`, read in `zone`; `None` when
    /// there is none (a cron expression whose years are over).
    pub fn next_after(&self, after: DateTime<Utc>, zone: Zone) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Rate { seconds } => {
                let offset = zone.rate_offset(after);
                let local = after.timestamp().checked_add(offset)?;
                let k = local.div_euclid(*seconds) + 1;
                let slot_local = k.checked_mul(*seconds)?;
                DateTime::from_timestamp(slot_local - offset, 0)
            }
            Schedule::Cron(cron) => cron.next_after(after, zone),
        }
    }

    /// The slots in `(from, to]`, at most `limit` of them, earliest first.
    pub fn slots(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        zone: Zone,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut at = from;
        while out.len() < limit {
            match self.next_after(at, zone) {
                Some(next) if next <= to => {
                    out.push(next);
                    at = next;
                }
                _ => break,
            }
        }
        out
    }
}

fn parse_rate(inner: &str) -> Result<Schedule, String> {
    let bad = || {
        format!(
            "'rate({inner})' is not a rate: expected rate(N unit) with N a positive integer and unit minute(s), hour(s) or day(s) (singular for 1)"
        )
    };
    let mut parts = inner.split_whitespace();
    let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let n: i64 = n.parse().map_err(|_| bad())?;
    if n <= 0 || n > 1_000_000 {
        return Err(bad());
    }
    let (unit_seconds, singular) = match unit {
        "minute" => (60, true),
        "minutes" => (60, false),
        "hour" => (3600, true),
        "hours" => (3600, false),
        "day" => (86_400, true),
        "days" => (86_400, false),
        _ => return Err(bad()),
    };
    // EventBridge: "rate(1 minute)", "rate(5 minutes)"; nothing else.
    if singular != (n == 1) {
        return Err(bad());
    }
    Ok(Schedule::Rate {
        seconds: n * unit_seconds,
    })
}

/// A fixed offset: `UTC`, `Z`, or `+HH:MM` / `-HH:MM`.
fn parse_offset(text: &str) -> Result<FixedOffset, String> {
    let bad = || {
        format!(
            "'{text}' is not a time zone: use UTC, a fixed offset like +02:00, or an IANA zone name like Europe/Paris"
        )
    };
    if text.eq_ignore_ascii_case("utc") || text == "Z" {
        return FixedOffset::east_opt(0).ok_or_else(bad);
    }
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'+') => (1, &text[1..]),
        Some(b'-') => (-1, &text[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: i32 = h.parse().map_err(|_| bad())?;
    let m: i32 = m.parse().map_err(|_| bad())?;
    if h > 14 || m > 59 {
        return Err(bad());
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60)).ok_or_else(bad)
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// One field's value: a number or (months, weekdays) a name.
fn value(text: &str, min: u32, max: u32, names: &[&str], field: &str) -> Result<u32, String> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        return Ok(min + i as u32);
    }
    match text.parse::<u32>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(format!(
            "{field}: '{text}' is not a value from {min} to {max}"
        )),
    }
}

/// A list of `*`, `v`, `a-b`, each optionally `/step`, as the values it allows.
fn values(text: &str, min: u32, max: u32, names: &[&str], field: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 =
                    s.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                        format!("{field}: '{s}' is not a step (a positive integer)")
                    })?;
                (r, step)
            }
            None => (item, 1),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (
                value(a, min, max, names, field)?,
                value(b, min, max, names, field)?,
            );
            if a > b {
                return Err(format!("{field}: the range '{range}' runs backwards"));
            }
            (a, b)
        } else {
            let v = value(range, min, max, names, field)?;
            // `5/15`: from 5 to the end by 15.
            (v, if item.contains('/') { max } else { v })
        };
        out.extend((lo..=hi).step_by(step as usize));
    }
    Ok(out)
}

fn bits(values: &[u32]) -> u64 {
    values.iter().fold(0, |acc, v| acc | (1u64 << v))
}

impl Cron {
    /// Parses the six fields inside `cron(...)`.
    pub fn parse(inner: &str) -> Result<Self, String> {
        let fields: Vec<&str> = inner.split_whitespace().collect();
        let [minutes, hours, dom, month, dow, year] = fields[..] else {
            return Err(format!(
                "'cron({inner})' has {} fields; EventBridge's cron has 6: minutes hours day-of-month month day-of-week year",
                fields.len()
            ));
        };
        let minutes = bits(&values(minutes, 0, 59, &[], "minutes")?);
        let hours = bits(&values(hours, 0, 23, &[], "hours")?) as u32;
        let months = bits(&values(month, 1, 12, &MONTHS, "month")?) as u16;
        let mut years = [0u64; 4];
        for y in values(year, FIRST_YEAR as u32, LAST_YEAR as u32, &[], "year")? {
            let i = (y - FIRST_YEAR as u32) as usize;
            years[i / 64] |= 1 << (i % 64);
        }
        let days = match (dom, dow) {
            ("?", "?") => {
                return Err(
                    "day-of-month and day-of-week cannot both be '?': one of them says which days"
                        .into(),
                );
            }
            ("?", dow) => Days::Week(parse_weekdays(dow)?),
            (dom, "?") => Days::Month(parse_monthdays(dom)?),
            _ => {
                return Err(
                    "day-of-month and day-of-week cannot both be given: one of them must be '?'"
                        .into(),
                );
            }
        };
        Ok(Cron {
            minutes,
            hours,
            months,
            years,
            days,
        })
    }

    fn year_allowed(&self, y: i32) -> bool {
        if !(FIRST_YEAR..=LAST_YEAR).contains(&y) {
            return false;
        }
        let i = (y - FIRST_YEAR) as usize;
        self.years[i / 64] & (1 << (i % 64)) != 0
    }

    fn day_allowed(&self, date: NaiveDate) -> bool {
        let last = last_day(date.year(), date.month());
        let day = date.day();
        match &self.days {
            Days::Month(items) => items.iter().any(|item| match item {
                MonthDay::Set(bits) => bits & (1 << day) != 0,
                MonthDay::Last => day == last,
                MonthDay::NearestWeekday(n) => {
                    nearest_weekday(date.year(), date.month(), (*n).min(last)) == Some(day)
                }
                MonthDay::LastWeekday => {
                    nearest_weekday(date.year(), date.month(), last) == Some(day)
                }
            }),
            Days::Week(items) => {
                // 1 = Sunday.
                let dow = date.weekday().num_days_from_sunday() + 1;
                items.iter().any(|item| match item {
                    WeekDay::Set(bits) => bits & (1 << dow) != 0,
                    WeekDay::Last(d) => *d == dow && day + 7 > last,
                    WeekDay::Nth(d, k) => *d == dow && (day - 1) / 7 + 1 == *k,
                })
            }
        }
    }

    /// The first minute strictly after `after` that the expression allows,
    /// read in `zone`: a wall time the clocks skip is no slot, and one they
    /// repeat is a slot once, at its first occurrence (EventBridge
    /// Scheduler's rules).
    pub fn next_after(&self, after: DateTime<Utc>, zone: Zone) -> Option<DateTime<Utc>> {
        let local = zone.local(after);
        let start = local
            .with_second(0)?
            .with_nanosecond(0)?
            .checked_add_signed(Duration::minutes(1))?;
        let mut date = start.date();
        let mut from = (start.hour(), start.minute());
        loop {
            if date.year() > LAST_YEAR {
                return None;
            }
            if !self.year_allowed(date.year()) {
                date = NaiveDate::from_ymd_opt(date.year() + 1, 1, 1)?;
                from = (0, 0);
                continue;
            }
            if self.months & (1 << date.month()) == 0 {
                date = first_of_next_month(date)?;
                from = (0, 0);
                continue;
            }
            if self.day_allowed(date) {
                while let Some((h, m)) = self.time_from(from) {
                    let naive = NaiveDateTime::new(date, chrono::NaiveTime::from_hms_opt(h, m, 0)?);
                    // Skipped (no instant), or repeated and its first
                    // occurrence is already past: not a slot after `after`.
                    match zone.instant(naive) {
                        Some(at) if at > after => return Some(at),
                        _ => from = (h, m + 1),
                    }
                }
            }
            date = date.succ_opt()?;
            from = (0, 0);
        }
    }

    /// The first allowed (hour, minute) at or after `from` in one day (a
    /// minute of 60 reads as the next hour).
    fn time_from(&self, from: (u32, u32)) -> Option<(u32, u32)> {
        for h in from.0..24 {
            if self.hours & (1 << h) == 0 {
                continue;
            }
            let first_minute = if h == from.0 { from.1 } else { 0 };
            for m in first_minute..60 {
                if self.minutes & (1 << m) != 0 {
                    return Some((h, m));
                }
            }
        }
        None
    }
}

fn parse_monthdays(text: &str) -> Result<Vec<MonthDay>, String> {
    let mut items = Vec::new();
    let mut plain = Vec::new();
    for item in text.split(',') {
        if item == "L" {
            items.push(MonthDay::Last);
        } else if item == "LW" {
            items.push(MonthDay::LastWeekday);
        } else if let Some(n) = item.strip_suffix('W') {
            items.push(MonthDay::NearestWeekday(value(
                n,
                1,
                31,
                &[],
                "day-of-month",
            )?));
        } else {
            plain.push(item);
        }
    }
    if !plain.is_empty() {
        let days = values(&plain.join(","), 1, 31, &[], "day-of-month")?;
        items.push(MonthDay::Set(bits(&days) as u32));
    }
    Ok(items)
}

fn parse_weekdays(text: &str) -> Result<Vec<WeekDay>, String> {
    let mut items = Vec::new();
    let mut plain = Vec::new();
    for item in text.split(',') {
        if item == "L" {
            // Quartz: `L` alone in day-of-week is its last day, Saturday.
            items.push(WeekDay::Set(1 << 7));
        } else if let Some(d) = item.strip_suffix('L') {
            items.push(WeekDay::Last(value(d, 1, 7, &WEEKDAYS, "day-of-week")?));
        } else if let Some((d, k)) = item.split_once('#') {
            let d = value(d, 1, 7, &WEEKDAYS, "day-of-week")?;
            let k = match k.parse::<u32>() {
                Ok(k) if (1..=5).contains(&k) => k,
                _ => {
                    return Err(format!(
                        "day-of-week: '#{k}' is not an occurrence from 1 to 5"
                    ));
                }
            };
            items.push(WeekDay::Nth(d, k));
        } else {
            plain.push(item);
        }
    }
    if !plain.is_empty() {
        let days = values(&plain.join(","), 1, 7, &WEEKDAYS, "day-of-week")?;
        items.push(WeekDay::Set(bits(&days) as u8));
    }
    Ok(items)
}

fn last_day(year: i32, month: u32) -> u32 {
    NaiveDate::from_ymd_opt(year, month, 1)
        .and_then(first_of_next_month)
        .and_then(|d| d.pred_opt())
        .map_or(28, |d| d.day())
}

fn first_of_next_month(date: NaiveDate) -> Option<NaiveDate> {
    if date.month() == 12 {
        NaiveDate::from_ymd_opt(date.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(date.year(), date.month() + 1, 1)
    }
}

/// The weekday nearest day `n` of a month without leaving the month
/// (Quartz's `W`): Saturday moves to Friday (or Monday on the 1st), Sunday
/// to Monday (or Friday on the last day).
fn nearest_weekday(year: i32, month: u32, n: u32) -> Option<u32> {
    let date = NaiveDate::from_ymd_opt(year, month, n)?;
    let last = last_day(year, month);
    Some(match date.weekday() {
        chrono::Weekday::Sat if n == 1 => 3,
        chrono::Weekday::Sat => n - 1,
        chrono::Weekday::Sun if n == last => n - 2,
        chrono::Weekday::Sun => n + 1,
        _ => n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn utc() -> Zone {
        Zone::utc()
    }

    /// A slot's `finished_by`: the first such wall time after the slot,
    /// the next day when it has passed, an hour later when the clocks skip
    /// it.
    #[test]
    fn finished_by_is_the_next_such_wall_time() {
        let hm = |text: &str| chrono::NaiveTime::parse_from_str(text, "%H:%M").expect("time");
        let paris = Zone::parse("Europe/Paris").expect("zone");
        assert_eq!(
            utc().next_wall_time(t("2026-12-07T02:00:00Z"), hm("06:30")),
            t("2026-12-07T06:30:00Z")
        );
        assert_eq!(
            utc().next_wall_time(t("2026-12-07T23:00:00Z"), hm("06:30")),
            t("2026-12-08T06:30:00Z")
        );
        assert_eq!(
            utc().next_wall_time(t("2026-12-07T06:30:00Z"), hm("06:30")),
            t("2026-12-08T06:30:00Z")
        );
        // 02:00 in Paris is 01:00 UTC in winter.
        assert_eq!(
            paris.next_wall_time(t("2026-12-07T00:00:00Z"), hm("02:00")),
            t("2026-12-07T01:00:00Z")
        );
        // 02:30 does not exist on the 29th of March 2026 in Paris: 03:30.
        assert_eq!(
            paris.next_wall_time(t("2026-03-29T00:00:00Z"), hm("02:30")),
            t("2026-03-29T01:30:00Z")
        );
    }

    /// The next `n` slots of `expr` after `from` in `zone`, in UTC, as
    /// RFC 3339.
    fn check(expr: &str, from: &str, zone: &str, expected: &[&str]) {
        let schedule = Schedule::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        let offset = Zone::parse(zone).expect("zone");
        let mut at = t(from);
        let mut got = Vec::new();
        for _ in 0..expected.len() {
            match schedule.next_after(at, offset) {
                Some(next) => {
                    got.push(next.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                    at = next;
                }
                None => break,
            }
        }
        assert_eq!(got, expected, "{expr} after {from} in {offset}");
    }

    #[test]
    fn rates_are_anchored_on_the_epoch() {
        check(
            "rate(5 minutes)",
            "2026-03-01T10:02:30Z",
            "UTC",
            &["2026-03-01T10:05:00Z", "2026-03-01T10:10:00Z"],
        );
        // Strictly after: a slot is not its own successor.
        check(
            "rate(1 hour)",
            "2026-03-01T10:00:00Z",
            "UTC",
            &["2026-03-01T11:00:00Z"],
        );
        check(
            "rate(1 day)",
            "2026-03-01T10:00:00Z",
            "+02:00",
            &["2026-03-01T22:00:00Z", "2026-03-02T22:00:00Z"],
        );
        check(
            "rate(7 days)",
            "2026-03-01T00:00:00Z",
            "UTC",
            &["2026-03-05T00:00:00Z", "2026-03-12T00:00:00Z"],
        );
    }

    #[test]
    fn cron_fields() {
        // Every 15 minutes, 9 to 17 on weekdays (2026-03-06 is a Friday).
        check(
            "cron(0/15 9-17 ? * MON-FRI *)",
            "2026-03-06T17:40:00Z",
            "UTC",
            &[
                "2026-03-06T17:45:00Z",
                "2026-03-09T09:00:00Z",
                "2026-03-09T09:15:00Z",
            ],
        );
        // Lists, names, and `*/step`.
        check(
            "cron(5,35 */12 1,15 JAN,JUL ? 2026-2027)",
            "2026-01-14T23:59:00Z",
            "UTC",
            &[
                "2026-01-15T00:05:00Z",
                "2026-01-15T00:35:00Z",
                "2026-01-15T12:05:00Z",
                "2026-01-15T12:35:00Z",
                "2026-07-01T00:05:00Z",
            ],
        );
        // The year field ends the schedule.
        check(
            "cron(0 0 1 1 ? 2026-2027)",
            "2026-06-01T00:00:00Z",
            "UTC",
            &["2027-01-01T00:00:00Z"],
        );
        let last = Schedule::parse("cron(0 0 1 1 ? 2026)").expect("parse");
        assert_eq!(last.next_after(t("2026-01-01T00:00:00Z"), utc()), None);
        // 29 February only in leap years.
        check(
            "cron(0 12 29 2 ? *)",
            "2026-01-01T00:00:00Z",
            "UTC",
            &["2028-02-29T12:00:00Z", "2032-02-29T12:00:00Z"],
        );
    }

    #[test]
    fn cron_last_weekday_and_nth() {
        // L: the last day of each month.
        check(
            "cron(0 18 L * ? *)",
            "2026-01-31T18:00:00Z",
            "UTC",
            &["2026-02-28T18:00:00Z", "2026-03-31T18:00:00Z"],
        );
        // 15W: 2026-02-15 is a Sunday -> Monday 16; 2026-03-15 is a Sunday
        // too -> Monday 16; 2026-08-15 is a Saturday -> Friday 14.
        check(
            "cron(0 8 15W * ? *)",
            "2026-02-01T00:00:00Z",
            "UTC",
            &[
                "2026-02-16T08:00:00Z",
                "2026-03-16T08:00:00Z",
                "2026-04-15T08:00:00Z",
            ],
        );
        check(
            "cron(0 8 15W AUG ? 2026)",
            "2026-01-01T00:00:00Z",
            "UTC",
            &["2026-08-14T08:00:00Z"],
        );
        // 1W on a Saturday stays in the month: 2026-08-01 -> Monday 3.
        check(
            "cron(0 8 1W AUG ? 2026)",
            "2026-01-01T00:00:00Z",
            "UTC",
            &["2026-08-03T08:00:00Z"],
        );
        // LW: the last weekday; 2026-05-31 is a Sunday -> Friday 29.
        check(
            "cron(0 8 LW MAY ? 2026)",
            "2026-01-01T00:00:00Z",
            "UTC",
            &["2026-05-29T08:00:00Z"],
        );
        // 6L: the last Friday; 2#1: the first Monday.
        check(
            "cron(0 9 ? * 6L *)",
            "2026-03-01T00:00:00Z",
            "UTC",
            &["2026-03-27T09:00:00Z", "2026-04-24T09:00:00Z"],
        );
        check(
            "cron(0 9 ? * MON#1 *)",
            "2026-03-01T00:00:00Z",
            "UTC",
            &["2026-03-02T09:00:00Z", "2026-04-06T09:00:00Z"],
        );
        check(
            "cron(30 9 ? * 3#5 *)",
            "2026-03-01T00:00:00Z",
            "UTC",
            &["2026-03-31T09:30:00Z", "2026-06-30T09:30:00Z"],
        );
    }

    #[test]
    fn cron_in_a_fixed_offset() {
        // 02:00 at +05:30 is 20:30 UTC the day before.
        check(
            "cron(0 2 * * ? *)",
            "2026-03-01T00:00:00Z",
            "+05:30",
            &["2026-03-01T20:30:00Z", "2026-03-02T20:30:00Z"],
        );
        // Day-of-week is read in local time: Monday 01:00 at -05:00.
        check(
            "cron(0 1 ? * MON *)",
            "2026-03-01T00:00:00Z",
            "-05:00",
            &["2026-03-02T06:00:00Z"],
        );
    }

    // Europe/Paris in 2026: the clocks go forward on Sunday 29 March at
    // 02:00 CET (01:00 UTC) to 03:00 CEST, and back on Sunday 25 October
    // at 03:00 CEST (01:00 UTC) to 02:00 CET.

    #[test]
    fn a_named_zone_follows_daylight_saving_time() {
        // 09:00 in Paris is 08:00 UTC in winter, 07:00 UTC in summer.
        check(
            "cron(0 9 * * ? *)",
            "2026-03-28T12:00:00Z",
            "Europe/Paris",
            &["2026-03-29T07:00:00Z", "2026-03-30T07:00:00Z"],
        );
        check(
            "cron(0 9 * * ? *)",
            "2026-10-24T12:00:00Z",
            "Europe/Paris",
            &["2026-10-25T08:00:00Z", "2026-10-26T08:00:00Z"],
        );
        // Day-of-week is the zone's: Monday 00:30 in Paris is Sunday 22:30
        // UTC in summer.
        check(
            "cron(30 0 ? * MON *)",
            "2026-06-01T00:00:00Z",
            "Europe/Paris",
            &["2026-06-07T22:30:00Z"],
        );
    }

    #[test]
    fn spring_forward_skips_the_wall_times_that_do_not_exist() {
        // 02:30 does not exist in Paris on 29 March 2026: no slot that day.
        check(
            "cron(30 2 * * ? *)",
            "2026-03-28T00:00:00Z",
            "Europe/Paris",
            &[
                "2026-03-28T01:30:00Z",
                "2026-03-30T00:30:00Z",
                "2026-03-31T00:30:00Z",
            ],
        );
        // Every 30 minutes: 01:00 and 01:30 CET, then 03:00 CEST, one real
        // hour later; 02:00 and 02:30 are skipped.
        check(
            "cron(0/30 * * * ? *)",
            "2026-03-29T00:00:00Z",
            "Europe/Paris",
            &[
                "2026-03-29T00:30:00Z",
                "2026-03-29T01:00:00Z",
                "2026-03-29T01:30:00Z",
            ],
        );
        // A schedule of that hour only fires on other days.
        check(
            "cron(15 2 29 3 ? 2026-2027)",
            "2026-01-01T00:00:00Z",
            "Europe/Paris",
            &["2027-03-29T00:15:00Z"],
        );
    }

    #[test]
    fn fall_back_runs_a_repeated_wall_time_once() {
        // 02:30 happens twice in Paris on 25 October 2026 (CEST, then CET):
        // one slot, at the first, 00:30 UTC.
        check(
            "cron(30 2 * * ? *)",
            "2026-10-24T12:00:00Z",
            "Europe/Paris",
            &["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"],
        );
        // Every 30 minutes: 02:00 and 02:30 CEST, then 03:00 CET; the
        // repeated 02:00 and 02:30 CET do not fire again.
        check(
            "cron(0/30 * * * ? *)",
            "2026-10-24T23:45:00Z",
            "Europe/Paris",
            &[
                "2026-10-25T00:00:00Z",
                "2026-10-25T00:30:00Z",
                "2026-10-25T02:00:00Z",
            ],
        );
        // Asked from inside the repeated hour (a server started then, or a
        // cursor stored then): its wall times already ran; the next slot is
        // after it.
        check(
            "cron(0/30 * * * ? *)",
            "2026-10-25T01:10:00Z",
            "Europe/Paris",
            &["2026-10-25T02:00:00Z"],
        );
    }

    #[test]
    fn rates_count_elapsed_time_across_clock_changes() {
        // rate(1 day) is every 24 hours, anchored on midnight standard
        // time: 00:00 CET in winter, 01:00 CEST in summer.
        check(
            "rate(1 day)",
            "2026-03-27T12:00:00Z",
            "Europe/Paris",
            &[
                "2026-03-27T23:00:00Z",
                "2026-03-28T23:00:00Z",
                "2026-03-29T23:00:00Z",
            ],
        );
        // rate(1 hour) fires every real hour through both changes.
        check(
            "rate(1 hour)",
            "2026-10-24T23:30:00Z",
            "Europe/Paris",
            &[
                "2026-10-25T00:00:00Z",
                "2026-10-25T01:00:00Z",
                "2026-10-25T02:00:00Z",
            ],
        );
    }

    #[test]
    fn zones_are_named_as_the_tz_database_does() {
        assert_eq!(Zone::parse("UTC").expect("utc").to_string(), "UTC");
        assert_eq!(Zone::parse("+05:30").expect("fixed").to_string(), "+05:30");
        assert_eq!(
            Zone::parse("America/New_York").expect("named").to_string(),
            "America/New_York"
        );
        // US rules: 2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT
        // -> 01:00 EST (01:30 happens twice).
        check(
            "cron(30 2 * * ? *)",
            "2026-03-07T00:00:00Z",
            "America/New_York",
            &["2026-03-07T07:30:00Z", "2026-03-09T06:30:00Z"],
        );
        check(
            "cron(30 1 * * ? *)",
            "2026-10-31T12:00:00Z",
            "America/New_York",
            &["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"],
        );
    }

    #[test]
    fn slots_between_two_times() {
        let s = Schedule::parse("rate(1 hour)").expect("parse");
        let slots = s.slots(
            t("2026-01-01T00:00:00Z"),
            t("2026-01-01T05:00:00Z"),
            utc(),
            100,
        );
        assert_eq!(slots.len(), 5);
        assert_eq!(slots[0], t("2026-01-01T01:00:00Z"));
        assert_eq!(slots[4], t("2026-01-01T05:00:00Z"));
        assert_eq!(
            s.slots(
                t("2026-01-01T00:00:00Z"),
                t("2026-01-02T00:00:00Z"),
                utc(),
                3
            )
            .len(),
            3
        );
    }

    #[test]
    fn mistakes_are_named() {
        for (text, words) in [
            ("every 5 minutes", "not a schedule expression"),
            ("rate(5 minute)", "singular for 1"),
            ("rate(1 minutes)", "singular for 1"),
            ("rate(0 minutes)", "positive integer"),
            ("rate(5 weeks)", "unit"),
            ("cron(0 12 * * ?)", "has 5 fields"),
            ("cron(0 12 * * * *)", "one of them must be '?'"),
            ("cron(0 12 ? * ? *)", "cannot both be '?'"),
            ("cron(60 12 * * ? *)", "minutes: '60'"),
            ("cron(0 24 * * ? *)", "hours: '24'"),
            ("cron(0 12 32 * ? *)", "day-of-month: '32'"),
            ("cron(0 12 * 13 ? *)", "month: '13'"),
            ("cron(0 12 ? * 8 *)", "day-of-week: '8'"),
            ("cron(0 12 ? * 2#6 *)", "occurrence from 1 to 5"),
            ("cron(0 12 * * ? 2200)", "year: '2200'"),
            ("cron(0/0 12 * * ? *)", "step"),
            ("cron(0 17-9 * * ? *)", "backwards"),
        ] {
            let e = Schedule::parse(text).expect_err(text);
            assert!(e.contains(words), "{text}: {e}");
        }
        for (text, words) in [
            ("CEST", "not a time zone"),
            ("+2", "not a time zone"),
            ("+15:00", "not a time zone"),
            ("europe/paris", "case included"),
            ("Mars/Olympus_Mons", "IANA zone name"),
        ] {
            let e = Zone::parse(text).expect_err(text);
            assert!(e.contains(words), "{text}: {e}");
        }
    }
}
