//! Picture-string formatting: `$formatNumber` (XPath decimal formats),
//! `$formatInteger` / `$parseInteger`, `$formatBase`, and date-times for
//! `$fromMillis`, `$now` and `$toMillis`. The common parts of the XPath
//! pictures are supported; a picture outside them is an error, not a guess.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, TimeZone, Timelike, Utc};

use super::error::JErr;
use super::value::js_number;

pub(super) fn to_radix(v: f64, radix: u32) -> String {
    let negative = v < 0.0;
    let mut x = v.abs();
    if x < 1.0 {
        return "0".into();
    }
    let mut digits = Vec::new();
    while x >= 1.0 {
        let d = (x % f64::from(radix)) as u32;
        digits.push(std::char::from_digit(d, radix).unwrap_or('0'));
        x = (x / f64::from(radix)).floor();
    }
    let body: String = digits.iter().rev().collect();
    if negative { format!("-{body}") } else { body }
}

/// `$formatNumber(n, picture)` with the default decimal format.
pub(super) fn format_number(value: f64, picture: &str) -> Result<String, JErr> {
    let sub = match picture.split_once(';') {
        Some((_, neg)) if value < 0.0 => (neg, true),
        Some((pos, _)) => (pos, false),
        None => (picture, false),
    };
    let (pic, explicit_negative) = sub;
    let is_active = |c: char| c.is_ascii_digit() || "#.,%‰e".contains(c);
    let first = pic
        .find(|c: char| c.is_ascii_digit() || c == '#' || c == '.')
        .unwrap_or(pic.len());
    let last = pic
        .rfind(|c: char| c.is_ascii_digit() || c == '#' || c == '.')
        .map_or(first, |i| i + 1);
    let prefix = &pic[..first];
    let mut suffix = &pic[last.max(first)..];
    let mut mantissa = &pic[first..last.max(first)];
    let _ = is_active;
    let mut exponent_digits = 0usize;
    if let Some(e) = mantissa.find('e') {
        exponent_digits = mantissa[e + 1..]
            .chars()
            .filter(char::is_ascii_digit)
            .count();
        mantissa = &mantissa[..e];
    }
    let percent = prefix.contains('%') || suffix.contains('%');
    let permille = prefix.contains('‰') || suffix.contains('‰');
    if suffix.starts_with('e') {
        suffix = &suffix[1..];
    }
    let (int_pic, frac_pic) = match mantissa.split_once('.') {
        Some((i, f)) => (i, f),
        None => (mantissa, ""),
    };
    let min_int = int_pic.chars().filter(char::is_ascii_digit).count();
    let min_frac = frac_pic.chars().filter(char::is_ascii_digit).count();
    let max_frac = frac_pic
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '#')
        .count();
    // Grouping: positions of ',' counted from the right of the integer part.
    let digits_only: Vec<char> = int_pic.chars().collect();
    let mut group_positions = Vec::new();
    let mut count = 0;
    for c in digits_only.iter().rev() {
        if *c == ',' {
            group_positions.push(count);
        } else {
            count += 1;
        }
    }
    let regular = group_positions.first().copied().filter(|&g| {
        g > 0
            && group_positions
                .iter()
                .enumerate()
                .all(|(i, p)| *p == g * (i + 1))
    });
    let mut x = value.abs();
    if percent {
        x *= 100.0;
    } else if permille {
        x *= 1000.0;
    }
    let mut exponent = 0i32;
    if exponent_digits > 0 && x != 0.0 {
        let int_digits = min_int.max(1) as i32;
        exponent = x.log10().floor() as i32 + 1 - int_digits;
        x /= 10f64.powi(exponent);
    }
    let rounded = super::functions::round_half_even(x, max_frac as i32);
    let text = format!("{rounded:.max_frac$}");
    let (int_part, frac_part) = text.split_once('.').unwrap_or((&text, ""));
    let mut frac: String = frac_part.to_owned();
    while frac.len() > min_frac && frac.ends_with('0') {
        frac.pop();
    }
    let mut int_digits: String = int_part.trim_start_matches('0').to_owned();
    while int_digits.len() < min_int {
        int_digits.insert(0, '0');
    }
    if int_digits.is_empty() && frac.is_empty() {
        int_digits.push('0');
    }
    // Insert grouping separators.
    let chars: Vec<char> = int_digits.chars().collect();
    let mut grouped = String::new();
    for (i, c) in chars.iter().enumerate() {
        let from_right = chars.len() - i;
        if i > 0 {
            let at = from_right;
            let sep = match regular {
                Some(g) => at % g == 0,
                None => group_positions.contains(&at),
            };
            if sep {
                grouped.push(',');
            }
        }
        grouped.push(*c);
    }
    let mut out = String::new();
    if value < 0.0 && !explicit_negative {
        out.push('-');
    }
    out.push_str(prefix);
    out.push_str(&grouped);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(&frac);
    }
    if exponent_digits > 0 {
        out.push('e');
        let e = exponent.abs().to_string();
        if exponent < 0 {
            out.push('-');
        }
        for _ in e.len()..exponent_digits {
            out.push('0');
        }
        out.push_str(&e);
    }
    out.push_str(suffix);
    Ok(out)
}

