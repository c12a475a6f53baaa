//! The model of an extension definition.

use std::fmt;

use xif_diagnostics::Span;

/// A value with the span of the source text it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub span: Span,
}

impl<T> Spanned<T> {
    /// Wraps `value` read at `span`.
    pub fn new(value: T, span: Span) -> Self {
        Self { value, span }
    }
}

/// A parsed `extension.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    /// The `[extension]` table.
    pub extension: Extension,
    /// The `[[actions]]`, in source order.
    pub actions: Vec<Action>,
    /// The `[[structures]]`, in source order.
    pub structures: Vec<Structure>,
    /// The `[[entities]]`, in source order.
    pub entities: Vec<Entity>,
    /// The `[[resources]]`, in source order.
    pub resources: Vec<Resource>,
}

impl Definition {
    /// The structure or entity called `name` (case-insensitively).
    pub fn record_definition(&self, name: &str) -> Option<RecordDefinition<'_>> {
        self.structures
            .iter()
            .find(|structure| structure.name.value.eq_ignore_ascii_case(name))
            .map(RecordDefinition::Structure)
            .or_else(|| {
                self.entities
                    .iter()
                    .find(|entity| entity.name.value.eq_ignore_ascii_case(name))
                    .map(RecordDefinition::Entity)
            })
    }

    /// The action called `name` (case-insensitively).
    pub fn action(&self, name: &str) -> Option<&Action> {
        self.actions.iter().find(|action| action.name.value.eq_ignore_ascii_case(name))
    }
}

/// The extension's identity: the `[extension]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// Its name, an element name.
    pub name: Spanned<String>,
    /// Its semantic version.
    pub version: Spanned<semver::Version>,
    /// What it is for.
    pub description: Option<Spanned<String>>,
    /// A path to its icon, relative to the project.
    pub icon: Option<Spanned<String>>,
    /// The whole table.
    pub span: Span,
}

/// A callable operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// Its name, unique among actions.
    pub name: Spanned<String>,
    /// What it does.
    pub description: Option<Spanned<String>>,
    /// Whether it can be used in expressions (then it has exactly one output).
    pub function: Option<Spanned<bool>>,
    /// Input parameters, in order.
    pub inputs: Vec<Parameter>,
    /// Output parameters, in order.
    pub outputs: Vec<Parameter>,
    /// The whole table.
    pub span: Span,
}

impl Action {
    /// Whether the action is a function.
    pub fn is_function(&self) -> bool {
        self.function.as_ref().is_some_and(|function| function.value)
    }
}

/// Whether a parameter is passed in or returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Passed by the caller.
    Input,
    /// Returned by the action.
    Output,
}

/// An input or output parameter of an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    /// Its name, unique within the action.
    pub name: Spanned<String>,
    /// What it means.
    pub description: Option<Spanned<String>>,
    /// Its data type and the options of that type.
    pub data_type: TypeSpec,
    /// Whether the caller must pass it; inputs are mandatory unless they say otherwise.
    pub mandatory: Option<Spanned<bool>>,
    /// The value an omitted input takes.
    pub default: Option<Spanned<Literal>>,
    /// In or out.
    pub direction: Direction,
    /// The whole table.
    pub span: Span,
}

impl Parameter {
    /// Whether the parameter must be given: explicitly, or by default for inputs.
    pub fn is_mandatory(&self) -> bool {
        match &self.mandatory {
            Some(mandatory) => mandatory.value,
            None => self.direction == Direction::Input && self.default.is_none(),
        }
    }
}

/// A record type used by actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Structure {
    /// Its name, unique among structures and entities.
    pub name: Spanned<String>,
    /// What it holds.
    pub description: Option<Spanned<String>>,
    /// Its attributes, in order.
    pub attributes: Vec<Attribute>,
    /// The whole table.
    pub span: Span,
}

