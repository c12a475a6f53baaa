//! Names: characters, length, reserved words and uniqueness within each scope.

use std::collections::HashMap;
use std::sync::LazyLock;

use xif_definition::{Definition, Spanned};
use xif_diagnostics::{Code, Diagnostic};

use crate::folded::Folded;

/// Longest name of the extension and its elements.
pub const MAX_NAME: usize = 50;
/// Longest name of an entity attribute (it becomes a database column).
pub const MAX_ATTRIBUTE_NAME: usize = 28;

/// What a name becomes in the generated code, which decides the words it cannot be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// The extension, structures and entities: they become type names.
    Type,
    /// Actions, parameters and attributes: they become method, argument and field names.
    Member,
}

/// Names that types cannot take, compared without regard to case: data type names and the
/// types the generated code uses. Members can take them (`Date` is a fine parameter name).
pub const RESERVED_TYPE_NAMES: &[&str] = &[
    "Text",
    "Integer",
    "LongInteger",
    "Decimal",
    "Boolean",
    "DateTime",
    "Date",
    "Time",
    "Email",
    "PhoneNumber",
    "Currency",
    "BinaryData",
    "EntityIdentifier",
    "Record",
    "RecordList",
    "List",
    "Extension",
    "Result",
    "Error",
    "Option",
    "Some",
    "None",
    "Ok",
    "Err",
    "String",
    "Vec",
    "Box",
];

/// Names that no element can take, compared without regard to case: Rust keywords, strict and
/// reserved, which names become (in snake case for members).
pub const RESERVED_NAMES: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern", "false", "fn",
    "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self",
    "static", "struct", "super", "trait", "true", "try", "type", "unsafe", "use", "where", "while", "abstract",
    "become", "do", "final", "macro", "override", "priv", "typeof", "unsized", "virtual", "yield",
];

/// What is wrong with `name` as an element name, if anything: `(code, message, help)`.
pub fn name_problem(name: &str, kind: NameKind, max_length: usize) -> Option<(Code, String, String)> {
    let mut chars = name.chars();
    match chars.next() {
        None => {
            return Some((Code::InvalidName, "is empty".into(), "give it a name".into()));
        }
        Some(first) if !first.is_ascii_alphabetic() => {
            return Some((Code::InvalidName, format!("starts with `{first}`"), "names start with a letter".into()));
        }
        Some(_) => {}
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_')) {
        let shown = if bad == ' ' { "a space".to_owned() } else { format!("`{bad}`") };
        let suggestion: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        return Some((
            Code::InvalidName,
            format!("has {shown}"),
            format!("names use letters, digits and `_` only, for example `{suggestion}`"),
        ));
    }
    let length = name.chars().count();
    if length > max_length {
        return Some((
            Code::NameTooLong,
            format!("is {length} characters long, over the limit of {max_length}"),
            "shorten the name; the description can carry the detail".into(),
        ));
    }
    if let Some(reserved) = reserved(name, kind) {
        return Some((
            Code::ReservedName,
            format!("is reserved (`{reserved}`)"),
            format!("choose another name, for example `My{name}`; `xif explain XE0104` lists reserved names"),
        ));
    }
    None
}

