//! ItemReader over local storage: AWS's `s3:getObject` (CSV, JSON, JSONL)
//! and `s3:listObjectsV2`, with buckets mapped to directories by the
//! operator.
//!
//! Streaming: every reader pulls from a `BufRead` one item at a time, so a
//! file of any size is read with memory bounded by its largest item
//! ([`MAX_ITEM_BYTES`]). Every failure names the row, line or element that
//! caused it, as `States.ItemReaderFailed`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use serde_json::{Map, Value, json};

use stepline_language::map_run::ReaderSpec;

/// The largest item (a CSV row, a JSON element, a JSONL line) a reader
/// accepts: AWS's payload limit, 256 KiB.
pub const MAX_ITEM_BYTES: usize = 256 * 1024;

/// An ItemReader failure: becomes `States.ItemReaderFailed` with this cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReaderError(pub String);

/// Buckets (AWS S3 names in definitions) mapped to local directories: the
/// only places an ItemReader reads and a ResultWriter writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Buckets {
    dirs: BTreeMap<String, PathBuf>,
}

impl Buckets {
    pub fn new(dirs: BTreeMap<String, PathBuf>) -> Self {
        Self { dirs }
    }

    /// The directory of `bucket`, canonical (symlinks resolved).
    pub fn root(&self, bucket: &str) -> Result<PathBuf, ReaderError> {
        let dir = self.dirs.get(bucket).ok_or_else(|| {
            ReaderError(format!(
                "The bucket '{bucket}' is not mapped to a directory: the operator maps buckets under [buckets] in stepline.toml"
            ))
        })?;
        dir.canonicalize().map_err(|e| {
            ReaderError(format!(
                "The directory of bucket '{bucket}' ({}) cannot be opened: {e}",
                dir.display()
            ))
        })
    }

    /// Where `key` of `bucket` is, refusing keys that would leave the
    /// bucket's directory (`..`, absolute paths, symlinks pointing out).
    /// `must_exist` false allows a file about to be written.
    pub fn resolve(
        &self,
        bucket: &str,
        key: &str,
        must_exist: bool,
    ) -> Result<PathBuf, ReaderError> {
        let root = self.root(bucket)?;
        let relative = Path::new(key);
        let clean = !key.is_empty()
            && relative
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        if !clean {
            return Err(ReaderError(format!(
                "The key '{key}' is not a plain relative path inside bucket '{bucket}'"
            )));
        }
        let path = root.join(relative);
        // The deepest existing ancestor, resolved, must stay in the bucket.
        let mut existing = path.as_path();
        while !existing.exists() {
            match existing.parent() {
                Some(parent) => existing = parent,
                None => break,
            }
        }
        let resolved = existing
            .canonicalize()
            .map_err(|e| ReaderError(format!("'{key}' in bucket '{bucket}': {e}")))?;
        if !resolved.starts_with(&root) {
            return Err(ReaderError(format!(
                "The key '{key}' leads outside bucket '{bucket}'"
            )));
        }
        if must_exist && !path.is_file() {
            return Err(ReaderError(format!(
                "The key '{key}' does not exist in bucket '{bucket}'"
            )));
        }
        Ok(path)
    }
}