const ONES: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

fn words(n: u64) -> String {
    if n < 20 {
        return ONES[n as usize].into();
    }
    if n < 100 {
        let t = TENS[(n / 10) as usize];
        return if n % 10 == 0 {
            t.into()
        } else {
            format!("{t}-{}", ONES[(n % 10) as usize])
        };
    }
    if n < 1000 {
        let h = format!("{} hundred", ONES[(n / 100) as usize]);
        return if n % 100 == 0 {
            h
        } else {
            format!("{h} and {}", words(n % 100))
        };
    }
    let scales = [
        (1_000_000_000_000_000_000u64, "quintillion"),
        (1_000_000_000_000_000, "quadrillion"),
        (1_000_000_000_000, "trillion"),
        (1_000_000_000, "billion"),
        (1_000_000, "million"),
        (1000, "thousand"),
    ];
    for (size, name) in scales {
        if n >= size {
            let head = format!("{} {name}", words(n / size));
            let rest = n % size;
            return if rest == 0 {
                head
            } else if rest < 100 {
                format!("{head} and {}", words(rest))
            } else {
                format!("{head}, {}", words(rest))
            };
        }
    }
    String::new()
}

fn roman(mut n: u64) -> String {
    let table = [
        (1000, "m"),
        (900, "cm"),
        (500, "d"),
        (400, "cd"),
        (100, "c"),
        (90, "xc"),
        (50, "l"),
        (40, "xl"),
        (10, "x"),
        (9, "ix"),
        (5, "v"),
        (4, "iv"),
        (1, "i"),
    ];
    let mut out = String::new();
    for (v, s) in table {
        while n >= v {
            out.push_str(s);
            n -= v;
        }
    }
    out
}

fn letters(mut n: u64) -> String {
    let mut out = Vec::new();
    while n > 0 {
        n -= 1;
        out.push((b'a' + (n % 26) as u8) as char);
        n /= 26;
    }
    out.iter().rev().collect()
}

fn ordinal_suffix(n: u64) -> &'static str {
    match (n % 10, n % 100) {
        (1, x) if x != 11 => "st",
        (2, x) if x != 12 => "nd",
        (3, x) if x != 13 => "rd",
        _ => "th",
    }
}

fn ordinal_words(n: u64) -> String {
    let w = words(n);
    let (head, last) = match w.rfind([' ', '-']) {
        Some(i) => (&w[..=i], &w[i + 1..]),
        None => ("", w.as_str()),
    };
    let last = match last {
        "one" => "first".to_owned(),
        "two" => "second".to_owned(),
        "three" => "third".to_owned(),
        "five" => "fifth".to_owned(),
        "eight" => "eighth".to_owned(),
        "nine" => "ninth".to_owned(),
        "twelve" => "twelfth".to_owned(),
        l if l.ends_with('y') => format!("{}ieth", &l[..l.len() - 1]),
        l => format!("{l}th"),
    };
    format!("{head}{last}")
}

fn case(s: String, picture: &str) -> String {
    let upper = picture.chars().next().is_some_and(char::is_uppercase);
    let title =
        picture.len() > 1 && picture.chars().nth(1).is_some_and(char::is_lowercase) && upper;
    if title {
        s.split(' ')
            .map(|w| {
                let mut c = w.chars();
                c.next().map_or_else(String::new, |f| {
                    f.to_uppercase().collect::<String>() + c.as_str()
                })
            })
            .collect::<Vec<_>>()
            .join(" ")
    } else if upper {
        s.to_uppercase()
    } else {
        s
    }
}

