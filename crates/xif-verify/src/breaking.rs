//! Breaking changes against the version now published: what a module built against that version
//! would no longer find or no longer match.

use xif_definition::{Attribute, Definition, Parameter, RecordDefinition, TypeSpec};
use xif_diagnostics::{Code, Diagnostic, Span};

pub(crate) fn check(published: &Definition, current: &Definition, diagnostics: &mut Vec<Diagnostic>) {
    let version = &published.extension.version.value;
    let anchor = current.extension.name.span;
    let mut report = |span: Span, change: String| {
        diagnostics.push(
            Diagnostic::new(Code::BreakingChange, format!("{change} (published version {version})"))
                .at(span)
                .help("modules that use it must be updated after publishing; keep the old element to stay compatible"),
        );
    };

    for old in &published.actions {
        let name = &old.name.value;
        let Some(new) = current.action(name) else {
            report(anchor, format!("action `{name}` was removed"));
            continue;
        };
        if old.is_function() && !new.is_function() {
            report(new.name.span, format!("action `{name}` is no longer a function"));
        }
        compare_parameters(name, "input", &old.inputs, &new.inputs, &mut report);
        compare_parameters(name, "output", &old.outputs, &new.outputs, &mut report);
        for added in &new.inputs {
            if added.is_mandatory() && !old.inputs.iter().any(|input| same_name(&input.name.value, &added.name.value)) {
                report(added.name.span, format!("action `{name}` has a new mandatory input `{}`", added.name.value));
            }
        }
    }

    let old_records = published
        .structures
        .iter()
        .map(RecordDefinition::Structure)
        .chain(published.entities.iter().map(RecordDefinition::Entity));
    for old in old_records {
        let (kind, name) = match old {
            RecordDefinition::Structure(structure) => ("structure", &structure.name.value),
            RecordDefinition::Entity(entity) => ("entity", &entity.name.value),
        };
        let new = current.record_definition(name).filter(|new| {
            matches!(
                (old, new),
                (RecordDefinition::Structure(_), RecordDefinition::Structure(_))
                    | (RecordDefinition::Entity(_), RecordDefinition::Entity(_))
            )
        });
        let Some(new) = new else {
            report(anchor, format!("{kind} `{name}` was removed"));
            continue;
        };
        compare_attributes(kind, name, old.attributes(), new.attributes(), new.name().span, &mut report);
    }
}

fn compare_parameters(
    action: &str,
    kind: &str,
    old: &[Parameter],
    new: &[Parameter],
    report: &mut impl FnMut(Span, String),
) {
    for before in old {
        let name = &before.name.value;
        match new.iter().find(|after| same_name(&after.name.value, name)) {
            None => report(
                new.first().map_or(Span::default(), |first| first.span),
                format!("{kind} `{name}` of action `{action}` was removed"),
            ),
            Some(after) if !same_type(&before.data_type, &after.data_type) => report(
                after.data_type.data_type.span,
                format!(
                    "{kind} `{name}` of action `{action}` changed type from {} to {}",
                    describe(&before.data_type),
                    describe(&after.data_type)
                ),
            ),
            Some(_) => {}
        }
    }
}

fn compare_attributes(
    kind: &str,
    record: &str,
    old: &[Attribute],
    new: &[Attribute],
    record_span: Span,
    report: &mut impl FnMut(Span, String),
) {
    for before in old {
        let name = &before.name.value;
        match new.iter().find(|after| same_name(&after.name.value, name)) {
            None => report(record_span, format!("attribute `{name}` of {kind} `{record}` was removed")),
            Some(after) if !same_type(&before.data_type, &after.data_type) => report(
                after.data_type.data_type.span,
                format!(
                    "attribute `{name}` of {kind} `{record}` changed type from {} to {}",
                    describe(&before.data_type),
                    describe(&after.data_type)
                ),
            ),
            Some(_) => {}
        }
    }
}

fn same_name(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

fn same_type(a: &TypeSpec, b: &TypeSpec) -> bool {
    a.data_type.value == b.data_type.value
        && match (&a.record, &b.record) {
            (Some(a), Some(b)) => same_name(&a.value, &b.value),
            (None, None) => true,
            _ => false,
        }
}

fn describe(spec: &TypeSpec) -> String {
    match &spec.record {
        Some(record) => format!("{} of `{}`", spec.data_type.value, record.value),
        None => spec.data_type.value.to_string(),
    }
}