/// The files or directory an ItemReader reads (lineage): the object of
/// `s3:getObject` (an inventory's manifest included), the bucket's
/// directory under the prefix of `s3:listObjectsV2`. Nothing for a reader
/// that cannot be resolved (the Map Run fails on it anyway).
pub fn read_paths(spec: &ReaderSpec, buckets: &Buckets) -> Vec<PathBuf> {
    let param = |name: &str| spec.parameters.get(name).and_then(Value::as_str);
    match (spec.resource.as_str(), param("Bucket")) {
        ("arn:aws:states:::s3:getObject", Some(bucket)) => param("Key")
            .and_then(|key| buckets.resolve(bucket, key, true).ok())
            .into_iter()
            .collect(),
        ("arn:aws:states:::s3:listObjectsV2", Some(bucket)) => buckets
            .root(bucket)
            .ok()
            .map(|root| match param("Prefix").filter(|p| !p.is_empty()) {
                Some(prefix) => root.join(prefix),
                None => root,
            })
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

/// Items one at a time.
pub type Items = Box<dyn Iterator<Item = Result<Value, ReaderError>> + Send>;

/// Opens the reader an ItemReader describes.
pub fn open(spec: &ReaderSpec, buckets: &Buckets) -> Result<Items, ReaderError> {
    let param = |name: &str| -> Result<String, ReaderError> {
        match spec.parameters.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(ReaderError(format!(
                "The ItemReader's parameters need a {name} string"
            ))),
        }
    };
    let resource = spec.resource.as_str();
    let items: Items = match resource {
        "arn:aws:states:::s3:getObject" => {
            let bucket = param("Bucket")?;
            let key = param("Key")?;
            let path = buckets.resolve(&bucket, &key, true)?;
            let file = File::open(&path).map_err(|e| {
                ReaderError(format!("Cannot read '{key}' in bucket '{bucket}': {e}"))
            })?;
            let input = BufReader::with_capacity(64 * 1024, file);
            match spec.input_type.as_deref() {
                Some("MANIFEST") => Box::new(inventory(input, buckets, &bucket)?),
                _ => read_items(input, spec)?,
            }
        }
        "arn:aws:states:::s3:listObjectsV2" => {
            let bucket = param("Bucket")?;
            let prefix = match spec.parameters.get("Prefix") {
                Some(Value::String(p)) => p.clone(),
                _ => String::new(),
            };
            Box::new(listing(buckets.root(&bucket)?, prefix)?)
        }
        other => {
            return Err(ReaderError(format!(
                "The ItemReader resource '{other}' is not supported (arn:aws:states:::s3:getObject and arn:aws:states:::s3:listObjectsV2 are)"
            )));
        }
    };
    Ok(match spec.max_items {
        Some(n) if n > 0 => Box::new(items.take(usize::try_from(n).unwrap_or(usize::MAX))),
        _ => items,
    })
}

/// The items of one object's content, read as the ItemReader's InputType
/// says: CSV, JSON (an array) or JSONL (MANIFEST names other objects, so it
/// goes through [`open`]). Public so the fuzzer can feed it bytes.
pub fn read_items<R: BufRead + Send + 'static>(
    input: R,
    spec: &ReaderSpec,
) -> Result<Items, ReaderError> {
    Ok(match spec.input_type.as_deref().unwrap_or("JSON") {
        "CSV" => Box::new(CsvItems::new(input, spec)?),
        "JSON" => Box::new(JsonArrayItems::new(input)),
        "JSONL" => Box::new(JsonLines::new(input)),
        other => {
            return Err(ReaderError(format!(
                "The InputType '{other}' is not one of CSV, JSON, JSONL, MANIFEST"
            )));
        }
    })
}

// --- MANIFEST (S3 Inventory) ---

/// The largest inventory manifest.json read (it lists files, not items).
const MAX_MANIFEST_BYTES: u64 = 16 * 1024 * 1024;

/// The rows of every CSV file an S3 Inventory `manifest.json` lists, in
/// order, keyed by its `fileSchema`. The files are looked up in the
/// manifest's `destinationBucket` (`arn:aws:s3:::NAME`, mapped like any
/// bucket), or the manifest's own bucket when it names none.
fn inventory<R: Read>(
    input: R,
    buckets: &Buckets,
    own_bucket: &str,
) -> Result<impl Iterator<Item = Result<Value, ReaderError>> + Send + use<R>, ReaderError> {
    let mut text = String::new();
    input
        .take(MAX_MANIFEST_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| ReaderError(format!("The manifest cannot be read: {e}")))?;
    if text.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(ReaderError(format!(
            "The manifest is larger than {MAX_MANIFEST_BYTES} bytes"
        )));
    }
    let manifest: Value = serde_json::from_str(&text)
        .map_err(|e| ReaderError(format!("The manifest is not JSON: {e}")))?;
    match manifest.get("fileFormat").and_then(Value::as_str) {
        Some("CSV") => {}
        other => {
            return Err(ReaderError(format!(
                "The manifest's fileFormat is {other:?}: only CSV inventories are read"
            )));
        }
    }
    let headers: Vec<String> = manifest
        .get("fileSchema")
        .and_then(Value::as_str)
        .ok_or_else(|| ReaderError("The manifest has no fileSchema".to_owned()))?
        .split(',')
        .map(|h| h.trim().to_owned())
        .collect();
    let bucket = manifest
        .get("destinationBucket")
        .and_then(Value::as_str)
        .map_or(own_bucket, |b| b.trim_start_matches("arn:aws:s3:::"))
        .to_owned();
    let mut paths = Vec::new();
    for file in manifest
        .get("files")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = file
            .get("key")
            .and_then(Value::as_str)
            .ok_or_else(|| ReaderError("A file of the manifest has no key".to_owned()))?;
        if key.ends_with(".gz") {
            return Err(ReaderError(format!(
                "The inventory file '{key}' is gzip-compressed: stepline reads uncompressed CSV inventories"
            )));
        }
        paths.push((key.to_owned(), buckets.resolve(&bucket, key, true)?));
    }
    let spec = ReaderSpec {
        resource: String::new(),
        parameters: Value::Null,
        input_type: Some("CSV".into()),
        csv_header_location: Some("GIVEN".into()),
        csv_headers: Some(headers),
        csv_delimiter: None,
        max_items: None,
    };
    let items = paths.into_iter().flat_map(move |(key, path)| {
        let rows: Items = match File::open(&path) {
            Ok(file) => match CsvItems::new(BufReader::new(file), &spec) {
                Ok(rows) => {
                    let key = key.clone();
                    Box::new(rows.map(move |r| {
                        r.map_err(|e| ReaderError(format!("Inventory file '{key}': {}", e.0)))
                    }))
                }
                Err(e) => Box::new(std::iter::once(Err(e))),
            },
            Err(e) => Box::new(std::iter::once(Err(ReaderError(format!(
                "Cannot read the inventory file '{key}': {e}"
            ))))),
        };
        rows
    });
    Ok(items)
}

