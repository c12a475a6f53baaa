//! Reading `extension.toml` into a [`Definition`].
//!
//! TOML is parsed by the `toml` crate into its spanned document tree, then decoded here by hand
//! rather than through serde derive: serde stops at the first problem and its messages carry no
//! "did you mean", while a person fixing a definition wants every unknown key, wrong type and
//! missing key at once, each pointing at its own place.

use toml::Spanned as TomlSpanned;
use toml::de::{DeTable, DeValue};
use xif_diagnostics::{Code, Diagnostic, Span, did_you_mean};

use crate::model::*;

/// Definitions larger than this are refused unread.
pub const MAX_DEFINITION_BYTES: usize = 16 * 1024 * 1024;

/// Parses the text of an `extension.toml`. On failure, returns every problem found, each with
/// its span: the definition is only returned when it is well-formed.
pub fn parse(text: &str) -> Result<Definition, Vec<Diagnostic>> {
    if text.len() > MAX_DEFINITION_BYTES {
        return Err(vec![
            Diagnostic::new(
                Code::DefinitionTooLarge,
                format!("the definition is {} bytes, over the limit of 16 MiB", text.len()),
            )
            .help("check that this is the extension's definition and not another file"),
        ]);
    }
    if text.trim().is_empty() {
        return Err(vec![
            Diagnostic::new(Code::EmptyDefinition, "the definition file is empty")
                .help("start from `xif new NAME`, or add an `[extension]` table with `name` and `version`"),
        ]);
    }
    let (document, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        return Err(errors.iter().map(|error| syntax_diagnostic(error, text)).collect());
    }
    let mut decoder = Decoder { diagnostics: Vec::new() };
    let root = Table { entries: document.get_ref(), span: Span::new(0, 0), what: What::ROOT };
    let definition = decoder.definition(&root);
    match definition {
        Some(definition) if decoder.diagnostics.is_empty() => Ok(definition),
        _ => {
            let mut diagnostics = decoder.diagnostics;
            diagnostics.sort_by_key(|diagnostic| diagnostic.span.map_or(0, |span| span.start));
            Err(diagnostics)
        }
    }
}

fn syntax_diagnostic(error: &toml::de::Error, text: &str) -> Diagnostic {
    // The toml crate's messages are a sentence, sometimes followed by "expected ..." lines;
    // fold them onto one line in the house style.
    let message: Vec<&str> = error.message().lines().map(str::trim).filter(|line| !line.is_empty()).collect();
    let message = lowercase_first(&message.join("; "));
    let diagnostic = Diagnostic::new(Code::TomlSyntax, format!("invalid TOML: {message}"));
    match error.span() {
        Some(span) => {
            let end = if span.is_empty() { next_char_end(text, span.start) } else { span.end };
            diagnostic.at(span.start..end)
        }
        None => diagnostic,
    }
}

fn next_char_end(text: &str, start: usize) -> usize {
    text.get(start..).and_then(|rest| rest.chars().next()).map_or(start, |c| start + c.len_utf8())
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) if !chars.as_str().starts_with(|c: char| c.is_uppercase()) => {
            first.to_lowercase().chain(chars).collect()
        }
        _ => text.to_owned(),
    }
}

const ROOT_KEYS: &[&str] = &["extension", "actions", "structures", "entities", "resources"];
const EXTENSION_KEYS: &[&str] = &["name", "version", "description", "icon"];
const ACTION_KEYS: &[&str] = &["name", "description", "function", "inputs", "outputs"];
const PARAMETER_KEYS: &[&str] =
    &["name", "description", "type", "record", "length", "decimals", "mandatory", "default"];
const STRUCTURE_KEYS: &[&str] = &["name", "description", "attributes"];
const ENTITY_KEYS: &[&str] = &["name", "description", "table", "database", "attributes"];
const STRUCTURE_ATTRIBUTE_KEYS: &[&str] =
    &["name", "description", "type", "record", "length", "decimals", "mandatory", "default"];
const ENTITY_ATTRIBUTE_KEYS: &[&str] = &[
    "name",
    "description",
    "type",
    "record",
    "length",
    "decimals",
    "mandatory",
    "default",
    "identifier",
    "auto_number",
    "column",
];
const RESOURCE_KEYS: &[&str] = &["path", "deploy"];

