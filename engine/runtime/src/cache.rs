//! Result caching: which task calls may be answered by a result stored
//! earlier (`[tasks.cache]` in stepline.toml), and the key they are
//! stored under.
//!
//! A rule opts a task resource in (a process, an HTTP prefix, a Lambda
//! function, an activity, or any resource as written) with a time to
//! live. The key is the SHA-256 of the resource and of the task's
//! effective input (the parameters the task receives), or of what the
//! rule's key template makes of that input, written with sorted object
//! keys so that the order of fields never changes it. The executor
//! (`executor.rs`) looks the key up before a call and, on a miss, writes
//! the result in the same batch as the TaskSucceeded it came from; the
//! purge (`engine/cache.rs`) keeps the entries within their bounds.
//!
//! Never cached: `.sync` and `.waitForTaskToken` tasks (their answer is
//! not the call's), nested executions and Map Runs, and mocked test cases.

use chrono::Duration;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use stepline_language::asl::model::{IntegrationPattern, ResourceKind};
use stepline_language::interp::TaskRequest;
use stepline_language::query::eval::{Env, SplitMix64};
use stepline_language::query::template::Template;

use crate::tasks::config::{CacheConfig, CacheRule};

/// The compiled rules and bounds of the cache. The default caches
/// nothing.
#[derive(Debug, Clone)]
pub struct TaskCache {
    rules: Vec<Rule>,
    pub max_entries: u64,
    pub max_entry_bytes: usize,
    pub purge_interval: std::time::Duration,
}

impl Default for TaskCache {
    fn default() -> Self {
        Self::new(&CacheConfig::default()).unwrap_or_else(|_| Self {
            rules: Vec::new(),
            max_entries: 0,
            max_entry_bytes: 0,
            purge_interval: std::time::Duration::from_secs(60),
        })
    }
}

#[derive(Debug, Clone)]
struct Rule {
    matcher: Matcher,
    ttl: Duration,
    key: Option<Template>,
}

#[derive(Debug, Clone)]
enum Matcher {
    Process(String),
    Http(String),
    Lambda(String),
    Activity(String),
    Resource(String),
}

/// Why `[tasks.cache]` cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("tasks.cache.rules[{index}]: {message}")]
pub struct CacheConfigError {
    pub index: usize,
    pub message: String,
}

/// Where a task's result is kept, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
    /// SHA-256, lowercase hex.
    pub key: String,
    pub ttl: Duration,
}

/// The longest time to live: ten years (a `chrono::Duration` is bounded).
const MAX_TTL_SECONDS: u64 = 10 * 366 * 24 * 3600;

impl TaskCache {
    pub fn new(config: &CacheConfig) -> Result<Self, CacheConfigError> {
        let rules = config
            .rules
            .iter()
            .enumerate()
            .map(|(index, rule)| {
                compile(rule).map_err(|message| CacheConfigError { index, message })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            rules,
            max_entries: config.max_entries,
            max_entry_bytes: config.max_entry_bytes,
            purge_interval: std::time::Duration::from_secs(config.purge_interval_seconds.max(1)),
        })
    }

    /// Whether no rule opts anything in.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() || self.max_entries == 0
    }

    /// The key of a task call's result, when a rule covers the call; `None`
    /// also when the rule's key template fails on this input (the call is
    /// then made and its result not kept).
    pub fn key_for(&self, request: &TaskRequest) -> Option<CacheKey> {
        if self.is_empty() || request.resource.pattern != IntegrationPattern::RequestResponse {
            return None;
        }
        if matches!(
            request.resource.kind,
            ResourceKind::StartExecution | ResourceKind::MapRun
        ) {
            return None;
        }
        let rule = self.rules.iter().find(|r| r.matcher.covers(request))?;
        let material = match &rule.key {
            None => request.input.clone(),
            Some(template) => {
                let variables = Map::new();
                let mut random = SplitMix64(0);
                let mut env = Env {
                    input: &request.input,
                    context: &Value::Null,
                    variables: &variables,
                    random: &mut random,
                };
                match template.evaluate(&mut env) {
                    Ok(value) => value,
                    Err(e) => {
                        tracing::debug!(error = %e, "the cache key template failed; the task is called");
                        return None;
                    }
                }
            }
        };
        let mut hash = Sha256::new();
        hash.update(request.resource.arn.as_bytes());
        hash.update(b"\n");
        hash.update(canonical(&material).to_string().as_bytes());
        Some(CacheKey {
            key: hash.finalize().iter().map(|b| format!("{b:02x}")).collect(),
            ttl: rule.ttl,
        })
    }
}