// --- CSV ---

/// CSV rows as objects keyed by the header (the first row, or CSVHeaders),
/// RFC 4180 quoting (`"a ""b"""`, delimiters and newlines inside quotes).
/// Every value is a string, as AWS gives them.
struct CsvItems<R> {
    input: R,
    delimiter: u8,
    headers: Vec<String>,
    /// The row number of the next record (1-based, the header included).
    row: u64,
    done: bool,
}

impl<R: BufRead> CsvItems<R> {
    fn new(mut input: R, spec: &ReaderSpec) -> Result<Self, ReaderError> {
        let delimiter = match spec.csv_delimiter.as_deref().unwrap_or("COMMA") {
            "COMMA" => b',',
            "PIPE" => b'|',
            "SEMICOLON" => b';',
            "SPACE" => b' ',
            "TAB" => b'\t',
            other => {
                return Err(ReaderError(format!(
                    "CSVDelimiter '{other}' is not one of COMMA, PIPE, SEMICOLON, SPACE, TAB"
                )));
            }
        };
        let mut row = 1;
        let headers = match spec.csv_header_location.as_deref().unwrap_or("FIRST_ROW") {
            "GIVEN" => spec.csv_headers.clone().ok_or_else(|| {
                ReaderError("CSVHeaderLocation GIVEN needs CSVHeaders".to_owned())
            })?,
            _ => {
                let first = read_record(&mut input, delimiter, 1)?;
                row = 2;
                first.ok_or_else(|| {
                    ReaderError("The CSV file is empty: it has no header row".to_owned())
                })?
            }
        };
        Ok(Self {
            input,
            delimiter,
            headers,
            row,
            done: false,
        })
    }
}

impl<R: BufRead> Iterator for CsvItems<R> {
    type Item = Result<Value, ReaderError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let row = self.row;
        self.row += 1;
        let fields = match read_record(&mut self.input, self.delimiter, row) {
            Ok(Some(f)) => f,
            Ok(None) => {
                self.done = true;
                return None;
            }
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        if fields.len() != self.headers.len() {
            self.done = true;
            return Some(Err(ReaderError(format!(
                "CSV row {row} has {} field(s) but the header has {}",
                fields.len(),
                self.headers.len()
            ))));
        }
        let object: Map<String, Value> = self
            .headers
            .iter()
            .cloned()
            .zip(fields.into_iter().map(Value::String))
            .collect();
        Some(Ok(Value::Object(object)))
    }
}

