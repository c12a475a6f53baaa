//! Parameters and default values: outputs are not mandatory and take no default, functions have
//! one output, defaults fit their type.

use xif_definition::{DataType, Definition, Literal, Spanned, TypeSpec};
use xif_diagnostics::{Code, Diagnostic};

use crate::types::MAX_DECIMAL_DIGITS;

/// Characters of a Text with no declared length.
const DEFAULT_TEXT_LENGTH: i64 = 50;
/// Decimals of a Decimal or Currency with none declared.
const DEFAULT_DECIMALS: i64 = 8;

pub(crate) fn check(definition: &Definition, diagnostics: &mut Vec<Diagnostic>) {
    for action in &definition.actions {
        let action_name = &action.name.value;
        for output in &action.outputs {
            let what = format!("output `{}` of action `{action_name}`", output.name.value);
            if let Some(mandatory) = output.mandatory.as_ref().filter(|mandatory| mandatory.value) {
                diagnostics.push(
                    Diagnostic::new(Code::MandatoryOutput, format!("{what} is marked mandatory"))
                        .at(mandatory.span)
                        .help("remove `mandatory`: it applies to inputs only"),
                );
            }
            if let Some(default) = &output.default {
                diagnostics.push(
                    Diagnostic::new(Code::DefaultOnOutput, format!("{what} has a default value"))
                        .at(default.span)
                        .help("remove `default`: outputs are set by the action"),
                );
            }
        }
        if let Some(function) = action.function.as_ref().filter(|function| function.value)
            && action.outputs.len() != 1
        {
            diagnostics.push(
                Diagnostic::new(
                    Code::FunctionOutputs,
                    format!("function action `{action_name}` has {} outputs", action.outputs.len()),
                )
                .at(function.span)
                .label("functions return exactly one value")
                .help("give it exactly one output, or remove `function = true`"),
            );
        }
        for input in &action.inputs {
            if let Some(default) = &input.default {
                let what = || format!("input `{}` of action `{action_name}`", input.name.value);
                check_default(&input.data_type, default, &what, diagnostics);
            }
        }
    }
    let records = definition
        .structures
        .iter()
        .map(|structure| ("structure", &structure.name.value, &structure.attributes))
        .chain(definition.entities.iter().map(|entity| ("entity", &entity.name.value, &entity.attributes)));
    for (kind, record, attributes) in records {
        for attribute in attributes {
            if let Some(default) = &attribute.default {
                let what = || format!("attribute `{}` of {kind} `{record}`", attribute.name.value);
                check_default(&attribute.data_type, default, &what, diagnostics);
            }
        }
    }
}