fn compile(rule: &CacheRule) -> Result<Rule, String> {
    let given: Vec<Matcher> = [
        rule.process.clone().map(Matcher::Process),
        rule.http.clone().map(Matcher::Http),
        rule.lambda.clone().map(Matcher::Lambda),
        rule.activity.clone().map(Matcher::Activity),
        rule.resource.clone().map(Matcher::Resource),
    ]
    .into_iter()
    .flatten()
    .collect();
    let matcher = match <[Matcher; 1]>::try_from(given) {
        Ok([m]) => m,
        Err(_) => {
            return Err(
                "a rule names exactly one of process, http, lambda, activity or resource".into(),
            );
        }
    };
    if rule.ttl_seconds == 0 || rule.ttl_seconds > MAX_TTL_SECONDS {
        return Err(format!(
            "ttl_seconds must be between 1 and {MAX_TTL_SECONDS}"
        ));
    }
    let key = match &rule.key {
        None => None,
        Some(value) => Some(Template::compile(value).map_err(|errors| {
            let first = errors.first().map(|e| format!("{e:?}")).unwrap_or_default();
            format!("key: the template is invalid: {first}")
        })?),
    };
    Ok(Rule {
        matcher,
        ttl: Duration::seconds(rule.ttl_seconds as i64),
        key,
    })
}

impl Matcher {
    fn covers(&self, request: &TaskRequest) -> bool {
        let resource = &request.resource;
        match (self, &resource.kind) {
            (Matcher::Process(name), ResourceKind::Process { name: n }) => name == n,
            (Matcher::Http(prefix), ResourceKind::HttpInvoke) => request
                .input
                .get("ApiEndpoint")
                .and_then(Value::as_str)
                .is_some_and(|endpoint| endpoint.starts_with(prefix.as_str())),
            (Matcher::Lambda(name), ResourceKind::LambdaFunction { name: n }) => {
                function_name(n) == name
            }
            (Matcher::Lambda(name), ResourceKind::LambdaInvoke) => request
                .input
                .get("FunctionName")
                .and_then(Value::as_str)
                .is_some_and(|f| function_name(f) == name),
            (Matcher::Activity(name), ResourceKind::Activity { name: n }) => name == n,
            (Matcher::Resource(arn), _) => *arn == resource.arn,
            _ => false,
        }
    }
}

/// A function's name from its name, partial or full ARN, without a
/// version or alias.
fn function_name(f: &str) -> &str {
    let name = f.rsplit_once(":function:").map_or(f, |(_, rest)| rest);
    name.split(':').next().unwrap_or(name)
}