/// One CSV record, or `None` at the end of the input. Blank lines are
/// skipped. `row` only names the record in errors.
fn read_record<R: BufRead>(
    input: &mut R,
    delimiter: u8,
    row: u64,
) -> Result<Option<Vec<String>>, ReaderError> {
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = read_line_bounded(input, &mut line)
            .map_err(|e| ReaderError(format!("CSV row {row}: {e}")))?;
        if n == 0 {
            return Ok(None);
        }
        if !line.iter().all(|b| *b == b'\n' || *b == b'\r') {
            break;
        }
    }
    let mut fields = Vec::new();
    let mut field = Vec::new();
    let mut quoted = false;
    let mut at_start = true;
    let mut i = 0;
    loop {
        if i >= line.len() {
            if quoted {
                // A newline inside quotes: the record goes on.
                let n = read_line_bounded(input, &mut line)
                    .map_err(|e| ReaderError(format!("CSV row {row}: {e}")))?;
                if n == 0 {
                    return Err(ReaderError(format!(
                        "CSV row {row} has a quoted field that is never closed"
                    )));
                }
                continue;
            }
            break;
        }
        let b = line[i];
        i += 1;
        if quoted {
            if b == b'"' {
                if line.get(i) == Some(&b'"') {
                    field.push(b'"');
                    i += 1;
                } else {
                    quoted = false;
                }
            } else {
                field.push(b);
            }
            continue;
        }
        match b {
            b'"' if at_start => {
                quoted = true;
                at_start = false;
            }
            b'\n' => break,
            b'\r' if line.get(i) == Some(&b'\n') => {}
            b if b == delimiter => {
                fields.push(utf8(std::mem::take(&mut field), row)?);
                at_start = true;
            }
            b'"' => {
                return Err(ReaderError(format!(
                    "CSV row {row} has a quote inside an unquoted field"
                )));
            }
            b => {
                field.push(b);
                at_start = false;
            }
        }
    }
    fields.push(utf8(field, row)?);
    Ok(Some(fields))
}

fn utf8(bytes: Vec<u8>, row: u64) -> Result<String, ReaderError> {
    String::from_utf8(bytes).map_err(|_| ReaderError(format!("CSV row {row} is not valid UTF-8")))
}

/// Appends one line (with its `\n`) to `buf`, refusing lines that would
/// make `buf` exceed [`MAX_ITEM_BYTES`].
fn read_line_bounded<R: BufRead>(input: &mut R, buf: &mut Vec<u8>) -> Result<usize, String> {
    let start = buf.len();
    let limit = (MAX_ITEM_BYTES + 1).saturating_sub(start) as u64;
    let n = input
        .by_ref()
        .take(limit)
        .read_until(b'\n', buf)
        .map_err(|e| e.to_string())?;
    if buf.len() > MAX_ITEM_BYTES {
        return Err(format!("longer than {MAX_ITEM_BYTES} bytes"));
    }
    Ok(n)
}

// --- JSON Lines ---

struct JsonLines<R> {
    input: R,
    line: u64,
    done: bool,
}

impl<R> JsonLines<R> {
    fn new(input: R) -> Self {
        Self {
            input,
            line: 0,
            done: false,
        }
    }
}

impl<R: BufRead> Iterator for JsonLines<R> {
    type Item = Result<Value, ReaderError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut buf = Vec::new();
        while !self.done {
            buf.clear();
            self.line += 1;
            let line = self.line;
            match read_line_bounded(&mut self.input, &mut buf) {
                Ok(0) => self.done = true,
                Ok(_) if buf.iter().all(u8::is_ascii_whitespace) => {}
                Ok(_) => {
                    return Some(serde_json::from_slice(&buf).map_err(|e| {
                        self.done = true;
                        ReaderError(format!("JSONL line {line} is not JSON: {e}"))
                    }));
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(ReaderError(format!("JSONL line {line}: {e}"))));
                }
            }
        }
        None
    }
}

// --- JSON array ---

/// The elements of a top-level JSON array, one at a time: a scanner finds
/// where each element ends (tracking strings and nesting), then serde_json
/// parses that element alone.
struct JsonArrayItems<R> {
    input: R,
    /// 0: before `[`; 1: inside; 2: done.
    phase: u8,
    index: u64,
}

impl<R: BufRead> JsonArrayItems<R> {
    fn new(input: R) -> Self {
        Self {
            input,
            phase: 0,
            index: 0,
        }
    }

    fn next_byte(&mut self) -> Result<Option<u8>, ReaderError> {
        let buf = self
            .input
            .fill_buf()
            .map_err(|e| ReaderError(format!("JSON input: {e}")))?;
        let Some(&b) = buf.first() else {
            return Ok(None);
        };
        self.input.consume(1);
        Ok(Some(b))
    }

