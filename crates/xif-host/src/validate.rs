//! Checking a call's inputs against the definition before the extension sees them, and filling
//! in the defaults of omitted ones.

use std::str::FromStr;

use base64::Engine as _;
use serde_json::Value;
use xif_definition::{Action, Attribute, DataType, Definition, Literal, Parameter, RecordDefinition, TypeSpec};
use xif_diagnostics::did_you_mean;
use xif_protocol::Values;

/// Why a call's inputs were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// The definition has no such action.
    #[error("extension `{extension}` has no action `{action}`{}", did_you_mean_suffix(.suggestion))]
    UnknownAction {
        /// The extension.
        extension: String,
        /// The name called.
        action: String,
        /// The closest action, if one is close.
        suggestion: Option<String>,
    },
    /// The inputs are not a JSON object.
    #[error("the inputs of action `{action}` must be a JSON object of input names to values, found {found}")]
    NotAnObject {
        /// The action.
        action: String,
        /// What was given instead.
        found: &'static str,
    },
    /// An input the action does not have.
    #[error("action `{action}` has no input `{input}`{}", did_you_mean_suffix(.suggestion))]
    UnknownInput {
        /// The action.
        action: String,
        /// The name given.
        input: String,
        /// The closest input, if one is close.
        suggestion: Option<String>,
    },
    /// A mandatory input was not given.
    #[error("action `{action}` needs input `{input}` ({data_type}), which was not given")]
    MissingInput {
        /// The action.
        action: String,
        /// The input.
        input: String,
        /// Its type.
        data_type: String,
    },
    /// An input's value does not fit its type.
    #[error("input `{path}` of action `{action}` {problem}")]
    InvalidValue {
        /// The action.
        action: String,
        /// The input, and the attribute or element within it: `Order.Lines[1].Amount`.
        path: String,
        /// What is wrong.
        problem: String,
    },
}

fn did_you_mean_suffix(close: &Option<String>) -> String {
    close.as_ref().map(|close| format!("; did you mean `{close}`?")).unwrap_or_default()
}

/// Checks `inputs` for a call of `action_name` and returns the action and the inputs to send:
/// every given input checked (and Decimal numbers turned into exact strings), every omitted
/// input with a default given its default.
pub fn validate_inputs<'a>(
    definition: &'a Definition,
    action_name: &str,
    inputs: &Value,
) -> Result<(&'a Action, Values), Vec<InputError>> {
    let Some(action) = definition.action(action_name) else {
        let names = definition.actions.iter().map(|action| action.name.value.as_str());
        return Err(vec![InputError::UnknownAction {
            extension: definition.extension.name.value.clone(),
            action: action_name.to_owned(),
            suggestion: did_you_mean(action_name, names).map(str::to_owned),
        }]);
    };
    let action_label = action.name.value.clone();
    let Value::Object(given) = inputs else {
        return Err(vec![InputError::NotAnObject { action: action_label, found: kind(inputs) }]);
    };
    let mut errors = Vec::new();
    for name in given.keys() {
        if find(&action.inputs, name).is_none() {
            let names = action.inputs.iter().map(|input| input.name.value.as_str());
            errors.push(InputError::UnknownInput {
                action: action_label.clone(),
                input: name.clone(),
                suggestion: did_you_mean(name, names).map(str::to_owned),
            });
        }
    }
    let mut checked = Values::new();
    for input in &action.inputs {
        let name = &input.name.value;
        let value = given.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value);
        match value {
            Some(value) => match check(definition, &input.data_type, value) {
                Ok(value) => {
                    checked.insert(name.clone(), value);
                }
                Err((inner, problem)) => errors.push(InputError::InvalidValue {
                    action: action_label.clone(),
                    path: format!("{name}{inner}"),
                    problem,
                }),
            },
            None => match &input.default {
                Some(default) => {
                    checked.insert(name.clone(), literal(&input.data_type, &default.value));
                }
                None if input.is_mandatory() => errors.push(InputError::MissingInput {
                    action: action_label.clone(),
                    input: name.clone(),
                    data_type: describe(&input.data_type),
                }),
                None => {}
            },
        }
    }
    if errors.is_empty() { Ok((action, checked)) } else { Err(errors) }
}

