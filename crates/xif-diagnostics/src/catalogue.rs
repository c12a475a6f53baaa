//! The catalogue of diagnostic codes. Codes are stable: a code is never reused for another rule
//! and never renumbered. Errors are `XE####`, warnings `XW####`; the hundreds group the rules
//! (00 the file itself, 01 names, 02 types, 03 entities, 04 parameters, 05 resources, 06 the
//! source code, 07 compiling).

use crate::Severity;

macro_rules! catalogue {
    ($( $variant:ident = $code:literal, $severity:ident, $title:literal, $explanation:literal; )*) => {
        /// A stable diagnostic code. `xif explain CODE` prints its long explanation.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code {
            $(
                #[doc = $title]
                $variant,
            )*
        }

        impl Code {
            /// Every code, in catalogue order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The code as written: `XE0103`.
            pub const fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code),* }
            }

            /// Whether the code is an error or a warning.
            pub const fn severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$severity),* }
            }

            /// One line saying what the rule is about.
            pub const fn title(self) -> &'static str {
                match self { $(Code::$variant => $title),* }
            }

            /// The long explanation: why the rule exists, an example, and the fix.
            pub const fn explanation(self) -> &'static str {
                match self { $(Code::$variant => $explanation),* }
            }
        }
    };
}

/// The step of Verify that reports a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Verifying the definition.
    Definition,
    /// Updating the source code.
    UpdateSource,
    /// Compiling.
    Compile,
}

impl Code {
    /// The step that reports this code, from its group.
    pub fn step(self) -> Step {
        match &self.as_str()[2..4] {
            "06" => Step::UpdateSource,
            "07" => Step::Compile,
            _ => Step::Definition,
        }
    }