    fn next_non_space(&mut self) -> Result<Option<u8>, ReaderError> {
        loop {
            match self.next_byte()? {
                Some(b) if b.is_ascii_whitespace() => {}
                other => return Ok(other),
            }
        }
    }

    fn element(&mut self) -> Result<Option<Value>, ReaderError> {
        if self.phase == 0 {
            match self.next_non_space()? {
                Some(b'[') => self.phase = 1,
                None => {
                    return Err(ReaderError(
                        "The JSON file is empty: it must hold an array".to_owned(),
                    ));
                }
                Some(_) => {
                    return Err(ReaderError(
                        "The JSON file must hold an array of items".to_owned(),
                    ));
                }
            }
            match self.next_non_space()? {
                Some(b']') => return Ok(None),
                Some(b) => return self.scan(b).map(Some),
                None => return Err(self.truncated()),
            }
        }
        match self.next_non_space()? {
            Some(b']') => Ok(None),
            Some(b',') => match self.next_non_space()? {
                Some(b) => self.scan(b).map(Some),
                None => Err(self.truncated()),
            },
            Some(_) => Err(ReaderError(format!(
                "JSON element {} is followed by something other than ',' or ']'",
                self.index
            ))),
            None => Err(self.truncated()),
        }
    }

    fn truncated(&self) -> ReaderError {
        ReaderError(format!(
            "The JSON array ends without ']' after element {}",
            self.index
        ))
    }

    /// Reads one element starting with `first` and parses it.
    fn scan(&mut self, first: u8) -> Result<Value, ReaderError> {
        let index = self.index;
        self.index += 1;
        let mut buf = vec![first];
        let mut depth: i64 = match first {
            b'{' | b'[' => 1,
            _ => 0,
        };
        let mut in_string = first == b'"';
        let mut escaped = false;
        let scalar = depth == 0 && !in_string;
        loop {
            if depth == 0 && !in_string && !scalar {
                break;
            }
            if depth == 0 && !in_string && scalar {
                // A number, true, false or null: ends before , ] or space.
                let peek = self
                    .input
                    .fill_buf()
                    .map_err(|e| ReaderError(format!("JSON input: {e}")))?;
                match peek.first() {
                    Some(b) if b.is_ascii_alphanumeric() || b"+-.".contains(b) => {}
                    _ => break,
                }
            }
            let Some(b) = self.next_byte()? else {
                return Err(self.truncated());
            };
            buf.push(b);
            if buf.len() > MAX_ITEM_BYTES {
                return Err(ReaderError(format!(
                    "JSON element {index} is larger than {MAX_ITEM_BYTES} bytes"
                )));
            }
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => depth -= 1,
                _ => {}
            }
        }
        serde_json::from_slice(&buf)
            .map_err(|e| ReaderError(format!("JSON element {index} is not valid JSON: {e}")))
    }
}

impl<R: BufRead> Iterator for JsonArrayItems<R> {
    type Item = Result<Value, ReaderError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.phase == 2 {
            return None;
        }
        match self.element() {
            Ok(Some(v)) => Some(Ok(v)),
            Ok(None) => {
                self.phase = 2;
                None
            }
            Err(e) => {
                self.phase = 2;
                Some(Err(e))
            }
        }
    }
}

// --- listObjectsV2 ---

