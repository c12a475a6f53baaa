//! Impact on consumers: how a change to an extension affects a module that uses some of its
//! elements, from the definition the module was built against to the new one.

use xif_definition::{Action, Attribute, Definition, Direction, Parameter, RecordDefinition, TypeSpec};

/// The elements of an extension a module uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uses {
    /// Action names.
    pub actions: Vec<String>,
    /// Structure names.
    pub structures: Vec<String>,
    /// Entity names.
    pub entities: Vec<String>,
}

/// How a change affects one consumer, from least to most serious.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Impact {
    /// Nothing changed.
    NotAffected,
    /// The extension changed, but nothing the module uses: it works, and should be refreshed.
    Outdated,
    /// Something the module uses changed in a way that keeps its signature: check it.
    PossiblyIncompatible,
    /// Something the module uses was removed or changed its signature: it breaks.
    Incompatible,
}

impl Impact {
    /// The name used in the API and messages.
    pub const fn name(self) -> &'static str {
        match self {
            Impact::NotAffected => "not affected",
            Impact::Outdated => "outdated",
            Impact::PossiblyIncompatible => "possibly incompatible",
            Impact::Incompatible => "incompatible",
        }
    }
}

/// The impact of going from `built` (what the module was built against) to `new`, with one
/// sentence per change to an element the module uses.
pub fn impact(built: &Definition, new: &Definition, uses: &Uses) -> (Impact, Vec<String>) {
    let mut changes: Vec<(Impact, String)> = Vec::new();
    for name in &uses.actions {
        match (built.action(name), new.action(name)) {
            (Some(_), None) => changes.push((Impact::Incompatible, format!("action `{name}` was removed"))),
            (Some(old), Some(new)) => compare_action(old, new, &mut changes),
            (None, _) => {}
        }
    }
    for (kind, names) in [("structure", &uses.structures), ("entity", &uses.entities)] {
        for name in names {
            let old = record(built, name, kind);
            let new_record = record(new, name, kind);
            match (old, new_record) {
                (Some(_), None) => changes.push((Impact::Incompatible, format!("{kind} `{name}` was removed"))),
                (Some(old), Some(new_record)) => {
                    compare_attributes(kind, name, old.attributes(), new_record.attributes(), &mut changes);
                }
                (None, _) => {}
            }
        }
    }
    let worst = changes.iter().map(|(impact, _)| *impact).max();
    let impact = match worst {
        Some(worst) => worst,
        None if built == new => Impact::NotAffected,
        None if definitions_equal_ignoring_spans(built, new) => Impact::NotAffected,
        None => Impact::Outdated,
    };
    (impact, changes.into_iter().map(|(_, change)| change).collect())
}

fn record<'a>(definition: &'a Definition, name: &str, kind: &str) -> Option<RecordDefinition<'a>> {
    definition.record_definition(name).filter(|found| {
        matches!((found, kind), (RecordDefinition::Structure(_), "structure") | (RecordDefinition::Entity(_), "entity"))
    })
}

fn compare_action(old: &Action, new: &Action, changes: &mut Vec<(Impact, String)>) {
    let name = &old.name.value;
    if old.is_function() && !new.is_function() {
        changes.push((Impact::Incompatible, format!("action `{name}` is no longer a function")));
    }
    compare_parameters(name, "input", &old.inputs, &new.inputs, changes);
    compare_parameters(name, "output", &old.outputs, &new.outputs, changes);
    for added in &new.inputs {
        if find(&old.inputs, &added.name.value).is_none() {
            let (impact, what) = if !may_omit(added) {
                (Impact::Incompatible, "mandatory")
            } else {
                (Impact::PossiblyIncompatible, "optional")
            };
            changes.push((impact, format!("action `{name}` has a new {what} input `{}`", added.name.value)));
        }
    }
    for added in &new.outputs {
        if find(&old.outputs, &added.name.value).is_none() {
            changes.push((
                Impact::PossiblyIncompatible,
                format!("action `{name}` has a new output `{}`", added.name.value),
            ));
        }
    }
}

fn find<'a>(parameters: &'a [Parameter], name: &str) -> Option<&'a Parameter> {
    parameters.iter().find(|parameter| parameter.name.value.eq_ignore_ascii_case(name))
}