    /// Looks a code up by its text, ignoring case: `xe0103` finds `XE0103`.
    pub fn parse(text: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|code| code.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

catalogue! {
    EmptyDefinition = "XE0001", Error, "the definition file is empty",
r#"`extension.toml` has no content, so there is no extension to verify.

Every extension needs at least an `[extension]` table with a name and a version:

    [extension]
    name = "PaymentGateway"
    version = "1.0.0"

`xif new NAME` writes a complete definition to start from."#;

    InvalidUtf8 = "XE0002", Error, "the definition file is not valid UTF-8",
r#"`extension.toml` must be UTF-8 text, as every TOML file. The diagnostic points at the first
byte that is not part of a UTF-8 character.

This usually happens when the file was saved by an editor in a legacy encoding (Windows-1252,
Latin-1) or when a binary file was saved under the name. Re-save the file as UTF-8."#;

    TomlSyntax = "XE0003", Error, "TOML syntax error",
r#"The definition is not well-formed TOML. The diagnostic points at where the parser stopped and
says what it expected.

Common causes: a missing closing quote, a table header without its closing `]`, a key defined
twice in one table, or a value that is not quoted:

    name = PaymentGateway      # wrong: strings are quoted
    name = "PaymentGateway"    # right"#;

    UnknownKey = "XE0004", Error, "unknown key",
r#"A table in the definition has a key that xif does not know. Unknown keys are refused rather
than ignored, because a misspelt key (`mandatroy = true`) would otherwise be silently dropped and
the extension would behave differently from what its author wrote.

The diagnostic names the keys that the table accepts and suggests the closest one."#;

    WrongValueType = "XE0005", Error, "value has the wrong type",
r#"A key has a value of the wrong TOML type, for example a string where a boolean is expected:

    mandatory = "yes"    # wrong
    mandatory = true     # right

The diagnostic names the type that was expected and the one that was found."#;

    MissingKey = "XE0006", Error, "a required key is missing",
r#"A table lacks a key that it must have: the extension's `name` and `version`, the `name` of every
action, structure, entity, parameter and attribute, the `type` of every parameter and attribute,
and the `path` and `deploy` action of every resource."#;

    DefinitionTooLarge = "XE0007", Error, "the definition file is larger than 16 MiB",
r#"xif refuses definitions over 16 MiB without reading them. A definition of ten thousand actions
takes a few megabytes, so a larger file is almost always the wrong file (a log or a binary saved
as `extension.toml`). Check which file is at the path shown."#;

    InvalidVersion = "XE0008", Error, "the version is not a semantic version",
r#"The extension's `version` must be a semantic version, `MAJOR.MINOR.PATCH`, optionally with a
pre-release or build part:

    version = "1.4.0"
    version = "2.0.0-beta.1"

The Platform Server orders versions by it and modules record the version they were built
against."#;

    InvalidChoice = "XE0009", Error, "value is not one of the allowed choices",
r#"A key accepts only a fixed set of values and the definition has another. For example, the
`deploy` action of a resource is one of `binaries`, `application`, `images` or `ignore`.
The diagnostic lists the allowed values and suggests the closest."#;

    InvalidName = "XE0101", Error, "name has invalid characters",
r#"Names of the extension, actions, parameters, structures, entities and attributes follow the
platform's rules: letters, digits and `_`, starting with a letter. Spaces, hyphens and accented
letters are not allowed, because names become identifiers in the generated source code and
in database columns.

    name = "Get-Customer"   # wrong
    name = "GetCustomer"    # right"#;

    NameTooLong = "XE0102", Error, "name is too long",
r#"A name has more characters than its kind allows: 50 for the extension and its elements,
28 for entity attributes (their names become database columns, whose length some databases
limit). Shorten the name; descriptions can carry the detail."#;

    DuplicateName = "XE0103", Error, "name is already used in this scope",
r#"Two elements in one scope have the same name. Names are compared without regard to case, so
`Customer` and `customer` are the same name. The scopes are:

- actions, among actions;
- structures and entities together (both are record definitions);
- the input and output parameters of one action;
- the attributes of one structure or entity;
- resources, by path.

Rename one of the two; the diagnostic points at the second and names the first."#;

    ReservedName = "XE0104", Error, "name is reserved",
r#"A name is a word the platform or the generated code reserves. Element names become Rust
identifiers and platform names, so these are refused (case-insensitively): the names of the data
types (`Text`, `Integer`, `Decimal`, `Boolean`, `Date`, `Time`, `DateTime`, `Email`, `Currency`,
`Record`, `List`), the names the generated code uses (`Extension`, `Result`, `Error`, `Option`,
`String`, `Vec`, `Self`), and Rust keywords (`type`, `fn`, `struct`, `impl`, `match`, `loop`,
and the others). Choose another name, for example `CustomerType` instead of `Type`."#;

    UnknownDataType = "XE0201", Error, "unknown data type",
r#"A parameter or attribute names a data type that does not exist. The data types are:

    Text, Integer, Long Integer, Decimal, Boolean, Date Time, Date, Time, Email,
    Phone Number, Currency, Binary Data, Entity Identifier, Record, Record List

The diagnostic suggests the closest name."#;

    MissingRecordDefinition = "XE0202", Error, "record type without a record definition",
r#"The types `Record` and `Record List` hold records of a structure or entity, and
`Entity Identifier` identifies a record of an entity, so they need a `record` key naming it:

    type = "Record List"
    record = "Address""#;

    UnknownRecordDefinition = "XE0203", Error, "record definition not found",
r#"The `record` key names a structure or entity that the definition does not declare, or an
`Entity Identifier` names a structure (only entities have identifiers). Declare the record
definition or fix the name; the diagnostic suggests the closest declared one."#;

    RecursiveStructure = "XE0204", Error, "structures hold each other",
r#"A structure holds itself, directly or through other structures (A holds B holds A), through
`Record` or `Record List` attributes. Such a record has no finite representation on the wire or
in the generated code. Break the cycle, for example by holding an identifier instead of the
record."#;

    OptionNotForType = "XE0205", Error, "option does not apply to this data type",
r#"A parameter or attribute sets an option its data type does not take:

- `length` applies to Text, Email, Phone Number (characters) and Decimal, Currency (digits);
- `decimals` applies to Decimal and Currency;
- `record` applies to Record, Record List and Entity Identifier.

Remove the option or change the type."#;

    InvalidLength = "XE0206", Error, "length or decimals out of range",
r#"`length` must be at least 1; for Decimal and Currency it is the total number of digits, at
most 28 (the precision of the exact decimal type). `decimals` is at most 28 and not more than
the length. Text defaults to 50 characters, Decimal to 28 digits with 8 decimals."#;

    EntityWithoutAttributes = "XE0301", Error, "entity has no attributes",
r#"An entity maps to a database table and needs at least one attribute, its identifier. Add the
attributes, starting with the identifier:

    [[entities.attributes]]
    name = "Id"
    type = "Long Integer"
    identifier = true
    auto_number = true"#;

    EntityWithoutIdentifier = "XE0302", Error, "entity has no identifier",
r#"Every entity needs exactly one attribute marked `identifier = true`; it becomes the table's
primary key and the type of `Entity Identifier` parameters that refer to the entity."#;

    SeveralIdentifiers = "XE0303", Error, "entity has more than one identifier",
r#"Only one attribute of an entity can be its identifier; composite keys are not supported. Keep
`identifier = true` on one attribute and remove it from the others."#;

    IdentifierType = "XE0304", Error, "identifier is not Integer, Long Integer or Text",
r#"An entity's identifier must be of type Integer, Long Integer or Text. Other types (Decimal,
dates, Binary Data, records) do not make reliable keys."#;

    IdentifierNotMandatory = "XE0305", Error, "identifier is not mandatory",
r#"An entity's identifier always has a value, so it cannot be declared `mandatory = false`.
Remove the `mandatory` key (identifiers are mandatory by default) or set it to true."#;

    SeveralAutoNumbers = "XE0306", Error, "entity has more than one auto-number attribute",
r#"A table has at most one auto-number column. Keep `auto_number = true` on one attribute,
normally the identifier."#;

    AutoNumberNotInteger = "XE0307", Error, "auto-number on a non-integer attribute",
r#"Only Integer and Long Integer attributes can be auto-numbered: the database generates their
values by counting."#;

    MissingTableName = "XE0308", Error, "entity has no table name",
r#"An entity maps to a physical table, so it needs `table = "NAME"`. The extension does not
create the table; it must exist in the logical database the entity names."#;

    SharedTable = "XE0309", Error, "two entities map to one table",
r#"Two entities name the same table in the same logical database (compared without regard to
case). Each table is mapped by one entity; remove one of them or fix the table name."#;

