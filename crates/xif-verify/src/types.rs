//! Types: record definitions that exist, options that fit their type, no recursive structures.

use std::collections::HashMap;

use xif_definition::{DataType, Definition, RecordDefinition, TypeSpec};
use xif_diagnostics::{Code, Diagnostic, did_you_mean};

use crate::folded::Folded;

/// The structures and entities of a definition by name, ignoring case; the first declared wins
/// (a second one is a duplicate, reported by the name rules).
pub(crate) struct Records<'a>(HashMap<Folded<'a>, RecordDefinition<'a>>);

impl<'a> Records<'a> {
    pub(crate) fn new(definition: &'a Definition) -> Self {
        let mut records = HashMap::with_capacity(definition.structures.len() + definition.entities.len());
        let all = definition
            .structures
            .iter()
            .map(RecordDefinition::Structure)
            .chain(definition.entities.iter().map(RecordDefinition::Entity));
        for record in all {
            records.entry(Folded(record.name().value.as_str())).or_insert(record);
        }
        Self(records)
    }

    pub(crate) fn get(&self, name: &str) -> Option<RecordDefinition<'a>> {
        self.0.get(&Folded(name)).copied()
    }
}

/// Most digits an exact decimal holds.
pub(crate) const MAX_DECIMAL_DIGITS: i64 = 28;

pub(crate) fn check(definition: &Definition, records: &Records<'_>, diagnostics: &mut Vec<Diagnostic>) {
    for action in &definition.actions {
        for parameter in action.inputs.iter().chain(&action.outputs) {
            let what = || format!("parameter `{}` of action `{}`", parameter.name.value, action.name.value);
            check_spec(definition, records, &parameter.data_type, &what, diagnostics);
        }
    }
    for structure in &definition.structures {
        for attribute in &structure.attributes {
            let what = || format!("attribute `{}` of structure `{}`", attribute.name.value, structure.name.value);
            check_spec(definition, records, &attribute.data_type, &what, diagnostics);
        }
    }
    for entity in &definition.entities {
        for attribute in &entity.attributes {
            let what = || format!("attribute `{}` of entity `{}`", attribute.name.value, entity.name.value);
            check_spec(definition, records, &attribute.data_type, &what, diagnostics);
        }
    }
    recursive_structures(definition, records, diagnostics);
}

/// Checks one data type. `what` describes its parameter or attribute; it is only called to
/// write a diagnostic, so that a clean definition costs no formatting.
fn check_spec(
    definition: &Definition,
    records: &Records<'_>,
    spec: &TypeSpec,
    what: &dyn Fn() -> String,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let data_type = spec.data_type.value;
    if data_type.takes_record() {
        match &spec.record {
            None => diagnostics.push(
                Diagnostic::new(
                    Code::MissingRecordDefinition,
                    format!("{} is of type {data_type} but names no record definition", what()),
                )
                .at(spec.data_type.span)
                .help(if data_type == DataType::EntityIdentifier {
                    "add `record = \"ENTITY\"` naming the entity it identifies"
                } else {
                    "add `record = \"NAME\"` naming a structure or entity"
                }),
            ),
            Some(record) => match records.get(&record.value) {
                Some(RecordDefinition::Structure(structure)) if data_type == DataType::EntityIdentifier => {
                    diagnostics.push(
                        Diagnostic::new(
                            Code::UnknownRecordDefinition,
                            format!(
                                "{} identifies `{}`, which is a structure, not an entity",
                                what(),
                                structure.name.value
                            ),
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
                            format!("{} names `{}`, which is not a declared structure or entity", what(), record.value),
                        )
                        .at(record.span)
                        .help(help),
                    );
                }
            },
        }
    } else if let Some(record) = &spec.record {
        diagnostics.push(not_for_type("record", data_type, &what(), record.span));
    }
    if let Some(length) = &spec.length {
        if !(data_type.is_text() || data_type.is_decimal()) {
            diagnostics.push(not_for_type("length", data_type, &what(), length.span));
        } else if length.value < 1 || (data_type.is_decimal() && length.value > MAX_DECIMAL_DIGITS) {
            let range = if data_type.is_decimal() { "1 to 28 digits" } else { "at least 1 character" };
            diagnostics.push(
                Diagnostic::new(Code::InvalidLength, format!("the length of {} is {}", what(), length.value))
                    .at(length.span)
                    .label(format!("expected {range}"))
                    .help(format!("a {data_type} length is {range}")),
            );
        }
    }
    if let Some(decimals) = &spec.decimals {
        if !data_type.is_decimal() {
            diagnostics.push(not_for_type("decimals", data_type, &what(), decimals.span));
        } else {
            let length = spec.length.as_ref().map_or(MAX_DECIMAL_DIGITS, |length| length.value);
            if decimals.value < 0 || decimals.value > length.min(MAX_DECIMAL_DIGITS) {
                diagnostics.push(
                    Diagnostic::new(
                        Code::InvalidLength,
                        format!(
                            "{} has {} decimals, more than its length of {length} digits allows",
                            what(),
                            decimals.value
                        ),
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
fn recursive_structures(definition: &Definition, records: &Records<'_>, diagnostics: &mut Vec<Diagnostic>) {
    let mut index: HashMap<Folded<'_>, usize> = HashMap::with_capacity(definition.structures.len());
    for (position, structure) in definition.structures.iter().enumerate() {
        index.entry(Folded(&structure.name.value)).or_insert(position);
    }
    // A name that is both a structure and an entity resolves as `records` does.
    let position_of = |name: &str| match records.get(name) {
        Some(RecordDefinition::Structure(_)) => index.get(&Folded(name)).copied(),
        _ => None,
    };
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
                .filter_map(|record| position_of(&record.value))
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