/// A record type mapped to a physical table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    /// Its name, unique among structures and entities.
    pub name: Spanned<String>,
    /// What it holds.
    pub description: Option<Spanned<String>>,
    /// The physical table it maps to.
    pub table: Option<Spanned<String>>,
    /// The logical database the table is in; `main` when not given.
    pub database: Option<Spanned<String>>,
    /// Its attributes (columns), in order.
    pub attributes: Vec<Attribute>,
    /// The whole table.
    pub span: Span,
}

impl Entity {
    /// The logical database, `main` by default.
    pub fn database_name(&self) -> &str {
        self.database.as_ref().map_or(DEFAULT_DATABASE, |database| database.value.as_str())
    }
}

/// The logical database of entities that name none.
pub const DEFAULT_DATABASE: &str = "main";

/// An attribute of a structure or entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Its name, unique within its record.
    pub name: Spanned<String>,
    /// What it means.
    pub description: Option<Spanned<String>>,
    /// Its data type and the options of that type.
    pub data_type: TypeSpec,
    /// Whether it must have a value. Identifiers are mandatory unless they say otherwise.
    pub mandatory: Option<Spanned<bool>>,
    /// The value it starts with.
    pub default: Option<Spanned<Literal>>,
    /// Entities only: whether it is the identifier (primary key).
    pub identifier: Option<Spanned<bool>>,
    /// Entities only: whether the database numbers it.
    pub auto_number: Option<Spanned<bool>>,
    /// Entities only: the column name, when it differs from the attribute's name.
    pub column: Option<Spanned<String>>,
    /// The whole table.
    pub span: Span,
}

impl Attribute {
    /// Whether it is the identifier.
    pub fn is_identifier(&self) -> bool {
        self.identifier.as_ref().is_some_and(|identifier| identifier.value)
    }

    /// Whether it is auto-numbered.
    pub fn is_auto_number(&self) -> bool {
        self.auto_number.as_ref().is_some_and(|auto_number| auto_number.value)
    }

    /// Whether it must have a value: explicitly, or by being the identifier.
    pub fn is_mandatory(&self) -> bool {
        match &self.mandatory {
            Some(mandatory) => mandatory.value,
            None => self.is_identifier(),
        }
    }
}

/// A data type with the options that refine it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeSpec {
    /// The type.
    pub data_type: Spanned<DataType>,
    /// For Record, Record List and Entity Identifier: the structure or entity.
    pub record: Option<Spanned<String>>,
    /// Characters for text types, total digits for Decimal and Currency.
    pub length: Option<Spanned<i64>>,
    /// Digits after the point for Decimal and Currency.
    pub decimals: Option<Spanned<i64>>,
}

/// The data types of the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    /// Unicode text.
    Text,
    /// 32-bit signed integer.
    Integer,
    /// 64-bit signed integer.
    LongInteger,
    /// Exact decimal number.
    Decimal,
    /// True or false.
    Boolean,
    /// Date and time of day.
    DateTime,
    /// Calendar date.
    Date,
    /// Time of day.
    Time,
    /// E-mail address (text).
    Email,
    /// Phone number (text).
    PhoneNumber,
    /// Money amount (exact decimal).
    Currency,
    /// Bytes.
    BinaryData,
    /// The identifier of a record of an entity.
    EntityIdentifier,
    /// One record of a structure or entity.
    Record,
    /// A list of records of a structure or entity.
    RecordList,
}