/// As [`validate_inputs`], taking the inputs by value: a given input that is sent as it came
/// (the usual case) is moved into the inputs to send rather than copied.
pub fn validate_owned_inputs<'a>(
    definition: &'a Definition,
    action_name: &str,
    inputs: Value,
) -> Result<(&'a Action, Values), Vec<InputError>> {
    let Some(action) = definition.action(action_name) else { return validate_inputs(definition, action_name, &inputs) };
    let Value::Object(mut given) = inputs else { return validate_inputs(definition, action_name, &inputs) };
    let action_label = || action.name.value.clone();
    let mut errors = Vec::new();
    for name in given.keys() {
        if find(&action.inputs, name).is_none() {
            let names = action.inputs.iter().map(|input| input.name.value.as_str());
            errors.push(InputError::UnknownInput {
                action: action_label(),
                input: name.clone(),
                suggestion: did_you_mean(name, names).map(str::to_owned),
            });
        }
    }
    let mut checked = Values::new();
    for input in &action.inputs {
        let name = &input.name.value;
        let key = given.keys().find(|key| key.eq_ignore_ascii_case(name)).cloned();
        match key.and_then(|key| given.remove(&key)) {
            Some(value) => match check_changes(definition, &input.data_type, &value) {
                Ok(changed) => {
                    checked.insert(name.clone(), changed.unwrap_or(value));
                }
                Err((inner, problem)) => errors.push(InputError::InvalidValue {
                    action: action_label(),
                    path: format!("{name}{inner}"),
                    problem,
                }),
            },
            None => match &input.default {
                Some(default) => {
                    checked.insert(name.clone(), literal(&input.data_type, &default.value));
                }
                None if input.is_mandatory() => errors.push(InputError::MissingInput {
                    action: action_label(),
                    input: name.clone(),
                    data_type: describe(&input.data_type),
                }),
                None => {}
            },
        }
    }
    if errors.is_empty() { Ok((action, checked)) } else { Err(errors) }
}

fn find<'a>(parameters: &'a [Parameter], name: &str) -> Option<&'a Parameter> {
    parameters.iter().find(|parameter| parameter.name.value.eq_ignore_ascii_case(name))
}