/// The reserved word `name` is, if it is one.
fn reserved(name: &str, kind: NameKind) -> Option<&'static str> {
    /// The longest reserved word, `EntityIdentifier`; longer names need no look-up.
    const LONGEST: usize = 16;
    fn by_lower_case(words: &[&'static str]) -> HashMap<String, &'static str> {
        words.iter().map(|word| (word.to_ascii_lowercase(), *word)).collect()
    }
    static WORDS: LazyLock<HashMap<String, &'static str>> = LazyLock::new(|| by_lower_case(RESERVED_NAMES));
    static TYPE_WORDS: LazyLock<HashMap<String, &'static str>> = LazyLock::new(|| by_lower_case(RESERVED_TYPE_NAMES));
    if name.len() > LONGEST {
        return None;
    }
    let mut buffer = [0u8; LONGEST];
    let lower = &mut buffer[..name.len()];
    lower.copy_from_slice(name.as_bytes());
    lower.make_ascii_lowercase();
    let lower = std::str::from_utf8(lower).ok()?;
    let found = WORDS.get(lower).or_else(|| match kind {
        NameKind::Type => TYPE_WORDS.get(lower),
        NameKind::Member => None,
    });
    found.copied()
}

pub(crate) fn check(definition: &Definition, diagnostics: &mut Vec<Diagnostic>) {
    let mut check_name = |kind: &str, name: &Spanned<String>, max_length: usize| {
        let name_kind = match kind {
            "extension" | "structure" | "entity" => NameKind::Type,
            _ => NameKind::Member,
        };
        if let Some((code, problem, help)) = name_problem(&name.value, name_kind, max_length) {
            diagnostics.push(
                Diagnostic::new(code, format!("the name of {kind} `{}` {problem}", name.value))
                    .at(name.span)
                    .help(help),
            );
        }
    };
    check_name("extension", &definition.extension.name, MAX_NAME);
    for action in &definition.actions {
        check_name("action", &action.name, MAX_NAME);
        for parameter in action.inputs.iter().chain(&action.outputs) {
            check_name("parameter", &parameter.name, MAX_NAME);
        }
    }
    for structure in &definition.structures {
        check_name("structure", &structure.name, MAX_NAME);
        for attribute in &structure.attributes {
            check_name("attribute", &attribute.name, MAX_NAME);
        }
    }
    for entity in &definition.entities {
        check_name("entity", &entity.name, MAX_NAME);
        for attribute in &entity.attributes {
            check_name("attribute", &attribute.name, MAX_ATTRIBUTE_NAME);
        }
    }

    let mut actions = Scope::new("action", "actions");
    let mut parameters = Scope::new("parameter", "parameters of one action");
    for action in &definition.actions {
        actions.add(&action.name, diagnostics);
        parameters.seen.clear();
        for parameter in action.inputs.iter().chain(&action.outputs) {
            parameters.add(&parameter.name, diagnostics);
        }
    }
    let mut records = Scope::new("record definition", "structures and entities");
    for structure in &definition.structures {
        records.add(&structure.name, diagnostics);
        let mut attributes = Scope::new("attribute", "attributes of one structure");
        for attribute in &structure.attributes {
            attributes.add(&attribute.name, diagnostics);
        }
    }
    for entity in &definition.entities {
        records.add(&entity.name, diagnostics);
        let mut attributes = Scope::new("attribute", "attributes of one entity");
        let mut columns = Scope::new("column", "columns of one table");
        for attribute in &entity.attributes {
            attributes.add(&attribute.name, diagnostics);
            columns.add(attribute.column.as_ref().unwrap_or(&attribute.name), diagnostics);
        }
    }
    let mut resources = Scope::new("resource path", "resources");
    for resource in &definition.resources {
        resources.add(&resource.path, diagnostics);
    }
}

/// The names seen so far in one scope, by their lower-case form.
struct Scope<'a> {
    kind: &'static str,
    scope: &'static str,
    seen: HashMap<Folded<'a>, &'a Spanned<String>>,
}

impl<'a> Scope<'a> {
    fn new(kind: &'static str, scope: &'static str) -> Self {
        Self { kind, scope, seen: HashMap::new() }
    }

    fn add(&mut self, name: &'a Spanned<String>, diagnostics: &mut Vec<Diagnostic>) {
        if name.value.is_empty() {
            return;
        }
        match self.seen.entry(Folded(&name.value)) {
            std::collections::hash_map::Entry::Occupied(first) => {
                let first = first.get();
                let how = if first.value == name.value {
                    "is declared twice".to_owned()
                } else {
                    format!("is the same as `{}` (names ignore case)", first.value)
                };
                diagnostics.push(
                    Diagnostic::new(Code::DuplicateName, format!("{} `{}` {how}", self.kind, name.value))
                        .at(name.span)
                        .label("declared again here")
                        .related(first.span, "first declared here")
                        .help(format!("rename one of them; names of {} are unique, ignoring case", self.scope)),
                );
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(name);
            }
        }
    }
}