impl DataType {
    /// Every data type, in the order the documentation lists them.
    pub const ALL: &'static [DataType] = &[
        DataType::Text,
        DataType::Integer,
        DataType::LongInteger,
        DataType::Decimal,
        DataType::Boolean,
        DataType::DateTime,
        DataType::Date,
        DataType::Time,
        DataType::Email,
        DataType::PhoneNumber,
        DataType::Currency,
        DataType::BinaryData,
        DataType::EntityIdentifier,
        DataType::Record,
        DataType::RecordList,
    ];

    /// The name as written in `extension.toml`.
    pub const fn name(self) -> &'static str {
        match self {
            DataType::Text => "Text",
            DataType::Integer => "Integer",
            DataType::LongInteger => "Long Integer",
            DataType::Decimal => "Decimal",
            DataType::Boolean => "Boolean",
            DataType::DateTime => "Date Time",
            DataType::Date => "Date",
            DataType::Time => "Time",
            DataType::Email => "Email",
            DataType::PhoneNumber => "Phone Number",
            DataType::Currency => "Currency",
            DataType::BinaryData => "Binary Data",
            DataType::EntityIdentifier => "Entity Identifier",
            DataType::Record => "Record",
            DataType::RecordList => "Record List",
        }
    }

    /// The type called `name`, exactly as documented.
    pub fn from_name(name: &str) -> Option<DataType> {
        DataType::ALL.iter().copied().find(|data_type| data_type.name() == name)
    }

    /// Whether `length` counts characters of this type.
    pub const fn is_text(self) -> bool {
        matches!(self, DataType::Text | DataType::Email | DataType::PhoneNumber)
    }

    /// Whether this is an exact decimal type that takes `length` and `decimals`.
    pub const fn is_decimal(self) -> bool {
        matches!(self, DataType::Decimal | DataType::Currency)
    }

    /// Whether this type refers to a record definition through `record`.
    pub const fn takes_record(self) -> bool {
        matches!(self, DataType::Record | DataType::RecordList | DataType::EntityIdentifier)
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// A literal value as written in the definition, kept as text where the exact digits matter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    /// A TOML integer, as written (with its sign, without `_` separators).
    Integer(String),
    /// A TOML float, as written.
    Float(String),
    /// A TOML string.
    String(String),
    /// A TOML boolean.
    Boolean(bool),
    /// A TOML date, time or date-time.
    DateTime {
        /// Whether it has a date part.
        date: bool,
        /// Whether it has a time part.
        time: bool,
        /// Whether it has a UTC offset.
        offset: bool,
        /// As written.
        text: String,
    },
}

impl Literal {
    /// What kind of literal it is, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Literal::Integer(_) => "an integer",
            Literal::Float(_) => "a float",
            Literal::String(_) => "a string",
            Literal::Boolean(_) => "a boolean",
            Literal::DateTime { date: true, time: true, .. } => "a date-time",
            Literal::DateTime { date: true, .. } => "a date",
            Literal::DateTime { .. } => "a time",
        }
    }
}

/// A file packed into the XIF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Path relative to the project directory, with `/` separators.
    pub path: Spanned<String>,
    /// What the server does with it.
    pub deploy: Spanned<DeployAction>,
    /// The whole table.
    pub span: Span,
}

/// What the server does with a resource when the extension is deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeployAction {
    /// Placed beside the extension's binary.
    Binaries,
    /// Placed in the application's directory.
    Application,
    /// Served as an image.
    Images,
    /// Packed but not deployed.
    Ignore,
}

impl DeployAction {
    /// Every deploy action.
    pub const ALL: &'static [DeployAction] =
        &[DeployAction::Binaries, DeployAction::Application, DeployAction::Images, DeployAction::Ignore];

    /// The name as written in `extension.toml`.
    pub const fn name(self) -> &'static str {
        match self {
            DeployAction::Binaries => "binaries",
            DeployAction::Application => "application",
            DeployAction::Images => "images",
            DeployAction::Ignore => "ignore",
        }
    }
}

/// A structure or an entity.
#[derive(Debug, Clone, Copy)]
pub enum RecordDefinition<'a> {
    /// A structure.
    Structure(&'a Structure),
    /// An entity.
    Entity(&'a Entity),
}

impl<'a> RecordDefinition<'a> {
    /// Its name.
    pub fn name(&self) -> &'a Spanned<String> {
        match self {
            RecordDefinition::Structure(structure) => &structure.name,
            RecordDefinition::Entity(entity) => &entity.name,
        }
    }

    /// Its attributes.
    pub fn attributes(&self) -> &'a [Attribute] {
        match self {
            RecordDefinition::Structure(structure) => &structure.attributes,
            RecordDefinition::Entity(entity) => &entity.attributes,
        }
    }
}
