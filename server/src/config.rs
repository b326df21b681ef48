//! The operator's configuration file, stepline.toml: where the server
//! listens and keeps its data, the region and account in its ARNs, and what
//! tasks may reach (`[tasks]`, see `stepline_engine::tasks::config`).
//!
//! Unknown keys and wrong types are errors with the file's line and column;
//! command-line flags override the file. The same shape is described for
//! editors by schemas/stepline.config.schema.json.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use stepline_engine::tasks::config::TaskConfig;

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub tasks: TaskConfig,
    #[serde(default)]
    pub triggers: TriggersConfig,
}

/// `[triggers]`: the directories file triggers may watch, and the
/// triggers defined here (`[[triggers.define]]`, see docs/triggers.md).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggersConfig {
    #[serde(default)]
    pub file_roots: Vec<PathBuf>,
    #[serde(default)]
    pub define: Vec<crate::triggers::TriggerSpec>,
}

/// `[server]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub region: Option<String>,
    pub account: Option<String>,
}

/// Reads and checks `path`. The error is ready to print: file, line,
/// column and what is wrong.
pub fn load(path: &Path) -> Result<Config, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}:{e}", path.display()))
}

/// Parses and checks the text of a configuration file.
pub fn parse(text: &str) -> Result<Config, String> {
    let config: Config = toml::from_str(text).map_err(|e| {
        let (line, column) = e
            .span()
            .map_or((1, 1), |span| line_column(text, span.start));
        format!("{line}:{column}: {}", e.message().trim())
    })?;
    check(&config)?;
    Ok(config)
}

/// Rules serde cannot say.
fn check(config: &Config) -> Result<(), String> {
    if let Some(account) = &config.server.account {
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "server.account: '{account}' is not an AWS account id (12 digits)"
            ));
        }
    }
    if let Some(region) = &config.server.region {
        let ok = !region.is_empty()
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err(format!(
                "server.region: '{region}' is not a region name (like us-east-1)"
            ));
        }
    }
    for (name, process) in &config.tasks.processes {
        if !process.command.is_absolute() {
            return Err(format!(
                "tasks.processes.{name}.command: '{}' must be an absolute path (no PATH lookup, no shell)",
                process.command.display()
            ));
        }
    }
    for prefix in &config.tasks.http.allow {
        if prefix != "*" && reqwest_like_url(prefix).is_none() {
            return Err(format!(
                "tasks.http.allow: '{prefix}' is not a URL prefix like https://api.example.com/ (or * for anywhere)"
            ));
        }
    }
    let mut names = std::collections::HashSet::new();
    for spec in &config.triggers.define {
        if !names.insert(spec.name.as_str()) {
            return Err(format!("triggers.define: '{}' is defined twice", spec.name));
        }
        // Everything but the directory, which is checked at start against
        // the roots as they are then.
        let mut check = spec.clone();
        check.directory = None;
        if let Err(e) = check.compile(&[]) {
            if !(spec.directory.is_some() && e.starts_with("directory:")) {
                return Err(format!("triggers.define '{}': {e}", spec.name));
            }
        }
    }
    for (function, mapping) in &config.tasks.lambda {
        if let stepline_engine::tasks::config::LambdaConfig::Process(name) = mapping {
            if !config.tasks.processes.contains_key(name) {
                return Err(format!(
                    "tasks.lambda.{function}: the process '{name}' is not registered under [tasks.processes]"
                ));
            }
        }
    }
    Ok(())
}

/// `scheme://host...` with an http(s) scheme and a host.
fn reqwest_like_url(text: &str) -> Option<()> {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))?;
    (!rest.is_empty() && !rest.starts_with('/')).then_some(())
}

/// 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configuration_is_valid() {
        let text = include_str!("../../docs/stepline.example.toml");
        let config = parse(text).expect("the example parses");
        assert!(config.tasks.processes.contains_key("word-count"));
        assert_eq!(config.server.region.as_deref(), Some("us-east-1"));
        assert_eq!(config.triggers.define.len(), 2);
    }

    #[test]
    fn triggers_are_checked() {
        for (text, words) in [
            (
                "[[triggers.define]]\nname = \"a\"\nkind = \"schedule\"\nstate_machine = \"m\"\nschedule = \"rate(2 hour)\"\n",
                "triggers.define 'a': schedule:",
            ),
            (
                "[[triggers.define]]\nname = \"a\"\nkind = \"webhook\"\nstate_machine = \"m\"\n[[triggers.define]]\nname = \"a\"\nkind = \"webhook\"\nstate_machine = \"m\"\n",
                "defined twice",
            ),
            ("[triggers]\nroots = []\n", "unknown field `roots`"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(words), "{text:?} gave {e}");
        }
        // A file trigger's directory is checked at start, against the roots.
        let text = "[[triggers.define]]\nname = \"f\"\nkind = \"file\"\nstate_machine = \"m\"\ndirectory = \"/nowhere\"\nglob = \"*.csv\"\n";
        assert!(parse(text).is_ok());
    }

    #[test]
    fn mistakes_are_reported_with_line_and_column() {
        let cases = [
            ("[server]\nlisten = 5\n", "2:10:"),
            ("[server]\nport = 8083\n", "2:1:"),
            (
                "[tasks.processes.x]\ncommand = \"/bin/true\"\nargz = []\n",
                "3:1:",
            ),
            ("[tasks.http]\nallow = \"*\"\n", "2:9:"),
            ("[tasks.processes.x]\nargs = []\n", "1:1:"),
            ("x = \n", "1:5:"),
        ];
        for (text, at) in cases {
            let e = parse(text).unwrap_err();
            assert!(e.starts_with(at), "{text:?} gave {e}");
        }
    }

    #[test]
    fn rules_beyond_types() {
        for (text, words) in [
            ("[server]\naccount = \"123\"\n", "12 digits"),
            ("[server]\nregion = \"US East\"\n", "region name"),
            ("[tasks.processes.x]\ncommand = \"sh\"\n", "absolute path"),
            ("[tasks.http]\nallow = [\"example.com\"]\n", "URL prefix"),
            (
                "[tasks.lambda]\nf = { process = \"nope\" }\n",
                "not registered",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(words), "{text:?} gave {e}");
        }
    }
}