/// A TOML table being decoded, with how messages name it.
struct Table<'a, 'i> {
    entries: &'a DeTable<'i>,
    span: Span,
    what: What<'a>,
}

/// How messages name a table: "the definition", "`[extension]`", "action `Charge`",
/// "input #2 of action `Charge`". Formatted only when a diagnostic is written, so that a
/// well-formed definition of ten thousand actions costs no formatting.
#[derive(Debug, Clone, Copy)]
struct What<'a> {
    kind: &'static str,
    /// The declared name, or the 1-based position in its array when it has none.
    name: Result<&'a str, usize>,
    /// The table it is part of, when that is an element itself.
    parent: Option<(&'static str, Result<&'a str, usize>)>,
}

impl What<'_> {
    const ROOT: What<'static> = What { kind: "the definition", name: Err(0), parent: None };
    const EXTENSION: What<'static> = What { kind: "`[extension]`", name: Err(0), parent: None };
}

impl std::fmt::Display for What<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn element(formatter: &mut std::fmt::Formatter<'_>, kind: &str, name: Result<&str, usize>) -> std::fmt::Result {
            match name {
                Ok(name) => write!(formatter, "{kind} `{name}`"),
                Err(0) => formatter.write_str(kind),
                Err(position) => write!(formatter, "{kind} #{position}"),
            }
        }
        element(formatter, self.kind, self.name)?;
        if let Some((kind, name)) = self.parent {
            formatter.write_str(" of ")?;
            element(formatter, kind, name)?;
        }
        Ok(())
    }
}

struct Decoder {
    diagnostics: Vec<Diagnostic>,
}

fn span_of<T>(spanned: &TomlSpanned<T>) -> Span {
    spanned.span().into()
}

impl Decoder {
    fn definition(&mut self, root: &Table<'_, '_>) -> Option<Definition> {
        self.check_keys(root, ROOT_KEYS);
        let extension = match root.entries.get("extension") {
            Some(value) => match value.get_ref() {
                DeValue::Table(entries) => {
                    let table = Table { entries, span: span_of(value), what: What::EXTENSION };
                    self.extension(&table)
                }
                other => {
                    self.wrong_type("extension", What::ROOT, "a table", other, span_of(value));
                    None
                }
            },
            None => {
                self.diagnostics.push(
                    Diagnostic::new(Code::MissingKey, "the definition has no `[extension]` table")
                        .at(0..0)
                        .help("add `[extension]` with `name = \"...\"` and `version = \"1.0.0\"`"),
                );
                None
            }
        };
        let actions = self.tables(root, "actions").iter().filter_map(|table| self.action(table)).collect();
        let structures = self.tables(root, "structures").iter().filter_map(|table| self.structure(table)).collect();
        let entities = self.tables(root, "entities").iter().filter_map(|table| self.entity(table)).collect();
        let resources = self.tables(root, "resources").iter().filter_map(|table| self.resource(table)).collect();
        Some(Definition { extension: extension?, actions, structures, entities, resources })
    }

    fn extension(&mut self, table: &Table<'_, '_>) -> Option<Extension> {
        self.check_keys(table, EXTENSION_KEYS);
        let name = self.required_string(table, "name");
        let version = self.required_string(table, "version").and_then(|version| {
            match semver::Version::parse(version.value.trim()) {
                Ok(parsed) => Some(Spanned::new(parsed, version.span)),
                Err(error) => {
                    self.diagnostics.push(
                        Diagnostic::new(
                            Code::InvalidVersion,
                            format!("`{}` is not a semantic version: {error}", version.value),
                        )
                        .at(version.span)
                        .help("write `MAJOR.MINOR.PATCH`, for example `version = \"1.0.0\"`"),
                    );
                    None
                }
            }
        });
        let description = self.string(table, "description");
        let icon = self.string(table, "icon");
        Some(Extension { name: name?, version: version?, description, icon, span: table.span })
    }