/// `value` with every object's keys in sorted order (serde_json keeps
/// insertion order here), so that equal inputs hash alike.
fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), canonical(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use stepline_language::asl::model::Resource;
    use stepline_language::interp::TaskId;

    fn request(arn: &str, kind: ResourceKind, input: Value) -> TaskRequest {
        TaskRequest {
            task: TaskId(1),
            state_name: "Work".into(),
            resource: Resource {
                arn: arn.into(),
                kind,
                pattern: IntegrationPattern::RequestResponse,
            },
            input,
            timeout_seconds: None,
            heartbeat_seconds: None,
            attempt: 0,
            credentials: None,
            token: None,
            invocation: 0,
        }
    }

    fn cache(rules: Value) -> TaskCache {
        let config: CacheConfig = serde_json::from_value(json!({ "rules": rules })).unwrap();
        TaskCache::new(&config).unwrap()
    }

    fn process(input: Value) -> TaskRequest {
        request(
            "stepline:process:crawl",
            ResourceKind::Process {
                name: "crawl".into(),
            },
            input,
        )
    }

    #[test]
    fn the_key_is_the_resource_and_the_input_whatever_the_order_of_fields() {
        let c = cache(json!([{"process": "crawl", "ttl_seconds": 60}]));
        let a = c.key_for(&process(json!({"a": 1, "b": [1, {"x": 1, "y": 2}]})));
        let b = c.key_for(&process(json!({"b": [1, {"y": 2, "x": 1}], "a": 1})));
        assert!(a.is_some());
        assert_eq!(a, b);
        assert_ne!(a, c.key_for(&process(json!({"a": 2}))));
        assert_eq!(a.unwrap().ttl, Duration::seconds(60));
        // Another process is not covered.
        let other = request(
            "stepline:process:load",
            ResourceKind::Process {
                name: "load".into(),
            },
            json!({}),
        );
        assert_eq!(c.key_for(&other), None);
    }

    #[test]
    fn a_key_template_picks_what_counts() {
        let c = cache(json!([{"process": "crawl", "ttl_seconds": 60, "key": {"day.$": "$.day"}}]));
        assert_eq!(
            c.key_for(&process(json!({"day": "2026-01-01", "run": 1}))),
            c.key_for(&process(json!({"day": "2026-01-01", "run": 2})))
        );
        assert_ne!(
            c.key_for(&process(json!({"day": "2026-01-01"}))),
            c.key_for(&process(json!({"day": "2026-01-02"})))
        );
        // The template fails: no caching for this call.
        assert_eq!(c.key_for(&process(json!({"run": 1}))), None);
    }

    #[test]
    fn http_lambda_and_activity_rules_match_their_tasks() {
        let c = cache(json!([
            {"http": "http://127.0.0.1:9000/prices/", "ttl_seconds": 5},
            {"lambda": "resize", "ttl_seconds": 5},
            {"activity": "crawl", "ttl_seconds": 5},
        ]));
        let http = |endpoint: &str| {
            request(
                "arn:aws:states:::http:invoke",
                ResourceKind::HttpInvoke,
                json!({"ApiEndpoint": endpoint, "Method": "GET"}),
            )
        };
        assert!(
            c.key_for(&http("http://127.0.0.1:9000/prices/eur"))
                .is_some()
        );
        assert!(c.key_for(&http("http://127.0.0.1:9000/orders")).is_none());
        let direct = request(
            "arn:aws:lambda:us-east-1:123456789012:function:resize",
            ResourceKind::LambdaFunction {
                name: "resize".into(),
            },
            json!({}),
        );
        assert!(c.key_for(&direct).is_some());
        let invoke = |f: &str| {
            request(
                "arn:aws:states:::lambda:invoke",
                ResourceKind::LambdaInvoke,
                json!({"FunctionName": f, "Payload": {}}),
            )
        };
        assert!(
            c.key_for(&invoke(
                "arn:aws:lambda:us-east-1:1:function:resize:$LATEST"
            ))
            .is_some()
        );
        assert!(c.key_for(&invoke("other")).is_none());
        let activity = request(
            "arn:aws:states:us-east-1:123456789012:activity:crawl",
            ResourceKind::Activity {
                name: "crawl".into(),
            },
            json!({}),
        );
        assert!(c.key_for(&activity).is_some());
        // A callback task's answer is not the call's: never cached.
        let mut callback = activity.clone();
        callback.resource.pattern = IntegrationPattern::WaitForTaskToken;
        assert!(c.key_for(&callback).is_none());
    }

    #[test]
    fn bad_rules_are_named() {
        for (rules, words) in [
            (json!([{"ttl_seconds": 5}]), "exactly one of"),
            (
                json!([{"process": "a", "http": "http://x/", "ttl_seconds": 5}]),
                "exactly one of",
            ),
            (json!([{"process": "a", "ttl_seconds": 0}]), "ttl_seconds"),
            (
                json!([{"process": "a", "ttl_seconds": 5, "key": {"a.$": "not a path"}}]),
                "key: the template is invalid",
            ),
        ] {
            let config: CacheConfig = serde_json::from_value(json!({ "rules": rules })).unwrap();
            let e = TaskCache::new(&config).unwrap_err().to_string();
            assert!(e.contains(words), "{e}");
            assert!(e.starts_with("tasks.cache.rules[0]: "), "{e}");
        }
    }
}