fn compare_parameters(
    action: &str,
    kind: &str,
    old: &[Parameter],
    new: &[Parameter],
    changes: &mut Vec<(Impact, String)>,
) {
    for before in old {
        let name = &before.name.value;
        match find(new, name) {
            None => changes.push((Impact::Incompatible, format!("{kind} `{name}` of action `{action}` was removed"))),
            Some(after) => {
                let what = format!("{kind} `{name}` of action `{action}`");
                compare_types(&what, &before.data_type, &after.data_type, changes);
                compare_presence(&what, before, after, changes);
            }
        }
    }
}

/// Whether a caller may leave an input out: it is optional, or it has a default that fills it
/// in (as `xif-host`'s validation does).
fn may_omit(input: &Parameter) -> bool {
    input.default.is_some() || !input.is_mandatory()
}

/// Whether a parameter that still exists must now be given, or changed its default.
///
/// An input a caller could omit that must now be given breaks every caller that omits it. A
/// changed or removed default changes what such callers get. An output that may now be missing
/// can break callers that rely on it. Relaxations (an input that may now be omitted, an output
/// that is now always set) keep callers working and are not reported.
fn compare_presence(what: &str, before: &Parameter, after: &Parameter, changes: &mut Vec<(Impact, String)>) {
    let default = |parameter: &Parameter| parameter.default.as_ref().map(|default| default.value.clone());
    match before.direction {
        Direction::Input if may_omit(before) && !may_omit(after) => {
            let why = if before.default.is_some() && after.default.is_none() {
                "lost its default and is now mandatory"
            } else {
                "is now mandatory"
            };
            changes.push((Impact::Incompatible, format!("{what} {why}")));
        }
        Direction::Input if may_omit(before) && default(before) != default(after) => {
            let why = if after.default.is_none() { "lost its default" } else { "changed its default" };
            changes.push((Impact::PossiblyIncompatible, format!("{what} {why}")));
        }
        Direction::Input => {}
        Direction::Output => {
            if before.is_mandatory() && !after.is_mandatory() {
                changes.push((Impact::PossiblyIncompatible, format!("{what} is no longer always set")));
            }
        }
    }
}

fn compare_attributes(
    kind: &str,
    record: &str,
    old: &[Attribute],
    new: &[Attribute],
    changes: &mut Vec<(Impact, String)>,
) {
    for before in old {
        let name = &before.name.value;
        match new.iter().find(|after| after.name.value.eq_ignore_ascii_case(name)) {
            None => {
                changes.push((Impact::Incompatible, format!("attribute `{name}` of {kind} `{record}` was removed")));
            }
            Some(after) => {
                let what = format!("attribute `{name}` of {kind} `{record}`");
                compare_types(&what, &before.data_type, &after.data_type, changes);
                if !before.is_mandatory() && after.is_mandatory() && after.default.is_none() {
                    changes.push((Impact::Incompatible, format!("{what} is now mandatory")));
                }
            }
        }
    }
    for added in new {
        if !old.iter().any(|before| before.name.value.eq_ignore_ascii_case(&added.name.value)) {
            // A new mandatory attribute without a default breaks code that builds such records
            // (or creates such entity records) without it.
            let (impact, what) = if added.is_mandatory() && added.default.is_none() && !added.is_auto_number() {
                (Impact::Incompatible, "mandatory ")
            } else {
                (Impact::PossiblyIncompatible, "")
            };
            changes.push((impact, format!("{kind} `{record}` has a new {what}attribute `{}`", added.name.value)));
        }
    }
}

fn compare_types(what: &str, old: &TypeSpec, new: &TypeSpec, changes: &mut Vec<(Impact, String)>) {
    let record = |spec: &TypeSpec| spec.record.as_ref().map(|record| record.value.to_ascii_lowercase());
    if old.data_type.value != new.data_type.value || record(old) != record(new) {
        changes.push((
            Impact::Incompatible,
            format!("{what} changed type from {} to {}", old.data_type.value, new.data_type.value),
        ));
        return;
    }
    let value = |option: &Option<xif_definition::Spanned<i64>>| option.as_ref().map(|spanned| spanned.value);
    if value(&old.length) != value(&new.length) || value(&old.decimals) != value(&new.decimals) {
        changes.push((Impact::PossiblyIncompatible, format!("{what} changed its length or decimals")));
    }
}