    fn action(&mut self, table: &Table<'_, '_>) -> Option<Action> {
        let name = self.required_string(table, "name");
        let table = named(table, "action", "name");
        self.check_keys(&table, ACTION_KEYS);
        let description = self.string(&table, "description");
        let function = self.boolean(&table, "function");
        let inputs = self
            .tables(&table, "inputs")
            .iter()
            .filter_map(|parameter| self.parameter(parameter, Direction::Input))
            .collect();
        let outputs = self
            .tables(&table, "outputs")
            .iter()
            .filter_map(|parameter| self.parameter(parameter, Direction::Output))
            .collect();
        Some(Action { name: name?, description, function, inputs, outputs, span: table.span })
    }

    fn parameter(&mut self, table: &Table<'_, '_>, direction: Direction) -> Option<Parameter> {
        let name = self.required_string(table, "name");
        let kind = match direction {
            Direction::Input => "input",
            Direction::Output => "output",
        };
        let table = named(table, kind, "name");
        self.check_keys(&table, PARAMETER_KEYS);
        let description = self.string(&table, "description");
        let data_type = self.type_spec(&table);
        let mandatory = self.boolean(&table, "mandatory");
        let default = self.literal(&table, "default");
        Some(Parameter {
            name: name?,
            description,
            data_type: data_type?,
            mandatory,
            default,
            direction,
            span: table.span,
        })
    }

    fn structure(&mut self, table: &Table<'_, '_>) -> Option<Structure> {
        let name = self.required_string(table, "name");
        let table = named(table, "structure", "name");
        self.check_keys(&table, STRUCTURE_KEYS);
        let description = self.string(&table, "description");
        let attributes = self.attributes(&table, STRUCTURE_ATTRIBUTE_KEYS);
        Some(Structure { name: name?, description, attributes, span: table.span })
    }

    fn entity(&mut self, table: &Table<'_, '_>) -> Option<Entity> {
        let name = self.required_string(table, "name");
        let table = named(table, "entity", "name");
        self.check_keys(&table, ENTITY_KEYS);
        let description = self.string(&table, "description");
        let table_name = self.string(&table, "table");
        let database = self.string(&table, "database");
        let attributes = self.attributes(&table, ENTITY_ATTRIBUTE_KEYS);
        Some(Entity { name: name?, description, table: table_name, database, attributes, span: table.span })
    }

    fn attributes(&mut self, record: &Table<'_, '_>, keys: &[&str]) -> Vec<Attribute> {
        self.tables(record, "attributes")
            .iter()
            .filter_map(|table| {
                let name = self.required_string(table, "name");
                let table = named(table, "attribute", "name");
                self.check_keys(&table, keys);
                let description = self.string(&table, "description");
                let data_type = self.type_spec(&table);
                let mandatory = self.boolean(&table, "mandatory");
                let default = self.literal(&table, "default");
                let identifier = self.boolean(&table, "identifier");
                let auto_number = self.boolean(&table, "auto_number");
                let column = self.string(&table, "column");
                Some(Attribute {
                    name: name?,
                    description,
                    data_type: data_type?,
                    mandatory,
                    default,
                    identifier,
                    auto_number,
                    column,
                    span: table.span,
                })
            })
            .collect()
    }

    fn resource(&mut self, table: &Table<'_, '_>) -> Option<Resource> {
        let path = self.required_string(table, "path");
        let table = named(table, "resource", "path");
        self.check_keys(&table, RESOURCE_KEYS);
        let deploy = self.required_string(&table, "deploy").and_then(|deploy| {
            let choice = DeployAction::ALL.iter().find(|action| action.name() == deploy.value);
            if choice.is_none() {
                let names = DeployAction::ALL.iter().map(|action| action.name());
                let mut diagnostic = Diagnostic::new(
                    Code::InvalidChoice,
                    format!("unknown deploy action `{}` in {}", deploy.value, table.what),
                )
                .at(deploy.span)
                .label("expected `binaries`, `application`, `images` or `ignore`");
                if let Some(close) = did_you_mean(&deploy.value, names) {
                    diagnostic = diagnostic.help(format!("did you mean `{close}`?"));
                }
                self.diagnostics.push(diagnostic);
            }
            choice.map(|action| Spanned::new(*action, deploy.span))
        });
        Some(Resource { path: path?, deploy: deploy?, span: table.span })
    }