    ForeignEntitiesPermission = "XE0310", Error, "entities need the allow-foreign-entities permission",
r#"The extension declares entities, and publishing an extension that exports entities needs the
`allow-foreign-entities` permission on the Platform Server (the role `change-and-deploy`
grants it). The account used to publish does not have it. Ask an administrator for it, or
remove the entities."#;

    AttributeNotColumn = "XE0311", Error, "entity attribute cannot be a record",
r#"Entity attributes are table columns, so they cannot be of type Record or Record List. Use an
`Entity Identifier` attribute to refer to another entity, or a structure for nested data."#;

    MandatoryOutput = "XE0401", Error, "output parameter is marked mandatory",
r#"`mandatory` applies to input parameters: it says the caller must pass a value. An output
parameter always has a value when the action returns, so `mandatory = true` on it is refused.
Remove the key."#;

    DefaultOverflow = "XE0402", Error, "default value does not fit its type",
r#"A default value is out of the range of its data type: Integer is 32-bit
(-2147483648 to 2147483647), Long Integer 64-bit, and Decimal and Currency hold at most
`length - decimals` digits before the point and `decimals` after it."#;

    DefaultTooLong = "XE0403", Error, "default text is longer than the declared length",
r#"A Text, Email or Phone Number default has more characters than the parameter's `length`
(50 when not given). Shorten the default or raise the length."#;

    InvalidDefault = "XE0404", Error, "default value is not valid for its type",
r#"A default value is not a value of its data type: a string for an Integer, a number for a
Boolean, a date that is not a TOML date. Dates and times are written as TOML literals,
without quotes:

    default = 2024-01-31            # Date
    default = 09:30:00              # Time
    default = 2024-01-31T09:30:00   # Date Time

Binary Data, Record, Record List and Entity Identifier take no default."#;

    FunctionOutputs = "XE0405", Error, "function action must have exactly one output",
r#"An action marked `function = true` can be used in expressions, so it returns a single value:
it must have exactly one output parameter. Add or remove outputs, or drop the flag."#;

    DefaultOnOutput = "XE0406", Error, "output parameter has a default value",
r#"Default values are what an action receives when the caller omits an input. An output
parameter is set by the action itself, so a default on it has no meaning. Remove it."#;

    ResourceMissing = "XE0501", Error, "resource file not found",
r#"A resource, or the extension's icon, names a file that does not exist in the project (paths
are relative to the directory of `extension.toml`). Add the file or fix the path."#;

    ResourceEmpty = "XE0502", Error, "resource file is empty",
r#"A resource file has no content. An empty file deployed as a binary or application file is
almost always a mistake (a failed download or copy). Put the real file in place, or remove the
resource."#;

    ReservedResourceName = "XE0503", Error, "resource name is reserved",
r#"A resource's file name is reserved, either by the XIF archive layout (`manifest.json`,
`manifest.json.minisig`, `extension.toml`) or as a device name on some operating systems
(`CON`, `PRN`, `AUX`, `NUL`, `COM1` to `COM9`, `LPT1` to `LPT9`, with any extension).
Rename the file."#;

    ResourceOutsideProject = "XE0504", Error, "resource path leaves the project",
r#"Resource paths are relative paths inside the project directory. An absolute path, a `..`
component or a backslash would make the archive depend on the machine it was built on, or let it
write outside its destination when unpacked. Copy the file into the project, for example under
`resources/`."#;

    NoActions = "XW0001", Warning, "the extension has no actions",
r#"The extension declares no actions, so there is nothing to compile and modules can only use its
structures and entities. That is allowed, but usually an action is missing."#;

    OnlyAutoNumber = "XW0002", Warning, "entity has only an auto-number attribute",