fn describe(spec: &TypeSpec) -> String {
    match &spec.record {
        Some(record) if spec.data_type.value.takes_record() => {
            format!("{} of `{}`", spec.data_type.value, record.value)
        }
        _ => spec.data_type.value.to_string(),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `value` checked against `spec` as an input of that type would be (Decimal numbers turned into
/// exact strings), or where within it (`.Lines[1].Amount`, empty for the value itself) and what is
/// wrong. The records API checks an entity's attribute values with it, so that records take
/// exactly the JSON forms of action inputs.
pub fn check_value(definition: &Definition, spec: &TypeSpec, value: &Value) -> Result<Value, (String, String)> {
    check(definition, spec, value)
}

/// A value checked against its type, or where within it (`.Lines[1].Amount`) and what is wrong.
fn check(definition: &Definition, spec: &TypeSpec, value: &Value) -> Result<Value, (String, String)> {
    check_changes(definition, spec, value).map(|changed| changed.unwrap_or_else(|| value.clone()))
}

/// A value checked against its type: `None` when it is sent as it is, the value to send when
/// it differs (a Decimal turned into its exact text, an attribute name written as declared), or
/// where within it and what is wrong. Nothing is copied for a value sent as it is.
fn check_changes(definition: &Definition, spec: &TypeSpec, value: &Value) -> Result<Option<Value>, (String, String)> {
    let data_type = spec.data_type.value;
    let wrong = |expected: &str| Err((String::new(), format!("must be {expected}, found {}", kind(value))));
    match (data_type, value) {
        (DataType::Text | DataType::Email | DataType::PhoneNumber, Value::String(text)) => {
            let characters = text.chars().count();
            match spec.length.as_ref().map(|length| length.value) {
                Some(length) if i64::try_from(characters).unwrap_or(i64::MAX) > length => {
                    Err((String::new(), format!("is {characters} characters long, over its length of {length}")))
                }
                _ => Ok(None),
            }
        }
        (DataType::Text | DataType::Email | DataType::PhoneNumber, _) => wrong("text"),
        (DataType::Integer, Value::Number(number)) if number.as_i64().is_some_and(|n| i32::try_from(n).is_ok()) => {
            Ok(None)
        }
        (DataType::Integer, _) => wrong("an integer from -2147483648 to 2147483647"),
        (DataType::LongInteger, Value::Number(number)) if number.as_i64().is_some() => Ok(None),
        (DataType::LongInteger, _) => wrong("an integer that fits in 64 bits"),
        (DataType::Decimal | DataType::Currency, Value::Number(number)) => decimal(&number.to_string())
            .map(Some)
            .ok_or_else(|| (String::new(), format!("`{number}` is not an exact decimal"))),
        (DataType::Decimal | DataType::Currency, Value::String(text)) => match decimal(text) {
            Some(Value::String(exact)) if exact == *text => Ok(None),
            Some(exact) => Ok(Some(exact)),
            None => Err((String::new(), format!("must be a decimal number, found `{text}`"))),
        },
        (DataType::Decimal | DataType::Currency, _) => {
            wrong("a decimal number (a JSON number or a string like \"12.50\")")
        }
        (DataType::Boolean, Value::Bool(_)) => Ok(None),
        (DataType::Boolean, _) => wrong("`true` or `false`"),
        (DataType::Date, Value::String(text)) if chrono::NaiveDate::from_str(text).is_ok() => Ok(None),
        (DataType::Date, _) => wrong("a date like \"2024-01-31\""),
        (DataType::Time, Value::String(text)) if chrono::NaiveTime::from_str(text).is_ok() => Ok(None),
        (DataType::Time, _) => wrong("a time like \"09:30:00\""),
        (DataType::DateTime, Value::String(text)) if chrono::NaiveDateTime::from_str(text).is_ok() => Ok(None),
        (DataType::DateTime, _) => wrong("a date and time like \"2024-01-31T09:30:00\""),
        (DataType::BinaryData, Value::String(text))
            if base64::engine::general_purpose::STANDARD.decode(text.as_bytes()).is_ok() =>
        {
            Ok(None)
        }
        (DataType::BinaryData, _) => wrong("base64 text"),
        (DataType::EntityIdentifier, _) => {
            let identifier =
                spec.record.as_ref().and_then(|record| match definition.record_definition(&record.value) {
                    Some(RecordDefinition::Entity(entity)) => entity.attributes.iter().find(|a| a.is_identifier()),
                    _ => None,
                });
            match identifier {
                Some(identifier) => check_changes(definition, &identifier.data_type, value),
                None => Ok(None),
            }
        }
        (DataType::Record, Value::Object(_)) => record(definition, spec, value),
        (DataType::Record, _) => wrong("an object of attribute names to values"),
        (DataType::RecordList, Value::Array(items)) => {
            let element = TypeSpec {
                data_type: xif_definition::Spanned::new(DataType::Record, spec.data_type.span),
                ..spec.clone()
            };
            let mut changes = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                match check_changes(definition, &element, item) {
                    Ok(changed) => changes.push(changed),
                    Err((inner, problem)) => return Err((format!("[{index}]{inner}"), problem)),
                }
            }
            if changes.iter().all(Option::is_none) {
                return Ok(None);
            }
            let items = items.iter().zip(changes).map(|(item, changed)| changed.unwrap_or_else(|| item.clone()));
            Ok(Some(Value::Array(items.collect())))
        }
        (DataType::RecordList, _) => wrong("an array of objects"),
    }
}

fn record(definition: &Definition, spec: &TypeSpec, value: &Value) -> Result<Option<Value>, (String, String)> {
    let Value::Object(given) = value else { return Err((String::new(), "must be an object".into())) };
    let attributes: &[Attribute] = spec
        .record
        .as_ref()
        .and_then(|record| definition.record_definition(&record.value))
        .map_or(&[], |record| record.attributes());
    let mut changes = Vec::with_capacity(given.len());
    for (name, value) in given {
        let Some(attribute) = attributes.iter().find(|attribute| attribute.name.value.eq_ignore_ascii_case(name))
        else {
            let names = attributes.iter().map(|attribute| attribute.name.value.as_str());
            let hint = did_you_mean_suffix(&did_you_mean(name, names).map(str::to_owned));
            let record = spec.record.as_ref().map_or("", |record| record.value.as_str());
            return Err((format!(".{name}"), format!("is not an attribute of `{record}`{hint}")));
        };
        match check_changes(definition, &attribute.data_type, value) {
            Ok(changed) => changes.push((attribute, changed)),
            Err((inner, problem)) => return Err((format!(".{}{inner}", attribute.name.value), problem)),
        }
    }
    let renamed = given.keys().zip(&changes).any(|(name, (attribute, _))| *name != attribute.name.value);
    if !renamed && changes.iter().all(|(_, changed)| changed.is_none()) {
        return Ok(None);
    }
    let mut checked = Values::new();
    for ((_, value), (attribute, changed)) in given.iter().zip(changes) {
        checked.insert(attribute.name.value.clone(), changed.unwrap_or_else(|| value.clone()));
    }
    Ok(Some(Value::Object(checked)))
}

/// An exact decimal's canonical text, if `text` is one.
fn decimal(text: &str) -> Option<Value> {
    rust_decimal::Decimal::from_str_exact(text.trim()).ok().map(|decimal| Value::String(decimal.to_string()))
}

/// A definition's default value (`default = …`) as the JSON value of its type, as an omitted
/// input's default is sent; the records API fills omitted attributes of a new record with it.
pub fn default_value(spec: &TypeSpec, literal: &Literal) -> Value {
    self::literal(spec, literal)
}

/// A definition's default value as the value sent to the extension.
fn literal(spec: &TypeSpec, literal: &Literal) -> Value {
    match literal {
        Literal::Integer(digits) if spec.data_type.value.is_decimal() => Value::String(digits.clone()),
        Literal::Integer(digits) => digits.parse::<i64>().map_or_else(|_| Value::String(digits.clone()), Value::from),
        Literal::Float(digits) => Value::String(digits.clone()),
        Literal::String(text) => Value::String(text.clone()),
        Literal::Boolean(flag) => Value::Bool(*flag),
        Literal::DateTime { text, .. } => Value::String(text.clone()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Taking the inputs by value sends and refuses exactly what checking them by reference does.
    #[test]
    fn owned_inputs_are_checked_as_borrowed_ones_are() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/every-type/extension.toml"))
                .expect("the fixture");
        let definition = xif_definition::parse(&text).expect("a definition");
        let cases = [
            ("EchoScalars", json!({ "Text": "a", "Decimal": 1.5, "Currency": "2.50", "boolean": true })),
            ("EchoScalars", json!({ "Text": "a", "Integer": "one" })),
            ("EchoScalars", json!({ "Nope": 1 })),
            ("EchoRecords", json!({ "Order": { "number": 1 } })),
            ("Total", json!({ "Lines": [{ "Amount": "1.0" }, { "Amount": 2 }] })),
            ("Total", json!({ "Lines": [] })),
            ("Total", json!([1])),
            ("Ping", json!({})),
            ("Missing", json!({})),
        ];
        for (action, inputs) in cases {
            let borrowed =
                validate_inputs(&definition, action, &inputs).map(|(action, values)| (&action.name.value, values));
            let owned = validate_owned_inputs(&definition, action, inputs.clone())
                .map(|(action, values)| (&action.name.value, values));
            assert_eq!(owned, borrowed, "{action} {inputs}");
        }
    }
}