/// `$formatInteger(n, picture)`. `max_len`: the most bytes it may write;
/// a Roman numeral (a thousand takes one `m`) is checked against it first.
pub(super) fn format_integer(value: f64, picture: &str, max_len: usize) -> Result<String, JErr> {
    let (pic, modifier) = match picture.rsplit_once(';') {
        Some((p, m)) => (p, m),
        None => (picture, ""),
    };
    let ordinal = modifier.starts_with('o');
    let negative = value < 0.0;
    let n = value.abs() as u64;
    let body = match pic {
        "w" | "W" | "Ww" => {
            let w = if ordinal { ordinal_words(n) } else { words(n) };
            case(w, pic)
        }
        "I" | "i" if (n / 1000) as usize > max_len => return Err(super::eval::budget_exceeded()),
        "I" => roman(n).to_uppercase(),
        "i" => roman(n),
        "A" => letters(n).to_uppercase(),
        "a" => letters(n),
        _ => {
            if !pic.chars().any(|c| c.is_ascii_digit()) {
                return Err(JErr::new(
                    "D3130",
                    format!(
                        "Formatting or parsing an integer as a sequence starting with {pic} is not supported by this implementation"
                    ),
                ));
            }
            let min_digits = pic.chars().filter(char::is_ascii_digit).count();
            let mut digits = n.to_string();
            while digits.len() < min_digits {
                digits.insert(0, '0');
            }
            // Separators at the picture's positions (from the right).
            let mut seps = Vec::new();
            let mut count = 0;
            for c in pic.chars().rev() {
                if c.is_ascii_digit() || c == '#' {
                    count += 1;
                } else {
                    seps.push((count, c));
                }
            }
            let regular = seps.first().map(|s| s.0).filter(|&g| {
                g > 0
                    && seps
                        .iter()
                        .enumerate()
                        .all(|(i, s)| s.0 == g * (i + 1) && s.1 == seps[0].1)
            });
            let chars: Vec<char> = digits.chars().collect();
            let mut out = String::new();
            for (i, c) in chars.iter().enumerate() {
                let from_right = chars.len() - i;
                if i > 0 {
                    if let Some(g) = regular {
                        if from_right % g == 0 {
                            out.push(seps[0].1);
                        }
                    } else if let Some((_, sep)) = seps.iter().find(|s| s.0 == from_right) {
                        out.push(*sep);
                    }
                }
                out.push(*c);
            }
            if ordinal {
                out.push_str(ordinal_suffix(n));
            }
            out
        }
    };
    Ok(if negative { format!("-{body}") } else { body })
}

/// `$parseInteger(text, picture)` for decimal pictures.
pub(super) fn parse_integer(text: &str, picture: &str) -> Option<f64> {
    if picture.chars().any(|c| c.is_ascii_digit() || c == '#') {
        let digits: String = text
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '-')
            .collect();
        return digits.parse::<f64>().ok();
    }
    None
}

