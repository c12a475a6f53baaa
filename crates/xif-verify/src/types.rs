//! Types: record definitions that exist, options that fit their type, no recursive structures.

use std::collections::HashMap;

use xif_definition::{DataType, Definition, RecordDefinition, TypeSpec};
use xif_diagnostics::{Code, Diagnostic, did_you_mean};

/// Most digits an exact decimal holds.
pub(crate) const MAX_DECIMAL_DIGITS: i64 = 28;

pub(crate) fn check(definition: &Definition, diagnostics: &mut Vec<Diagnostic>) {
    for action in &definition.actions {
        for parameter in action.inputs.iter().chain(&action.outputs) {
            let what = format!("parameter `{}` of action `{}`", parameter.name.value, action.name.value);
            check_spec(definition, &parameter.data_type, &what, diagnostics);
        }
    }
    for structure in &definition.structures {
        for attribute in &structure.attributes {
            let what = format!("attribute `{}` of structure `{}`", attribute.name.value, structure.name.value);
            check_spec(definition, &attribute.data_type, &what, diagnostics);
        }
    }
    for entity in &definition.entities {
        for attribute in &entity.attributes {
            let what = format!("attribute `{}` of entity `{}`", attribute.name.value, entity.name.value);
            check_spec(definition, &attribute.data_type, &what, diagnostics);
        }
    }
    recursive_structures(definition, diagnostics);
}

fn check_spec(definition: &Definition, spec: &TypeSpec, what: &str, diagnostics: &mut Vec<Diagnostic>) {
    let data_type = spec.data_type.value;
    if data_type.takes_record() {
        match &spec.record {
            None => diagnostics.push(
                Diagnostic::new(
                    Code::MissingRecordDefinition,
                    format!("{what} is of type {data_type} but names no record definition"),
                )
                .at(spec.data_type.span)
                .help(if data_type == DataType::EntityIdentifier {
                    "add `record = \"ENTITY\"` naming the entity it identifies"
                } else {
                    "add `record = \"NAME\"` naming a structure or entity"
                }),
            ),
            Some(record) => match definition.record_definition(&record.value) {
                Some(RecordDefinition::Structure(structure)) if data_type == DataType::EntityIdentifier => {
                    diagnostics.push(
                        Diagnostic::new(
                            Code::UnknownRecordDefinition,
                            format!("{what} identifies `{}`, which is a structure, not an entity", structure.name.value),
                        )
                        .at(record.span)
                        .help("only entities have identifiers; name an entity"),
                    );
                }
                Some(_) => {}
                None => {
                    let names = definition
                        .structures
                        .iter()
                        .map(|structure| structure.name.value.as_str())
                        .chain(definition.entities.iter().map(|entity| entity.name.value.as_str()));
                    let help = match did_you_mean(&record.value, names) {
                        Some(close) => format!("did you mean `{close}`?"),
                        None => "declare it as a `[[structures]]` or `[[entities]]` table".to_owned(),
                    };
                    diagnostics.push(
                        Diagnostic::new(
                            Code::UnknownRecordDefinition,
                            format!("{what} names `{}`, which is not a declared structure or entity", record.value),
                        )
                        .at(record.span)
                        .help(help),
                    );
                }
            },
        }
    } else if let Some(record) = &spec.record {
        diagnostics.push(not_for_type("record", data_type, what, record.span));
    }
    if let Some(length) = &spec.length {
        if !(data_type.is_text() || data_type.is_decimal()) {
            diagnostics.push(not_for_type("length", data_type, what, length.span));
        } else if length.value < 1 || (data_type.is_decimal() && length.value > MAX_DECIMAL_DIGITS) {
            let range = if data_type.is_decimal() { "1 to 28 digits" } else { "at least 1 character" };
            diagnostics.push(
                Diagnostic::new(Code::InvalidLength, format!("the length of {what} is {}", length.value))
                    .at(length.span)
                    .label(format!("expected {range}"))
                    .help(format!("a {data_type} length is {range}")),
            );
        }
    }
    if let Some(decimals) = &spec.decimals {
        if !data_type.is_decimal() {
            diagnostics.push(not_for_type("decimals", data_type, what, decimals.span));
        } else {
            let length = spec.length.as_ref().map_or(MAX_DECIMAL_DIGITS, |length| length.value);
            if decimals.value < 0 || decimals.value > length.min(MAX_DECIMAL_DIGITS) {
                diagnostics.push(
                    Diagnostic::new(
                        Code::InvalidLength,
                        format!("{what} has {} decimals, more than its length of {length} digits allows", decimals.value),
                    )
                    .at(decimals.span)
                    .help("decimals are 0 or more and at most the length (28 at most)"),
                );
            }
        }
    }
}

fn not_for_type(option: &str, data_type: DataType, what: &str, span: xif_diagnostics::Span) -> Diagnostic {
    let applies = match option {
        "record" => "Record, Record List and Entity Identifier",
        "length" => "Text, Email, Phone Number, Decimal and Currency",
        _ => "Decimal and Currency",
    };
    Diagnostic::new(Code::OptionNotForType, format!("`{option}` does not apply to {what}, of type {data_type}"))
        .at(span)
        .help(format!("`{option}` applies to {applies}; remove it or change the type"))
}

/// Reports each cycle of structures holding structures once, at the first structure of it in
/// source order.
fn recursive_structures(definition: &Definition, diagnostics: &mut Vec<Diagnostic>) {
    let index: HashMap<String, usize> = definition
        .structures
        .iter()
        .enumerate()
        .map(|(position, structure)| (structure.name.value.to_lowercase(), position))
        .collect();
    let edges: Vec<Vec<usize>> = definition
        .structures
        .iter()
        .map(|structure| {
            structure
                .attributes
                .iter()
                .filter(|attribute| {
                    matches!(attribute.data_type.data_type.value, DataType::Record | DataType::RecordList)
                })
                .filter_map(|attribute| attribute.data_type.record.as_ref())
                .filter_map(|record| index.get(&record.value.to_lowercase()).copied())
                .collect()
        })
        .collect();
    let mut reported = vec![false; edges.len()];
    for start in 0..edges.len() {
        if reported[start] {
            continue;
        }
        if let Some(cycle) = find_cycle(start, &edges) {
            for member in &cycle {
                reported[*member] = true;
            }
            let names: Vec<&str> = cycle
                .iter()
                .chain(std::iter::once(&start))
                .map(|position| definition.structures[*position].name.value.as_str())
                .collect();
            let structure = &definition.structures[start];
            diagnostics.push(
                Diagnostic::new(
                    Code::RecursiveStructure,
                    format!("structure `{}` holds itself: {}", structure.name.value, names.join(" → ")),
                )
                .at(structure.name.span)
                .help("break the cycle, for example by holding an identifier instead of the record"),
            );
        }
    }
}

/// A path `start → … → start` through `edges`, if there is one (breadth-first, so the
/// shortest).
fn find_cycle(start: usize, edges: &[Vec<usize>]) -> Option<Vec<usize>> {
    let mut parent: Vec<Option<usize>> = vec![None; edges.len()];
    let mut queue = std::collections::VecDeque::from([start]);
    let mut visited = vec![false; edges.len()];
    visited[start] = true;
    while let Some(node) = queue.pop_front() {
        for &next in &edges[node] {
            if next == start {
                let mut path = vec![node];
                let mut current = node;
                while let Some(previous) = parent[current] {
                    path.push(previous);
                    current = previous;
                }
                path.reverse();
                return Some(path);
            }
            if !visited[next] {
                visited[next] = true;
                parent[next] = Some(node);
                queue.push_back(next);
            }
        }
    }
    None
}