/// The files under a bucket's directory whose key starts with `prefix`, in
/// key order, as ListObjectsV2 describes them. Symlinks are not followed.
/// Directories are read one at a time (a stack of pending ones), so a
/// large tree is never held whole.
fn listing(
    root: PathBuf,
    prefix: String,
) -> Result<impl Iterator<Item = Result<Value, ReaderError>> + Send, ReaderError> {
    struct Walk {
        root: PathBuf,
        prefix: String,
        /// Entries still to visit, sorted descending so `pop` gives the next key.
        pending: Vec<PathBuf>,
    }
    impl Walk {
        fn push_dir(&mut self, dir: &Path) -> Result<(), ReaderError> {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(|e| ReaderError(format!("Cannot list {}: {e}", dir.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort_by(|a, b| b.cmp(a));
            self.pending.extend(entries);
            Ok(())
        }
    }
    impl Iterator for Walk {
        type Item = Result<Value, ReaderError>;
        fn next(&mut self) -> Option<Self::Item> {
            while let Some(path) = self.pending.pop() {
                let meta = match std::fs::symlink_metadata(&path) {
                    Ok(m) => m,
                    Err(_) => continue,
                };
                let Ok(rel) = path.strip_prefix(&self.root) else {
                    continue;
                };
                let key = rel.to_string_lossy().replace('\\', "/");
                if meta.is_dir() {
                    // Only directories that can hold keys with the prefix.
                    let dir_key = format!("{key}/");
                    if dir_key.starts_with(&self.prefix) || self.prefix.starts_with(&dir_key) {
                        if let Err(e) = self.push_dir(&path) {
                            return Some(Err(e));
                        }
                    }
                    continue;
                }
                if !meta.is_file() || !key.starts_with(&self.prefix) {
                    continue;
                }
                let modified = meta
                    .modified()
                    .ok()
                    .map(chrono::DateTime::<chrono::Utc>::from)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
                return Some(Ok(json!({
                    "Etag": format!("\"{:x}-{}\"", meta.len(), modified.as_deref().unwrap_or_default().len()),
                    "Key": key,
                    "LastModified": modified,
                    "Size": meta.len(),
                    "StorageClass": "STANDARD",
                })));
            }
            None
        }
    }
    let mut walk = Walk {
        root: root.clone(),
        prefix,
        pending: Vec::new(),
    };
    walk.push_dir(&root)?;
    Ok(walk)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(input_type: &str) -> ReaderSpec {
        ReaderSpec {
            resource: "arn:aws:states:::s3:getObject".into(),
            parameters: json!({}),
            input_type: Some(input_type.into()),
            csv_header_location: None,
            csv_headers: None,
            csv_delimiter: None,
            max_items: None,
        }
    }

    fn all(
        items: impl Iterator<Item = Result<Value, ReaderError>>,
    ) -> Result<Vec<Value>, ReaderError> {
        items.collect()
    }

    #[test]
    fn csv_quotes_delimiters_and_newlines() {
        let text = "id,name,note\n1,\"Smith, J\",\"said \"\"hi\"\"\"\n\n2,Lee,\"two\nlines\"\r\n";
        let items = all(CsvItems::new(text.as_bytes(), &spec("CSV")).unwrap()).unwrap();
        assert_eq!(
            items,
            vec![
                json!({"id": "1", "name": "Smith, J", "note": "said \"hi\""}),
                json!({"id": "2", "name": "Lee", "note": "two\nlines"}),
            ]
        );
    }

    #[test]
    fn csv_given_headers_and_each_delimiter() {
        for (name, d) in [
            ("PIPE", '|'),
            ("SEMICOLON", ';'),
            ("SPACE", ' '),
            ("TAB", '\t'),
        ] {
            let mut s = spec("CSV");
            s.csv_header_location = Some("GIVEN".into());
            s.csv_headers = Some(vec!["a".into(), "b".into()]);
            s.csv_delimiter = Some(name.into());
            let text = format!("1{d}2\n3{d}4\n");
            let items = all(CsvItems::new(text.as_bytes(), &s).unwrap()).unwrap();
            assert_eq!(
                items,
                vec![json!({"a": "1", "b": "2"}), json!({"a": "3", "b": "4"})]
            );
        }
    }

    #[test]
    fn csv_errors_name_the_row() {
        let text = "a,b\n1,2\n3\n";
        let err = all(CsvItems::new(text.as_bytes(), &spec("CSV")).unwrap()).unwrap_err();
        assert_eq!(err.0, "CSV row 3 has 1 field(s) but the header has 2");
        let text = "a,b\n1,\"2\n";
        let err = all(CsvItems::new(text.as_bytes(), &spec("CSV")).unwrap()).unwrap_err();
        assert_eq!(err.0, "CSV row 2 has a quoted field that is never closed");
        let err = CsvItems::new(&b""[..], &spec("CSV")).err().unwrap();
        assert!(err.0.contains("empty"), "{err}");
    }

    #[test]
    fn json_arrays_stream_elements() {
        let text =
            r#" [ {"a": "x]y", "b": [1, {"c": "\"}"}]}, 12, -3.5e2 , "s", true, null, [] ] "#;
        let items = all(JsonArrayItems::new(text.as_bytes())).unwrap();
        assert_eq!(
            items,
            vec![
                json!({"a": "x]y", "b": [1, {"c": "\"}"}]}),
                json!(12),
                json!(-350.0),
                json!("s"),
                json!(true),
                json!(null),
                json!([]),
            ]
        );
        assert_eq!(
            all(JsonArrayItems::new(&b"[]"[..])).unwrap(),
            Vec::<Value>::new()
        );
        let err = all(JsonArrayItems::new(&b"[1, {\"a\": }]"[..])).unwrap_err();
        assert!(
            err.0.starts_with("JSON element 1 is not valid JSON"),
            "{err}"
        );
        let err = all(JsonArrayItems::new(&b"[1, 2"[..])).unwrap_err();
        assert!(err.0.contains("without ']'"), "{err}");
        let err = all(JsonArrayItems::new(&b"{}"[..])).unwrap_err();
        assert!(err.0.contains("array"), "{err}");
    }

    #[test]
    fn json_lines_name_the_line() {
        let text = "{\"a\":1}\n\n[2]\n{bad\n";
        let mut it = JsonLines::new(text.as_bytes());
        assert_eq!(it.next().unwrap().unwrap(), json!({"a": 1}));
        assert_eq!(it.next().unwrap().unwrap(), json!([2]));
        let err = it.next().unwrap().unwrap_err();
        assert!(err.0.starts_with("JSONL line 4 is not JSON"), "{err}");
        assert!(it.next().is_none());
    }

    #[test]
    fn an_inventory_manifest_lists_its_csv_files_rows() {
        let dir = std::env::temp_dir().join(format!("stepline-inventory-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("inv")).unwrap();
        std::fs::write(dir.join("inv/a.csv"), "src,k1.txt,10\nsrc,k2.txt,20\n").unwrap();
        std::fs::write(dir.join("inv/b.csv"), "src,\"k,3.txt\",30\n").unwrap();
        std::fs::write(
            dir.join("manifest.json"),
            r#"{"sourceBucket": "src", "destinationBucket": "arn:aws:s3:::b", "fileFormat": "CSV",
                "fileSchema": "Bucket, Key, Size", "files": [{"key": "inv/a.csv"}, {"key": "inv/b.csv"}]}"#,
        )
        .unwrap();
        let buckets = Buckets::new(BTreeMap::from([("b".to_owned(), dir.clone())]));
        let mut s = spec("MANIFEST");
        s.parameters = json!({"Bucket": "b", "Key": "manifest.json"});
        let items = all(open(&s, &buckets).unwrap()).unwrap();
        assert_eq!(
            items,
            vec![
                json!({"Bucket": "src", "Key": "k1.txt", "Size": "10"}),
                json!({"Bucket": "src", "Key": "k2.txt", "Size": "20"}),
                json!({"Bucket": "src", "Key": "k,3.txt", "Size": "30"}),
            ]
        );
        std::fs::write(
            dir.join("gz.json"),
            r#"{"fileFormat": "CSV", "fileSchema": "Key", "files": [{"key": "x.csv.gz"}]}"#,
        )
        .unwrap();
        s.parameters = json!({"Bucket": "b", "Key": "gz.json"});
        let err = open(&s, &buckets).err().unwrap();
        assert!(err.0.contains("gzip"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn keys_cannot_leave_the_bucket() {
        let dir = std::env::temp_dir().join(format!("stepline-buckets-{}", std::process::id()));
        let inside = dir.join("data");
        std::fs::create_dir_all(&inside).unwrap();
        std::fs::write(inside.join("a.json"), "[]").unwrap();
        std::fs::write(dir.join("secret.json"), "[]").unwrap();
        #[cfg(unix)]
        let _ = std::os::unix::fs::symlink(dir.join("secret.json"), inside.join("link.json"));
        let buckets = Buckets::new(BTreeMap::from([("b".to_owned(), inside.clone())]));
        assert!(buckets.resolve("b", "a.json", true).is_ok());
        for bad in ["../secret.json", "/etc/passwd", "", "x/../../secret.json"] {
            assert!(buckets.resolve("b", bad, true).is_err(), "{bad}");
        }
        #[cfg(unix)]
        assert!(buckets.resolve("b", "link.json", true).is_err());
        assert!(buckets.resolve("nope", "a.json", true).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