/// Whether two definitions declare the same elements, whatever their layout in the file.
fn definitions_equal_ignoring_spans(a: &Definition, b: &Definition) -> bool {
    let names = |definition: &Definition| {
        let mut names: Vec<String> = definition
            .actions
            .iter()
            .map(|action| format!("a:{}:{}:{}", action.name.value, action.inputs.len(), action.outputs.len()))
            .chain(
                definition
                    .structures
                    .iter()
                    .map(|structure| format!("s:{}:{}", structure.name.value, structure.attributes.len())),
            )
            .chain(
                definition.entities.iter().map(|entity| format!("e:{}:{}", entity.name.value, entity.attributes.len())),
            )
            .collect();
        names.sort();
        names
    };
    a.extension.version.value == b.extension.version.value && names(a) == names(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUILT: &str = r#"
[extension]
name = "Payments"
version = "1.0.0"

[[actions]]
name = "Charge"
function = true
inputs = [ { name = "Amount", type = "Decimal" }, { name = "Card", type = "Text", length = 19 } ]
outputs = [ { name = "Receipt", type = "Text" } ]

[[actions]]
name = "Refund"
inputs = [ { name = "Receipt", type = "Text" } ]

[[structures]]
name = "Card"
attributes = [ { name = "Number", type = "Text" } ]
"#;

    fn check(change: (&str, &str), uses: &Uses) -> (Impact, Vec<String>) {
        let built = xif_definition::parse(BUILT).expect("parses");
        let new = xif_definition::parse(&BUILT.replace(change.0, change.1)).expect("the changed definition parses");
        impact(&built, &new, uses)
    }

    fn uses(actions: &[&str], structures: &[&str]) -> Uses {
        Uses {
            actions: actions.iter().map(|name| (*name).to_owned()).collect(),
            structures: structures.iter().map(|name| (*name).to_owned()).collect(),
            entities: Vec::new(),
        }
    }

    #[test]
    fn each_kind_of_change_is_classified() {
        let charge = uses(&["Charge"], &["Card"]);
        assert_eq!(check(("x", "x"), &charge), (Impact::NotAffected, vec![]));
        assert_eq!(check(("version = \"1.0.0\"", "version = \"1.1.0\""), &charge).0, Impact::Outdated);
        assert_eq!(
            check(("name = \"Refund\"\ninputs", "name = \"Repay\"\ninputs"), &charge),
            (Impact::Outdated, vec![]),
            "a change to an action the module does not use"
        );
        assert_eq!(
            check(("name = \"Refund\"\ninputs", "name = \"Repay\"\ninputs"), &uses(&["Refund"], &[])),
            (Impact::Incompatible, vec!["action `Refund` was removed".to_owned()])
        );
        assert_eq!(
            check(("{ name = \"Amount\", type = \"Decimal\" }", "{ name = \"Amount\", type = \"Currency\" }"), &charge),
            (
                Impact::Incompatible,
                vec!["input `Amount` of action `Charge` changed type from Decimal to Currency".to_owned()]
            )
        );
        assert_eq!(
            check(("length = 19 }", "length = 19 }, { name = \"Note\", type = \"Text\", mandatory = false }"), &charge),
            (Impact::PossiblyIncompatible, vec!["action `Charge` has a new optional input `Note`".to_owned()])
        );
        assert_eq!(
            check(("length = 19 }", "length = 19 }, { name = \"Currency\", type = \"Text\" }"), &charge).0,
            Impact::Incompatible,
            "a new mandatory input"
        );
        assert_eq!(
            check(("length = 19", "length = 20"), &charge),
            (
                Impact::PossiblyIncompatible,
                vec!["input `Card` of action `Charge` changed its length or decimals".to_owned()]
            )
        );
        assert_eq!(
            check(("length = 19 }", "length = 19 }, { name = \"Tip\", type = \"Decimal\", default = 0 }"), &charge),
            (Impact::PossiblyIncompatible, vec!["action `Charge` has a new optional input `Tip`".to_owned()]),
            "a new input with a default may be omitted"
        );
        assert_eq!(
            check(("function = true\n", ""), &charge),
            (Impact::Incompatible, vec!["action `Charge` is no longer a function".to_owned()])
        );
        assert_eq!(
            check(
                (
                    "{ name = \"Number\", type = \"Text\" }",
                    "{ name = \"Number\", type = \"Text\" }, { name = \"Expiry\", type = \"Date\" }"
                ),
                &charge
            ),
            (Impact::PossiblyIncompatible, vec!["structure `Card` has a new attribute `Expiry`".to_owned()])
        );
        assert_eq!(
            check(("{ name = \"Number\", type = \"Text\" }", "{ name = \"Digits\", type = \"Text\" }"), &charge).0,
            Impact::Incompatible,
            "an attribute removed"
        );
    }

    #[test]
    fn an_input_that_must_now_be_given_breaks_callers_that_omit_it() {
        let refund = uses(&["Refund"], &[]);
        let with_default = "{ name = \"Receipt\", type = \"Text\", default = \"none\" }";
        let refund_taking = |input: &str| {
            let text =
                BUILT.replace("inputs = [ { name = \"Receipt\", type = \"Text\" } ]", &format!("inputs = [ {input} ]"));
            xif_definition::parse(&text).expect("the definition parses")
        };
        let changed = |before: &str, after: &str| impact(&refund_taking(before), &refund_taking(after), &refund);
        let plain = "{ name = \"Receipt\", type = \"Text\" }";
        let optional = "{ name = \"Receipt\", type = \"Text\", mandatory = false }";
        assert_eq!(
            changed(with_default, plain),
            (
                Impact::Incompatible,
                vec!["input `Receipt` of action `Refund` lost its default and is now mandatory".to_owned()]
            )
        );
        assert_eq!(
            changed(optional, plain),
            (Impact::Incompatible, vec!["input `Receipt` of action `Refund` is now mandatory".to_owned()])
        );
        assert_eq!(
            changed(with_default, &with_default.replace("none", "n/a")),
            (Impact::PossiblyIncompatible, vec!["input `Receipt` of action `Refund` changed its default".to_owned()])
        );
        assert_eq!(
            changed(with_default, optional),
            (Impact::PossiblyIncompatible, vec!["input `Receipt` of action `Refund` lost its default".to_owned()])
        );
        assert_eq!(changed(plain, optional).1, Vec::<String>::new(), "an input that may now be omitted breaks nothing");
        assert_eq!(changed(plain, with_default).1, Vec::<String>::new());
    }

    #[test]
    fn outputs_and_attributes_that_change_presence_are_classified() {
        let charge = uses(&["Charge"], &["Card"]);
        assert_eq!(
            check(
                (
                    "{ name = \"Receipt\", type = \"Text\" } ]\n\n[[actions]]",
                    "{ name = \"Receipt\", type = \"Text\", mandatory = true } ]\n\n[[actions]]"
                ),
                &charge
            )
            .1,
            Vec::<String>::new(),
            "an output that is now always set"
        );
        let always = BUILT.replace(
            "outputs = [ { name = \"Receipt\", type = \"Text\" } ]",
            "outputs = [ { name = \"Receipt\", type = \"Text\", mandatory = true } ]",
        );
        let always = xif_definition::parse(&always).expect("parses");
        let sometimes = xif_definition::parse(BUILT).expect("parses");
        assert_eq!(
            impact(&always, &sometimes, &charge),
            (
                Impact::PossiblyIncompatible,
                vec!["output `Receipt` of action `Charge` is no longer always set".to_owned()]
            )
        );
        assert_eq!(
            check(
                ("{ name = \"Number\", type = \"Text\" }", "{ name = \"Number\", type = \"Text\", mandatory = true }"),
                &charge
            ),
            (Impact::Incompatible, vec!["attribute `Number` of structure `Card` is now mandatory".to_owned()])
        );
        assert_eq!(
            check(
                (
                    "{ name = \"Number\", type = \"Text\" }",
                    "{ name = \"Number\", type = \"Text\" }, { name = \"Holder\", type = \"Text\", mandatory = true }"
                ),
                &charge
            ),
            (Impact::Incompatible, vec!["structure `Card` has a new mandatory attribute `Holder`".to_owned()])
        );
    }
}
