//! `stepline validate FILE...`: every problem of every file, as
//! `FILE:LINE:COL: error[CODE]: message (at POINTER)` lines or as JSON.

use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;

use serde_json::json;
use stepline_language::asl::{self, Diagnostic, Validation};

use super::EXIT_USAGE;
use super::client::{Output, OutputArg};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Definition files to check; `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    // text: one line per diagnostic, then a summary; json: one JSON
    // object per file, {"file", "result", "diagnostics"}, one per line.
    #[command(flatten)]
    output: OutputArg,
    /// The old spelling of -o.
    #[arg(long, value_enum, hide = true, conflicts_with = "output")]
    format: Option<Output>,
}

impl Args {
    fn output(&self) -> Output {
        self.format.unwrap_or(self.output.output)
    }
}

pub fn run(args: &Args, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    let output = args.output();
    let mut status = 0;
    let (mut errors, mut warnings, mut failed_files) = (0, 0, 0);
    for file in &args.files {
        let name = file.display().to_string();
        let validation = match read(file) {
            Ok(Input::Bytes(bytes)) => asl::validate(&bytes),
            Ok(Input::TooLarge(size)) => asl::too_large(size),
            Err(e) => {
                let _ = writeln!(stderr, "{name}: error: cannot read the file: {e}");
                status = EXIT_USAGE;
                continue;
            }
        };
        let file_errors = validation.errors().count();
        errors += file_errors;
        warnings += validation.diagnostics.len() - file_errors;
        if file_errors > 0 {
            failed_files += 1;
            status = status.max(1);
        }
        let _ = match output {
            Output::Text => write_text(stdout, &name, &validation),
            Output::Json => writeln!(stdout, "{}", json_report(&name, &validation)),
        };
    }
    if output == Output::Text {
        let checked = args.files.len();
        let _ = writeln!(
            stdout,
            "{checked} file{} checked: {} with errors; {errors} error{}, {warnings} warning{}",
            plural(checked),
            failed_files,
            plural(errors),
            plural(warnings)
        );
    }
    status
}

enum Input {
    Bytes(Vec<u8>),
    TooLarge(u64),
}

/// Reads at most one byte more than the limit, so a huge file is refused
/// without being loaded.
fn read(file: &PathBuf) -> std::io::Result<Input> {
    let limit = asl::MAX_DEFINITION_BYTES as u64;
    let mut bytes = Vec::new();
    if file.as_os_str() == "-" {
        std::io::stdin().take(limit + 1).read_to_end(&mut bytes)?;
    } else {
        let f = File::open(file)?;
        let size = f.metadata()?.len();
        if f.metadata()?.is_dir() {
            return Err(std::io::Error::other("it is a directory"));
        }
        if size > limit {
            return Ok(Input::TooLarge(size));
        }
        f.take(limit + 1).read_to_end(&mut bytes)?;
    }
    if bytes.len() as u64 > limit {
        return Ok(Input::TooLarge(bytes.len() as u64));
    }
    Ok(Input::Bytes(bytes))
}

/// One line per diagnostic in the shared text form (see
/// `asl::diagnostic::text_line`), after the file name.
fn write_text(out: &mut dyn Write, name: &str, validation: &Validation) -> std::io::Result<()> {
    for d in &validation.diagnostics {
        writeln!(out, "{name}:{d}")?;
    }
    Ok(())
}

fn json_report(name: &str, validation: &Validation) -> serde_json::Value {
    let result = if validation.errors().next().is_some() {
        "FAIL"
    } else {
        "OK"
    };
    json!({
        "file": name,
        "result": result,
        "diagnostics": validation.diagnostics.iter().map(json_diagnostic).collect::<Vec<_>>(),
    })
}

/// AWS's ValidateStateMachineDefinitionDiagnostic shape, plus line and column.
fn json_diagnostic(d: &Diagnostic) -> serde_json::Value {
    json!({
        "severity": d.severity.as_str(),
        "code": d.code.as_str(),
        "message": d.message,
        "location": d.pointer,
        "line": d.line,
        "column": d.column,
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