r#"The entity's single attribute is its auto-numbered identifier, so its records carry no data.
Add the attributes the table has."#;

    SeveralBinaryData = "XW0003", Warning, "entity has more than one Binary Data attribute",
r#"Binary Data columns are large and are read with every record. An entity with several of them
is slow to query; consider moving the binary data to an entity of its own."#;

    MissingDescription = "XW0004", Warning, "element has no description",
r#"The extension, an action, a structure or an entity has no `description`. Descriptions become
the documentation modules see and the doc comments of the generated code."#;

    ConsumerAffected = "XW0006", Warning, "a module that uses the extension is affected",
r#"A module declared that it uses elements of this extension, built against an earlier version,
and this change touches them. The module is *incompatible* when an element it uses was removed
or changed its signature (a parameter or attribute removed or retyped, a new mandatory input,
an action that is no longer a function), and *possibly incompatible* when an element it uses
changed in a way that keeps its signature (a new optional input, a new output or attribute, a
different length). The module must be checked, and updated and republished where it breaks.
Modules declare what they use with `PUT /api/v1/modules/{module}/dependencies`."#;

    GeneratedFileEdited = "XW0601", Warning, "a generated file was edited by hand",
r#"`src/bindings.rs` is written by `xif update-source` from the definition and must not be edited:
its first lines carry a digest of its content, and the content no longer matches. The edited
file was saved beside it (the warning names the copy) and the bindings were written again.

Put your code in `src/main.rs` (or other files of yours): it implements the `Extension` trait
of the bindings and is never overwritten. To change what the bindings contain, change
`extension.toml`."#;

    NoImplementation = "XW0602", Warning, "no implementation of the `Extension` trait found",
r#"`xif update-source` adds a stub method for each new action to the author's
`impl bindings::Extension for …` in `src/main.rs`, and found none there, so it added nothing.
The compiler will report what is missing. Declare the implementation in `src/main.rs`:

    mod bindings;
    struct MyExtension;
    impl bindings::Extension for MyExtension { … }
    fn main() -> std::process::ExitCode { bindings::serve(MyExtension) }"#;

    CompileError = "XE0701", Error, "the Rust compiler reported an error",
r#"Compiling the extension failed. The diagnostic is the compiler's, with its file and line;
its own code (`E0308`) has a long explanation of its own: `rustc --explain E0308`.

A common cause after a change to `extension.toml`: an action was removed or renamed, or a
parameter changed type, and the method in `src/main.rs` still has the old shape. Update the
method to match the `Extension` trait in `src/bindings.rs`."#;

    CompileWarning = "XW0701", Warning, "the Rust compiler reported a warning",
r#"The compiler warned about the extension's code. Warnings do not stop a 1-Click Publish,
but they are often early signs of a bug."#;

    CompileTimeout = "XE0702", Error, "compiling took longer than the time limit",
r#"The build did not finish within the configured time limit and was stopped. A first build
compiles every dependency and takes longest; later ones are incremental. Raise the limit with
`--timeout`, or look for a build script that hangs."#;

    CargoMissing = "XE0703", Error, "cargo was not found",
r#"Compiling needs `cargo`, the Rust build tool, and it is not on the `PATH` (nor where the
`CARGO` variable points). Install Rust (https://rustup.rs) or set `CARGO` to its path."#;

    NoBinary = "XE0704", Error, "the build produced no binary",
r#"cargo finished without producing the extension's executable. The project's `Cargo.toml` must
describe a binary (a `src/main.rs`, or a `[[bin]]` target); a library crate cannot be run by the
host."#;

    CargoFailed = "XE0705", Error, "cargo failed before compiling",
r#"cargo stopped without a compiler diagnostic: the manifest is invalid, a dependency cannot be
resolved or downloaded, or the lock file is out of date in `--locked` mode. The message is
cargo's own."#;

    BreakingChange = "XW0005", Warning, "breaking change against the published version",
r#"Compared with the version now published on the Platform Server, this change breaks modules
that use the extension: an element was removed or renamed, a parameter or attribute changed its
type, or a new mandatory input appeared. Modules that use the changed elements must be updated
and republished after this extension is published."#;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_well_formed_and_match_their_severity() {
        let mut seen = HashSet::new();
        for code in Code::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "{text} is listed twice");
            assert_eq!(text.len(), 6, "{text}");
            assert!(text[2..].chars().all(|c| c.is_ascii_digit()), "{text}");
            let prefix = match code.severity() {
                Severity::Error => "XE",
                Severity::Warning => "XW",
            };
            assert!(text.starts_with(prefix), "{text} has the wrong prefix for its severity");
            assert!(!code.explanation().trim().is_empty(), "{text} has no explanation");
            assert_eq!(Code::parse(&text.to_lowercase()), Some(*code));
        }
    }
}
