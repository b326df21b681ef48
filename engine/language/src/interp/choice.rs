//! Evaluating Choice conditions (JSONPath).

use std::cmp::Ordering;

use serde_json::Value;

use super::failure::Failure;
use crate::asl::model::{Condition, Operand, Operator, Source};
use crate::asl::timestamp;
use crate::cause;
use crate::query::eval::Env;
use crate::query::resolve_path;

/// Whether `condition` holds for the input in `env`.
pub fn holds(condition: &Condition, env: &mut Env<'_>) -> Result<bool, Failure> {
    match condition {
        Condition::And(rules) => {
            for rule in rules {
                if !holds(rule, env)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Condition::Or(rules) => {
            for rule in rules {
                if holds(rule, env)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Condition::Not(rule) => Ok(!holds(rule, env)?),
        Condition::Compare {
            variable,
            operator,
            operand,
        } => {
            let value = resolve_path(variable, env).map(|v| v.into_owned());
            if *operator == Operator::IsPresent {
                let expected = matches!(operand, Operand::Bool(true));
                return Ok(value.is_some() == expected);
            }
            let Some(value) = value else {
                return Err(cause::CHOICE_INVALID_PATH.failure(&[("path", variable)]));
            };
            let operand = match operand {
                Operand::Path(path) => match resolve_path(path, env) {
                    Some(v) => Resolved::Value(v.into_owned()),
                    None => {
                        return Err(cause::CHOICE_INVALID_PATH.failure(&[("path", path)]));
                    }
                },
                other => Resolved::Literal(other),
            };
            Ok(compare(*operator, &value, &operand))
        }
        // JSONata expressions are evaluated by the caller (flow/jsonata.rs, which
        // has `$states`); a literal boolean needs nothing.
        Condition::Jsonata(Source::Literal(b)) => Ok(*b),
        Condition::Jsonata(_) => Ok(false),
    }
}

enum Resolved<'a> {
    Literal(&'a Operand),
    Value(Value),
}

fn compare(operator: Operator, value: &Value, operand: &Resolved<'_>) -> bool {
    use Operator as O;
    let flag = |expected: bool, actual: bool| match operand {
        Resolved::Literal(Operand::Bool(b)) => *b == actual && expected,
        Resolved::Value(Value::Bool(b)) => *b == actual && expected,
        _ => false,
    };
    match operator {
        O::IsNull => flag(true, value.is_null()),
        O::IsPresent => flag(true, true),
        O::IsNumeric => flag(true, value.is_number()),
        O::IsString => flag(true, value.is_string()),
        O::IsBoolean => flag(true, value.is_boolean()),
        O::IsTimestamp => flag(true, value.as_str().and_then(timestamp::parse).is_some()),
        O::StringMatches => match (value, operand) {
            (Value::String(s), Resolved::Literal(Operand::Pattern(p))) => p.matches(s),
            _ => false,
        },
        O::StringEquals
        | O::StringLessThan
        | O::StringGreaterThan
        | O::StringLessThanEquals
        | O::StringGreaterThanEquals => {
            let right = match operand {
                Resolved::Literal(Operand::String(s)) => s.as_str(),
                Resolved::Value(Value::String(s)) => s.as_str(),
                _ => return false,
            };
            match value {
                Value::String(left) => ordered(operator, left.as_str().cmp(right)),
                _ => false,
            }
        }
        O::NumericEquals
        | O::NumericLessThan
        | O::NumericGreaterThan
        | O::NumericLessThanEquals
        | O::NumericGreaterThanEquals => {
            let right = match operand {
                Resolved::Literal(Operand::Number(n)) => *n,
                Resolved::Value(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
                _ => return false,
            };
            match value.as_f64().and_then(|left| left.partial_cmp(&right)) {
                Some(ordering) => ordered(operator, ordering),
                None => false,
            }
        }
        O::BooleanEquals => {
            let right = match operand {
                Resolved::Literal(Operand::Bool(b)) => *b,
                Resolved::Value(Value::Bool(b)) => *b,
                _ => return false,
            };
            value.as_bool() == Some(right)
        }
        O::TimestampEquals
        | O::TimestampLessThan
        | O::TimestampGreaterThan
        | O::TimestampLessThanEquals
        | O::TimestampGreaterThanEquals => {
            let right = match operand {
                Resolved::Literal(Operand::Timestamp(t)) => *t,
                Resolved::Value(Value::String(s)) => match timestamp::parse(s) {
                    Some(t) => t,
                    None => return false,
                },
                _ => return false,
            };
            match value.as_str().and_then(timestamp::parse) {
                Some(left) => ordered(operator, left.cmp(&right)),
                None => false,
            }
        }
    }
}

/// Whether `ordering` satisfies the comparison `operator` names.
fn ordered(operator: Operator, ordering: Ordering) -> bool {
    let name = operator.name();
    if name.ends_with("LessThanEquals") {
        ordering != Ordering::Greater
    } else if name.ends_with("GreaterThanEquals") {
        ordering != Ordering::Less
    } else if name.ends_with("LessThan") {
        ordering == Ordering::Less
    } else if name.ends_with("GreaterThan") {
        ordering == Ordering::Greater
    } else {
        ordering == Ordering::Equal
    }
}