    fn type_spec(&mut self, table: &Table<'_, '_>) -> Option<TypeSpec> {
        let type_name = self.required_string(table, "type");
        let record = self.string(table, "record");
        let length = self.integer(table, "length");
        let decimals = self.integer(table, "decimals");
        let type_name = type_name?;
        let Some(data_type) = DataType::from_name(&type_name.value) else {
            let names = DataType::ALL.iter().map(|data_type| data_type.name());
            let help = match did_you_mean(&type_name.value, names) {
                Some(close) => format!("did you mean `{close}`?"),
                None => "the data types are Text, Integer, Long Integer, Decimal, Boolean, Date Time, \
                         Date, Time, Email, Phone Number, Currency, Binary Data, Entity Identifier, \
                         Record and Record List"
                    .to_owned(),
            };
            self.diagnostics.push(
                Diagnostic::new(
                    Code::UnknownDataType,
                    format!("unknown data type `{}` for {}", type_name.value, table.what),
                )
                .at(type_name.span)
                .help(help),
            );
            return None;
        };
        Some(TypeSpec { data_type: Spanned::new(data_type, type_name.span), record, length, decimals })
    }

    fn check_keys(&mut self, table: &Table<'_, '_>, allowed: &[&str]) {
        for key in table.entries.keys() {
            let name: &str = key.get_ref();
            if allowed.contains(&name) {
                continue;
            }
            let help = match did_you_mean(name, allowed.iter().copied()) {
                Some(close) => format!("did you mean `{close}`?"),
                None => format!(
                    "the keys of {} are {}",
                    table.what,
                    allowed.iter().map(|key| format!("`{key}`")).collect::<Vec<_>>().join(", ")
                ),
            };
            self.diagnostics.push(
                Diagnostic::new(Code::UnknownKey, format!("unknown key `{name}` in {}", table.what))
                    .at(span_of(key))
                    .help(help),
            );
        }
    }

    fn string(&mut self, table: &Table<'_, '_>, key: &str) -> Option<Spanned<String>> {
        let value = table.entries.get(key)?;
        match value.get_ref() {
            DeValue::String(text) => Some(Spanned::new(text.to_string(), span_of(value))),
            other => {
                self.wrong_type(key, table.what, "a string", other, span_of(value));
                None
            }
        }
    }

    fn required_string(&mut self, table: &Table<'_, '_>, key: &str) -> Option<Spanned<String>> {
        if !table.entries.contains_key(key) {
            self.diagnostics.push(
                Diagnostic::new(Code::MissingKey, format!("{} has no `{key}`", table.what))
                    .at(table.span)
                    .help(format!("add `{key} = \"...\"` to it")),
            );
            return None;
        }
        self.string(table, key)
    }

    fn boolean(&mut self, table: &Table<'_, '_>, key: &str) -> Option<Spanned<bool>> {
        let value = table.entries.get(key)?;
        match value.get_ref() {
            DeValue::Boolean(flag) => Some(Spanned::new(*flag, span_of(value))),
            other => {
                self.wrong_type(key, table.what, "a boolean (`true` or `false`)", other, span_of(value));
                None
            }
        }
    }

    fn integer(&mut self, table: &Table<'_, '_>, key: &str) -> Option<Spanned<i64>> {
        let value = table.entries.get(key)?;
        let parsed = match value.get_ref() {
            DeValue::Integer(integer) => integer_value(integer).and_then(|number| i64::try_from(number).ok()),
            other => {
                self.wrong_type(key, table.what, "an integer", other, span_of(value));
                return None;
            }
        };
        if parsed.is_none() {
            self.diagnostics.push(
                Diagnostic::new(Code::WrongValueType, format!("`{key}` in {} is too large", table.what))
                    .at(span_of(value)),
            );
        }
        parsed.map(|number| Spanned::new(number, span_of(value)))
    }

