//! Entities: identifiers, auto-numbers, tables, column types and the permission to export them.

use std::collections::HashMap;

use xif_definition::{DataType, Definition};
use xif_diagnostics::{Code, Diagnostic};

use crate::Context;

pub(crate) fn check(definition: &Definition, context: &Context<'_>, diagnostics: &mut Vec<Diagnostic>) {
    let mut tables: HashMap<(String, String), (&str, xif_diagnostics::Span)> = HashMap::new();
    for entity in &definition.entities {
        let name = &entity.name.value;
        match &entity.table {
            Some(table) if !table.value.trim().is_empty() => {
                let key = (entity.database_name().to_lowercase(), table.value.to_lowercase());
                if let Some((first, first_span)) = tables.get(&key) {
                    diagnostics.push(
                        Diagnostic::new(
                            Code::SharedTable,
                            format!(
                                "entity `{name}` maps to table `{}` in database `{}`, already mapped by entity `{first}`",
                                table.value,
                                entity.database_name()
                            ),
                        )
                        .at(table.span)
                        .related(*first_span, format!("mapped by `{first}` here"))
                        .help("each table is mapped by one entity; fix the table name or remove one entity"),
                    );
                } else {
                    tables.insert(key, (name, table.span));
                }
            }
            Some(table) => diagnostics.push(
                Diagnostic::new(Code::MissingTableName, format!("entity `{name}` has an empty table name"))
                    .at(table.span)
                    .help("name the physical table, for example `table = \"CUSTOMER\"`"),
            ),
            None => diagnostics.push(
                Diagnostic::new(Code::MissingTableName, format!("entity `{name}` has no table name"))
                    .at(entity.name.span)
                    .help("add `table = \"NAME\"` naming the physical table it maps to"),
            ),
        }

        if entity.attributes.is_empty() {
            diagnostics.push(
                Diagnostic::new(Code::EntityWithoutAttributes, format!("entity `{name}` has no attributes"))
                    .at(entity.name.span)
                    .help("add an `[[entities.attributes]]` table, starting with the identifier"),
            );
            continue;
        }

        let identifiers: Vec<_> = entity.attributes.iter().filter(|attribute| attribute.is_identifier()).collect();
        match identifiers.as_slice() {
            [] => diagnostics.push(
                Diagnostic::new(Code::EntityWithoutIdentifier, format!("entity `{name}` has no identifier"))
                    .at(entity.name.span)
                    .help("mark one attribute `identifier = true`"),
            ),
            [_, extra @ ..] => {
                for attribute in extra {
                    diagnostics.push(
                        Diagnostic::new(
                            Code::SeveralIdentifiers,
                            format!(
                                "attribute `{}` is a second identifier of entity `{name}`, after `{}`",
                                attribute.name.value, identifiers[0].name.value
                            ),
                        )
                        .at(attribute.identifier.as_ref().map_or(attribute.name.span, |flag| flag.span))
                        .related(identifiers[0].name.span, "the first identifier")
                        .help("an entity has exactly one identifier; remove `identifier = true` here"),
                    );
                }
            }
        }
        for identifier in &identifiers {
            let data_type = identifier.data_type.data_type.value;
            if !matches!(data_type, DataType::Integer | DataType::LongInteger | DataType::Text) {
                diagnostics.push(
                    Diagnostic::new(
                        Code::IdentifierType,
                        format!("identifier `{}` of entity `{name}` is of type {data_type}", identifier.name.value),
                    )
                    .at(identifier.data_type.data_type.span)
                    .label("expected Integer, Long Integer or Text")
                    .help("identifiers are Integer, Long Integer or Text"),
                );
            }
            if let Some(mandatory) = identifier.mandatory.as_ref().filter(|mandatory| !mandatory.value) {
                diagnostics.push(
                    Diagnostic::new(
                        Code::IdentifierNotMandatory,
                        format!("identifier `{}` of entity `{name}` is declared not mandatory", identifier.name.value),
                    )
                    .at(mandatory.span)
                    .help("remove `mandatory = false`: identifiers always have a value"),
                );
            }
        }

        let auto_numbers: Vec<_> = entity.attributes.iter().filter(|attribute| attribute.is_auto_number()).collect();
        for attribute in auto_numbers.iter().skip(1) {
            diagnostics.push(
                Diagnostic::new(
                    Code::SeveralAutoNumbers,
                    format!(
                        "attribute `{}` is a second auto-number of entity `{name}`, after `{}`",
                        attribute.name.value, auto_numbers[0].name.value
                    ),
                )
                .at(attribute.auto_number.as_ref().map_or(attribute.name.span, |flag| flag.span))
                .related(auto_numbers[0].name.span, "the first auto-number")
                .help("a table has at most one auto-number column; remove `auto_number = true` here"),
            );
        }
        for attribute in &auto_numbers {
            let data_type = attribute.data_type.data_type.value;
            if !matches!(data_type, DataType::Integer | DataType::LongInteger) {
                diagnostics.push(
                    Diagnostic::new(
                        Code::AutoNumberNotInteger,
                        format!(
                            "auto-number attribute `{}` of entity `{name}` is of type {data_type}",
                            attribute.name.value
                        ),
                    )
                    .at(attribute.auto_number.as_ref().map_or(attribute.name.span, |flag| flag.span))
                    .help("only Integer and Long Integer attributes are auto-numbered"),
                );
            }
        }
        if let [only] = entity.attributes.as_slice()
            && only.is_auto_number()
        {
            diagnostics.push(
                Diagnostic::new(
                    Code::OnlyAutoNumber,
                    format!("entity `{name}` has only its auto-number attribute `{}`", only.name.value),
                )
                .at(entity.name.span)
                .help("add the attributes the table holds"),
            );
        }

        for attribute in &entity.attributes {
            let data_type = attribute.data_type.data_type.value;
            if matches!(data_type, DataType::Record | DataType::RecordList) {
                diagnostics.push(
                    Diagnostic::new(
                        Code::AttributeNotColumn,
                        format!("attribute `{}` of entity `{name}` is of type {data_type}", attribute.name.value),
                    )
                    .at(attribute.data_type.data_type.span)
                    .help("entity attributes are columns; refer to another entity with an Entity Identifier"),
                );
            }
        }
        let binaries: Vec<_> = entity
            .attributes
            .iter()
            .filter(|attribute| attribute.data_type.data_type.value == DataType::BinaryData)
            .collect();
        if let [_, second, ..] = binaries.as_slice() {
            diagnostics.push(
                Diagnostic::new(
                    Code::SeveralBinaryData,
                    format!("entity `{name}` has {} Binary Data attributes", binaries.len()),
                )
                .at(second.data_type.data_type.span)
                .help("move binary data to an entity of its own to keep queries fast"),
            );
        }
    }

    if let (Some(permissions), Some(first)) = (context.permissions, definition.entities.first())
        && !permissions.allow_foreign_entities
    {
        diagnostics.push(
            Diagnostic::new(
                Code::ForeignEntitiesPermission,
                format!(
                    "extension `{}` exports entities ({}), and publishing them needs the `allow-foreign-entities` permission",
                    definition.extension.name.value,
                    definition.entities.iter().map(|entity| format!("`{}`", entity.name.value)).collect::<Vec<_>>().join(", ")
                ),
            )
            .at(first.name.span)
            .help("ask an administrator for `allow-foreign-entities` (or the `change-and-deploy` role)"),
        );
    }
}