fn parse_tz(tz: &str) -> Option<FixedOffset> {
    let sign = if tz.starts_with('-') { -1 } else { 1 };
    let digits: String = tz.chars().filter(char::is_ascii_digit).collect();
    if digits.len() != 4 {
        return None;
    }
    let h: i32 = digits[..2].parse().ok()?;
    let m: i32 = digits[2..].parse().ok()?;
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// `$fromMillis(ms, picture?, timezone?)`; without a picture, ISO 8601
/// with milliseconds (as JavaScript's toISOString).
/// `max_len`: the most bytes it may write (the evaluation's memory left):
/// a picture's width modifiers (`[Y,1000000]`) are checked against it
/// before any padding is made.
pub(super) fn from_millis(
    ms: f64,
    picture: Option<&str>,
    tz: Option<&str>,
    max_len: usize,
) -> Result<String, JErr> {
    let Some(utc) = Utc.timestamp_millis_opt(ms as i64).single() else {
        return Err(JErr::new(
            "D3137",
            format!("The millisecond value {} is out of range", js_number(ms)),
        ));
    };
    let offset = match tz {
        Some(t) => parse_tz(t)
            .ok_or_else(|| JErr::new("D3134", format!("The timezone {t} is not valid")))?,
        None => FixedOffset::east_opt(0).ok_or_else(|| JErr::new("D3134", "timezone"))?,
    };
    let t = utc.with_timezone(&offset);
    let Some(picture) = picture else {
        if tz.is_none() {
            return Ok(utc.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
        }
        return Ok(t.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string());
    };
    let mut out = String::new();
    let mut rest = picture;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("[[") {
            out.push('[');
            rest = r;
        } else if let Some(r) = rest.strip_prefix("]]") {
            out.push(']');
            rest = r;
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or_else(|| {
                JErr::new(
                    "D3135",
                    "No matching closing bracket ']' in date/time picture string",
                )
            })?;
            let marker: String = r[..end].chars().filter(|c| !c.is_whitespace()).collect();
            out.push_str(&component(&t, &marker, max_len.saturating_sub(out.len()))?);
            rest = &r[end + 1..];
        } else {
            let c = rest.chars().next().unwrap_or_default();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    Ok(out)
}

fn component(t: &DateTime<FixedOffset>, marker: &str, max_len: usize) -> Result<String, JErr> {
    let mut chars = marker.chars();
    let Some(kind) = chars.next() else {
        return Ok(String::new());
    };
    let spec: String = chars.collect();
    let (presentation, width) = match spec.split_once(',') {
        Some((p, w)) => (p.to_owned(), Some(w.to_owned())),
        None => (spec.clone(), None),
    };
    let (min_w, max_w) = match &width {
        Some(w) => {
            let (a, b) = w.split_once('-').unwrap_or((w.as_str(), ""));
            (a.parse::<usize>().ok(), b.parse::<usize>().ok())
        }
        None => (None, None),
    };
    if min_w.is_some_and(|w| w > max_len) {
        return Err(super::eval::budget_exceeded());
    }
    let ordinal = presentation.ends_with('o');
    let presentation = presentation.trim_end_matches(['o', 'c', 't']).to_owned();
    let number = |v: i64, default: &str| -> String {
        let pic = if presentation.is_empty() {
            default.to_owned()
        } else {
            presentation.clone()
        };
        if pic.starts_with(['N', 'n']) {
            return v.to_string();
        }
        if pic == "w"
            || pic == "W"
            || pic == "Ww"
            || pic == "I"
            || pic == "i"
            || pic == "a"
            || pic == "A"
        {
            let p = if ordinal {
                format!("{pic};o")
            } else {
                pic.clone()
            };
            return format_integer(v as f64, &p, max_len).unwrap_or_default();
        }
        let mut digits = pic.chars().filter(|c| c.is_ascii_digit()).count().max(1);
        if let Some(m) = min_w {
            digits = digits.max(m);
        }
        let mut s = format!("{:0digits$}", v.abs());
        if let Some(m) = max_w {
            if s.len() > m && kind == 'Y' {
                s = s[s.len() - m..].to_owned();
            }
        }
        if v < 0 {
            s.insert(0, '-');
        }
        if ordinal {
            s.push_str(ordinal_suffix(v.unsigned_abs()));
        }
        s
    };
    let name = |full: &str| -> String {
        let mut s = full.to_owned();
        if let Some(m) = max_w {
            s = s.chars().take(m).collect();
        }
        match presentation.as_str() {
            "N" => s.to_uppercase(),
            "n" => s.to_lowercase(),
            _ => s,
        }
    };
    Ok(match kind {
        'Y' => number(i64::from(t.year()), "1"),
        'M' if presentation.starts_with(['N', 'n']) => name(MONTHS[t.month0() as usize]),
        'M' => number(i64::from(t.month()), "1"),
        'D' => number(i64::from(t.day()), "1"),
        'd' => number(i64::from(t.ordinal()), "1"),
        'F' if presentation.starts_with(['N', 'n']) || presentation.is_empty() => {
            name(DAYS[t.weekday().num_days_from_monday() as usize])
        }
        'F' => number(i64::from(t.weekday().number_from_monday()), "1"),
        'W' => number(i64::from(t.iso_week().week()), "1"),
        'H' => number(i64::from(t.hour()), "1"),
        'h' => {
            let h = t.hour() % 12;
            number(i64::from(if h == 0 { 12 } else { h }), "1")
        }
        'P' => {
            let s = if t.hour() < 12 { "am" } else { "pm" };
            if presentation == "N" {
                s.to_uppercase()
            } else {
                s.to_owned()
            }
        }
        'm' => number(i64::from(t.minute()), "01"),
        's' => number(i64::from(t.second()), "01"),
        'f' => {
            let digits = presentation
                .chars()
                .filter(|c| c.is_ascii_digit())
                .count()
                .max(1);
            let ms = format!("{:03}", t.timestamp_subsec_millis());
            let mut s: String = ms.chars().take(digits).collect();
            while s.len() < digits {
                s.push('0');
            }
            s
        }
        'Z' | 'z' => {
            let secs = t.offset().local_minus_utc();
            let sign = if secs < 0 { '-' } else { '+' };
            let (h, m) = (secs.abs() / 3600, (secs.abs() % 3600) / 60);
            if kind == 'z' {
                format!("GMT{sign}{h:02}:{m:02}")
            } else if presentation == "Z" && secs == 0 {
                "Z".into()
            } else if presentation.len() <= 2
                && !presentation.contains(':')
                && !presentation.is_empty()
            {
                format!("{sign}{h:02}{m:02}")
            } else {
                format!("{sign}{h:02}:{m:02}")
            }
        }
        'E' => "ISO".into(),
        'C' => "ISO".into(),
        _ => {
            return Err(JErr::new(
                "D3132",
                format!("Unknown component specifier {kind} in date/time picture string"),
            ));
        }
    })
}

/// `$toMillis(text, picture?)`: ISO 8601 without a picture; with one, the
/// numeric components it names.
pub(super) fn to_millis(text: &str, picture: Option<&str>) -> Result<Option<f64>, JErr> {
    let Some(picture) = picture else {
        if let Ok(t) = DateTime::parse_from_rfc3339(text) {
            return Ok(Some(t.timestamp_millis() as f64));
        }
        for fmt in [
            "%Y-%m-%dT%H:%M:%S%.f%:z",
            "%Y-%m-%dT%H:%M:%S%.f%z",
            "%Y-%m-%dT%H:%M%:z",
        ] {
            if let Ok(t) = DateTime::parse_from_str(text, fmt) {
                return Ok(Some(t.timestamp_millis() as f64));
            }
        }
        for fmt in [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%dT%H:%M",
        ] {
            if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, fmt) {
                return Ok(Some(t.and_utc().timestamp_millis() as f64));
            }
        }
        if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            return Ok(d
                .and_hms_opt(0, 0, 0)
                .map(|t| t.and_utc().timestamp_millis() as f64));
        }
        return Err(JErr::new(
            "D3110",
            format!("The timestamp string {text} does not match the ISO 8601 format"),
        ));
    };
    // Numeric pictures: [Y], [M], [D], [H], [m], [s], [f] and literals.
    let (mut y, mut mo, mut d, mut h, mut mi, mut s, mut ms) =
        (1970i32, 1u32, 1u32, 0u32, 0u32, 0u32, 0u32);
    let mut rest = text;
    let mut pic = picture;
    while !pic.is_empty() {
        if let Some(r) = pic.strip_prefix('[') {
            let Some(end) = r.find(']') else {
                return Ok(None);
            };
            let kind = r.chars().next().unwrap_or(' ');
            let len = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            let value: u32 = rest[..len].parse().map_err(|_| {
                JErr::new(
                    "D3110",
                    format!("The string {text} does not match the picture {picture}"),
                )
            })?;
            rest = &rest[len..];
            match kind {
                'Y' => y = value as i32,
                'M' => mo = value,
                'D' => d = value,
                'H' => h = value,
                'm' => mi = value,
                's' => s = value,
                'f' => ms = value,
                _ => {
                    return Err(JErr::new(
                        "D3132",
                        format!("Unsupported component {kind} in date/time picture string"),
                    ));
                }
            }
            pic = &r[end + 1..];
        } else {
            let c = pic.chars().next().unwrap_or_default();
            if !rest.starts_with(c) {
                return Ok(None);
            }
            rest = &rest[c.len_utf8()..];
            pic = &pic[c.len_utf8()..];
        }
    }
    let t = NaiveDate::from_ymd_opt(y, mo, d).and_then(|date| date.and_hms_milli_opt(h, mi, s, ms));
    Ok(t.map(|t| t.and_utc().timestamp_millis() as f64))
}