/// Checks one default value. `what` describes its parameter or attribute and is only called to
/// write a diagnostic.
fn check_default(
    spec: &TypeSpec,
    default: &Spanned<Literal>,
    what: &dyn Fn() -> String,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let data_type = spec.data_type.value;
    let invalid = |help: String| {
        Diagnostic::new(
            Code::InvalidDefault,
            format!("the default of {} is {}, but its type is {data_type}", what(), default.value.kind()),
        )
        .at(default.span)
        .help(help)
    };
    let overflow = |problem: String, help: &str| {
        Diagnostic::new(Code::DefaultOverflow, format!("the default of {} {problem}", what()))
            .at(default.span)
            .help(help.to_owned())
    };
    match (data_type, &default.value) {
        (DataType::Text | DataType::Email | DataType::PhoneNumber, Literal::String(text)) => {
            let length = spec.length.as_ref().map_or(DEFAULT_TEXT_LENGTH, |length| length.value);
            let characters = text.chars().count();
            if i64::try_from(characters).unwrap_or(i64::MAX) > length {
                diagnostics.push(
                    Diagnostic::new(
                        Code::DefaultTooLong,
                        format!(
                            "the default of {} has {characters} characters, more than its length of {length}",
                            what()
                        ),
                    )
                    .at(default.span)
                    .help("shorten the default or raise `length`"),
                );
            }
        }
        (DataType::Text | DataType::Email | DataType::PhoneNumber, _) => {
            diagnostics.push(invalid("write text in quotes: `default = \"...\"`".into()));
        }
        (DataType::Integer | DataType::LongInteger, Literal::Integer(digits)) => {
            let fits = match data_type {
                DataType::Integer => digits.parse::<i32>().is_ok(),
                _ => digits.parse::<i64>().is_ok(),
            };
            if !fits {
                let range = if data_type == DataType::Integer {
                    "-2147483648 to 2147483647"
                } else {
                    "-9223372036854775808 to 9223372036854775807"
                };
                diagnostics.push(overflow(
                    format!("is {digits}, out of the range of {data_type} ({range})"),
                    if data_type == DataType::Integer {
                        "use a smaller value, or make it a Long Integer"
                    } else {
                        "use a smaller value, or make it a Decimal"
                    },
                ));
            }
        }
        (DataType::Integer | DataType::LongInteger, _) => {
            diagnostics.push(invalid("write a whole number without quotes: `default = 42`".into()));
        }
        (DataType::Decimal | DataType::Currency, Literal::Integer(digits) | Literal::Float(digits)) => {
            let length = spec.length.as_ref().map_or(MAX_DECIMAL_DIGITS, |length| length.value);
            let decimals = spec.decimals.as_ref().map_or(DEFAULT_DECIMALS.min(length), |decimals| decimals.value);
            match decimal_digits(digits) {
                None => diagnostics.push(
                    Diagnostic::new(
                        Code::InvalidDefault,
                        format!("the default of {} is {digits}, which is not a plain decimal number", what()),
                    )
                    .at(default.span)
                    .help("write the digits without an exponent, for example `default = 1000.0`"),
                ),
                Some((whole, fraction)) => {
                    let whole_allowed = (length - decimals).max(0);
                    if i64::try_from(fraction).unwrap_or(i64::MAX) > decimals {
                        diagnostics.push(overflow(
                            format!("is {digits}, with {fraction} decimals, more than the {decimals} declared"),
                            "round the default or raise `decimals`",
                        ));
                    } else if i64::try_from(whole).unwrap_or(i64::MAX) > whole_allowed {
                        diagnostics.push(overflow(
                            format!(
                                "is {digits}, with {whole} digits before the point, more than the {whole_allowed} that length {length} with {decimals} decimals allows"
                            ),
                            "use a smaller value or raise `length`",
                        ));
                    }
                }
            }
        }
        (DataType::Decimal | DataType::Currency, _) => {
            diagnostics.push(invalid("write a number without quotes: `default = 12.50`".into()));
        }
        (DataType::Boolean, Literal::Boolean(_)) => {}
        (DataType::Boolean, _) => diagnostics.push(invalid("write `default = true` or `default = false`".into())),
        (DataType::Date | DataType::Time | DataType::DateTime, Literal::DateTime { date, time, offset, .. }) => {
            let wanted = match data_type {
                DataType::Date => (true, false),
                DataType::Time => (false, true),
                _ => (true, true),
            };
            if (*date, *time) != wanted {
                diagnostics.push(invalid(example_for(data_type)));
            } else if *offset {
                diagnostics.push(
                    Diagnostic::new(
                        Code::InvalidDefault,
                        format!("the default of {} has a UTC offset; a {data_type} has none", what()),
                    )
                    .at(default.span)
                    .help("remove the offset (`Z` or `+01:00`)"),
                );
            }
        }
        (DataType::Date | DataType::Time | DataType::DateTime, _) => {
            diagnostics.push(invalid(example_for(data_type)));
        }
        (DataType::BinaryData | DataType::EntityIdentifier | DataType::Record | DataType::RecordList, _) => {
            diagnostics.push(
                Diagnostic::new(
                    Code::InvalidDefault,
                    format!("{} is of type {data_type}, which takes no default", what()),
                )
                .at(default.span)
                .help("remove `default`"),
            );
        }
    }
}

fn example_for(data_type: DataType) -> String {
    let example = match data_type {
        DataType::Date => "2024-01-31",
        DataType::Time => "09:30:00",
        _ => "2024-01-31T09:30:00",
    };
    format!("write a TOML {} literal without quotes: `default = {example}`", data_type.name().to_lowercase())
}

/// The number of significant digits before and after the point of a decimal literal, or
/// `None` when it is not a plain decimal (an exponent, `inf`, `nan`).
fn decimal_digits(literal: &str) -> Option<(usize, usize)> {
    let unsigned = literal.trim_start_matches(['+', '-']);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let is_digits = |part: &str| part.chars().all(|c| c.is_ascii_digit());
    if whole.is_empty() || !is_digits(whole) || !is_digits(fraction) {
        return None;
    }
    Some((whole.trim_start_matches('0').len(), fraction.trim_end_matches('0').len()))
}
