//! Choice states: rules, conditions and comparison operators.

use super::Builder;
use super::fields::Ctx;
use crate::asl::diagnostic::Code;
use crate::asl::model::{
    Choice, ChoiceRule, Condition, Operand, Operator, QueryLanguage, ScopeId, Source, StateId,
    WildcardPattern,
};
use crate::asl::source::NodeValue;
use crate::asl::timestamp;

impl Builder<'_> {
    pub(super) fn choice(&mut self, cx: &Ctx<'_>, scope: ScopeId) -> Choice {
        let pointer = cx.ptr("Choices");
        let rules = cx
            .member("Choices")
            .map(|m| m.value.items())
            .unwrap_or_default();
        let choices = rules
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let rx = Ctx {
                    node,
                    pointer: format!("{pointer}/{i}"),
                    lang: cx.lang,
                };
                self.top_rule(&rx, scope)
            })
            .collect();
        let default = cx
            .str("Default")
            .map(|name| self.resolve(scope, &cx.ptr("Default"), "Default", name));
        Choice { choices, default }
    }

    fn top_rule(&mut self, rx: &Ctx<'_>, scope: ScopeId) -> ChoiceRule {
        let next = match rx.str("Next") {
            Some(name) => self.resolve(scope, &rx.ptr("Next"), "Next", name),
            None => {
                if !rx.has("Next") && matches!(rx.node.value, NodeValue::Object(_)) {
                    self.error(
                        Code::InvalidChoiceRule,
                        &rx.pointer,
                        "each rule in Choices needs \"Next\": the state to go to when the rule matches",
                    );
                }
                StateId(0)
            }
        };
        if rx.lang == QueryLanguage::JsonPath {
            self.forbid_fields(
                rx,
                &[("Output", "use the Choice state's OutputPath instead")],
            );
        }
        ChoiceRule {
            condition: self.condition(rx),
            next,
            assign: self.assign(rx),
            output: rx
                .member("Output")
                .filter(|_| rx.lang == QueryLanguage::Jsonata)
                .and_then(|m| self.jsonata_template(&m.value, &rx.ptr("Output"))),
        }
    }

    fn condition(&mut self, rx: &Ctx<'_>) -> Condition {
        if !matches!(rx.node.value, NodeValue::Object(_)) {
            return Condition::And(Vec::new()); // the schema reported it
        }
        match rx.lang {
            QueryLanguage::Jsonata => self.jsonata_condition(rx),
            QueryLanguage::JsonPath => {
                self.forbid_fields(
                    rx,
                    &[(
                        "Condition",
                        "use Variable with a comparison operator instead",
                    )],
                );
                self.path_condition(rx)
            }
        }
    }

    fn jsonata_condition(&mut self, rx: &Ctx<'_>) -> Condition {
        let path_fields: Vec<&str> = ["Variable", "And", "Or", "Not"]
            .into_iter()
            .chain(operator_keys().map(|(_, key, _)| key))
            .filter(|k| rx.has(k))
            .collect();
        for key in &path_fields {
            let message = format!(
                "'{key}' is a JSONPath choice rule field, but this state uses JSONata; write the test as \"Condition\": \"{{% ... %}}\""
            );
            self.error_at_key(Code::QueryLanguageMismatch, &rx.ptr(key), message);
        }
        match rx.member("Condition").map(|m| &m.value.value) {
            Some(NodeValue::Bool(b)) => Condition::Jsonata(Source::Literal(*b)),
            Some(NodeValue::String(text)) => {
                let expr = self.jsonata_expr(text, &rx.ptr("Condition"));
                Condition::Jsonata(expr.map_or(Source::Literal(false), Source::Jsonata))
            }
            Some(_) => Condition::Jsonata(Source::Literal(false)),
            None => {
                if path_fields.is_empty() {
                    self.error(
                        Code::InvalidChoiceRule,
                        &rx.pointer,
                        "a JSONata choice rule needs \"Condition\": a boolean or a {% ... %} expression",
                    );
                }
                Condition::Jsonata(Source::Literal(false))
            }
        }
    }

    fn path_condition(&mut self, rx: &Ctx<'_>) -> Condition {
        let combinators: Vec<&str> = ["And", "Or", "Not"]
            .into_iter()
            .filter(|k| rx.has(k))
            .collect();
        let operators: Vec<(Operator, &str, bool)> =
            operator_keys().filter(|(_, key, _)| rx.has(key)).collect();
        let count = combinators.len() + operators.len();
        if count == 0 && rx.has("Condition") {
            return Condition::And(Vec::new()); // reported as a JSONata field
        }
        if count == 0 {
            self.error(
                Code::InvalidChoiceRule,
                &rx.pointer,
                "this choice rule tests nothing: give it \"Variable\" and a comparison operator (such as StringEquals or NumericGreaterThan), or And, Or or Not",
            );
            return Condition::And(Vec::new());
        }
        if count > 1 {
            // In the order they are written, so "the second" is the second the
            // reader sees.
            let tests: Vec<&str> = combinators
                .iter()
                .copied()
                .chain(operators.iter().map(|(_, key, _)| *key))
                .collect();
            let names: Vec<&str> = rx
                .node
                .members()
                .iter()
                .map(|m| m.key.as_str())
                .filter(|k| tests.contains(k))
                .collect();
            let message = format!(
                "a choice rule has exactly one test, but this one has {}; combine tests with And or Or",
                names.join(" and ")
            );
            self.error_at_key(Code::InvalidChoiceRule, &rx.ptr(names[1]), message);
        }
        if let Some(&combinator) = combinators.first() {
            if rx.has("Variable") {
                let message = format!(
                    "'Variable' does not belong next to {combinator}: put it in each nested rule"
                );
                self.error_at_key(Code::InvalidChoiceRule, &rx.ptr("Variable"), message);
            }
            return self.combinator(rx, combinator);
        }
        let (operator, key, is_path) = operators[0];
        let variable = match rx.str("Variable") {
            Some(text) => self.path(text, &rx.ptr("Variable")),
            None => {
                if !rx.has("Variable") {
                    let message = format!(
                        "{key} compares the value at \"Variable\", but this rule has no Variable"
                    );
                    self.error(Code::InvalidChoiceRule, &rx.pointer, message);
                }
                None
            }
        };
        let operand = self.operand(rx, operator, key, is_path);
        match (variable, operand) {
            (Some(variable), Some(operand)) => Condition::Compare {
                variable,
                operator,
                operand,
            },
            _ => Condition::And(Vec::new()),
        }
    }

    fn combinator(&mut self, rx: &Ctx<'_>, combinator: &str) -> Condition {
        let Some(member) = rx.member(combinator) else {
            return Condition::And(Vec::new());
        };
        let pointer = rx.ptr(combinator);
        let lang = rx.lang;
        let nested = |node, pointer| Ctx {
            node,
            pointer,
            lang,
        };
        match combinator {
            "Not" => Condition::Not(Box::new(self.condition(&nested(&member.value, pointer)))),
            _ => {
                let rules: Vec<Condition> = member
                    .value
                    .items()
                    .iter()
                    .enumerate()
                    .map(|(i, n)| self.condition(&nested(n, format!("{pointer}/{i}"))))
                    .collect();
                if combinator == "And" {
                    Condition::And(rules)
                } else {
                    Condition::Or(rules)
                }
            }
        }
    }

    /// The operand of a comparison, checked against the operator's type.
    fn operand(
        &mut self,
        rx: &Ctx<'_>,
        operator: Operator,
        key: &str,
        is_path: bool,
    ) -> Option<Operand> {
        let member = rx.member(key)?;
        let pointer = rx.ptr(key);
        if is_path {
            let text = member.value.as_str()?;
            return self.path(text, &pointer).map(Operand::Path);
        }
        let name = operator.name();
        match &member.value.value {
            NodeValue::String(s) if name.starts_with("Timestamp") => match timestamp::parse(s) {
                Some(t) => Some(Operand::Timestamp(t)),
                None => {
                    let message = timestamp::problem(s);
                    self.error(Code::InvalidTimestamp, &pointer, message);
                    None
                }
            },
            NodeValue::String(s) if operator == Operator::StringMatches => {
                Some(Operand::Pattern(WildcardPattern::parse(s)))
            }
            NodeValue::String(s) => Some(Operand::String(s.clone())),
            NodeValue::Number(n) => n.as_f64().map(Operand::Number),
            NodeValue::Bool(b) => Some(Operand::Bool(*b)),
            _ => None,
        }
    }
}