    fn literal(&mut self, table: &Table<'_, '_>, key: &str) -> Option<Spanned<Literal>> {
        let value = table.entries.get(key)?;
        let literal = match value.get_ref() {
            DeValue::String(text) => Literal::String(text.to_string()),
            DeValue::Boolean(flag) => Literal::Boolean(*flag),
            DeValue::Integer(integer) => match integer_value(integer) {
                Some(number) => Literal::Integer(number.to_string()),
                None => Literal::Integer(integer.as_str().replace('_', "")),
            },
            DeValue::Float(float) => Literal::Float(float.as_str().replace('_', "")),
            DeValue::Datetime(datetime) => Literal::DateTime {
                date: datetime.date.is_some(),
                time: datetime.time.is_some(),
                offset: datetime.offset.is_some(),
                text: datetime.to_string(),
            },
            other => {
                self.wrong_type(key, table.what, "a single value", other, span_of(value));
                return None;
            }
        };
        Some(Spanned::new(literal, span_of(value)))
    }

    /// The tables of an array of tables (`[[actions]]`, or `inputs = [{...}, {...}]`).
    fn tables<'a, 'i>(&mut self, parent: &Table<'a, 'i>, key: &str) -> Vec<Table<'a, 'i>> {
        let Some(value) = parent.entries.get(key) else { return Vec::new() };
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong_type(key, parent.what, "an array of tables", value.get_ref(), span_of(value));
            return Vec::new();
        };
        let singular = match key {
            "actions" => "action",
            "inputs" => "input",
            "outputs" => "output",
            "structures" => "structure",
            "entities" => "entity",
            "attributes" => "attribute",
            "resources" => "resource",
            _ => "table",
        };
        // Elements of the definition itself have no parent worth naming.
        let grandparent = match parent.what.kind {
            "the definition" => None,
            kind => Some((kind, parent.what.name)),
        };
        let mut tables = Vec::with_capacity(items.len());
        for (position, item) in items.iter().enumerate() {
            match item.get_ref() {
                DeValue::Table(entries) => tables.push(Table {
                    entries,
                    span: span_of(item),
                    what: What { kind: singular, name: Err(position + 1), parent: grandparent },
                }),
                other => self.wrong_type(key, parent.what, "a table", other, span_of(item)),
            }
        }
        tables
    }

    fn wrong_type(&mut self, key: &str, what: impl std::fmt::Display, expected: &str, found: &DeValue<'_>, span: Span) {
        let found = match found {
            DeValue::String(_) => "a string",
            DeValue::Integer(_) => "an integer",
            DeValue::Float(_) => "a float",
            DeValue::Boolean(_) => "a boolean",
            DeValue::Datetime(_) => "a date-time",
            DeValue::Array(_) => "an array",
            DeValue::Table(_) => "a table",
        };
        self.diagnostics.push(
            Diagnostic::new(Code::WrongValueType, format!("`{key}` in {what} must be {expected}, found {found}"))
                .at(span)
                .label(format!("expected {expected}")),
        );
    }
}

/// Names a table by the name it declares: "action #3" becomes "action `Charge`".
fn named<'a, 'i>(table: &Table<'a, 'i>, kind: &'static str, key: &str) -> Table<'a, 'i> {
    // Borrowed from the document, so that naming a table allocates nothing.
    let declared = table.entries.get(key).and_then(|value| match value.get_ref() {
        DeValue::String(text) => Some(text.as_ref()),
        _ => None,
    });
    let what = What {
        kind,
        name: declared.ok_or(match table.what.name {
            Err(position) => position,
            Ok(_) => 0,
        }),
        parent: table.what.parent,
    };
    Table { entries: table.entries, span: table.span, what }
}

fn integer_value(integer: &toml::de::DeInteger<'_>) -> Option<i128> {
    let digits = integer.as_str().replace('_', "");
    let (sign, digits) = match digits.strip_prefix('-') {
        Some(rest) => (-1, rest.to_owned()),
        None => (1, digits.strip_prefix('+').unwrap_or(&digits).to_owned()),
    };
    let digits = match integer.radix() {
        10 => digits.as_str(),
        _ => digits.get(2..).unwrap_or_default(),
    };
    i128::from_str_radix(digits, integer.radix()).ok().map(|number| sign * number)
}