/// Every operator key a rule may hold: (operator, key, is the Path form).
fn operator_keys() -> impl Iterator<Item = (Operator, &'static str, bool)> {
    const PATH_FORMS: &[(Operator, &str)] = &[
        (Operator::StringEquals, "StringEqualsPath"),
        (Operator::StringLessThan, "StringLessThanPath"),
        (Operator::StringGreaterThan, "StringGreaterThanPath"),
        (Operator::StringLessThanEquals, "StringLessThanEqualsPath"),
        (
            Operator::StringGreaterThanEquals,
            "StringGreaterThanEqualsPath",
        ),
        (Operator::NumericEquals, "NumericEqualsPath"),
        (Operator::NumericLessThan, "NumericLessThanPath"),
        (Operator::NumericGreaterThan, "NumericGreaterThanPath"),
        (Operator::NumericLessThanEquals, "NumericLessThanEqualsPath"),
        (
            Operator::NumericGreaterThanEquals,
            "NumericGreaterThanEqualsPath",
        ),
        (Operator::BooleanEquals, "BooleanEqualsPath"),
        (Operator::TimestampEquals, "TimestampEqualsPath"),
        (Operator::TimestampLessThan, "TimestampLessThanPath"),
        (Operator::TimestampGreaterThan, "TimestampGreaterThanPath"),
        (
            Operator::TimestampLessThanEquals,
            "TimestampLessThanEqualsPath",
        ),
        (
            Operator::TimestampGreaterThanEquals,
            "TimestampGreaterThanEqualsPath",
        ),
    ];
    Operator::ALL
        .iter()
        .map(|&(op, name)| (op, name, false))
        .chain(PATH_FORMS.iter().map(|&(op, name)| (op, name, true)))
}
