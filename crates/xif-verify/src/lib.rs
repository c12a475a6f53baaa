//! The verification catalogue: every rule an extension definition must pass before it is
//! compiled, saved and published.
//!
//! [`verify`] is a pure function of the parsed [`Definition`] and a [`Context`] that the caller
//! fills in: facts about the files the definition names, the version now published on the
//! server, and the publishing account's permissions. It does no IO and never prints; it returns
//! diagnostics whose codes are listed in [`xif_diagnostics::Code`].

mod breaking;
mod entities;
mod folded;
mod impact;
mod names;
mod parameters;
mod resources;
mod types;

use std::collections::BTreeMap;

use xif_definition::Definition;
use xif_diagnostics::{Code, Diagnostic};

pub use impact::{Impact, Uses, impact};
pub use names::{MAX_ATTRIBUTE_NAME, MAX_NAME, NameKind, RESERVED_NAMES, RESERVED_TYPE_NAMES, name_problem};
pub use resources::{path_problem, referenced_files};

/// What the verifier knows besides the definition.
#[derive(Debug, Default, Clone)]
pub struct Context<'a> {
    /// What was found on disk for each file path the definition names (see
    /// [`referenced_files`]), keyed by the path as written. A path missing from the map is
    /// treated as a missing file.
    pub files: BTreeMap<String, FileFact>,
    /// The version now published on the Platform Server, to report breaking changes against.
    pub published: Option<&'a Definition>,
    /// The publishing account's permissions, when known.
    pub permissions: Option<Permissions>,
    /// Modules that use the extension, to report the impact of the change on.
    pub consumers: Vec<Consumer<'a>>,
}

/// A module that uses elements of the extension.
#[derive(Debug, Clone)]
pub struct Consumer<'a> {
    /// The module's name.
    pub module: String,
    /// The definition it was built against.
    pub built_against: &'a Definition,
    /// What it uses.
    pub uses: Uses,
}

/// What is on disk at a path the definition names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFact {
    /// Nothing.
    Missing,
    /// A directory, not a file.
    Directory,
    /// A file of this many bytes.
    File {
        /// Its size.
        size: u64,
    },
}

/// The Platform Server permissions that verification checks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Permissions {
    /// May upload and publish extensions.
    pub allow_extensions: bool,
    /// May publish extensions that export entities.
    pub allow_foreign_entities: bool,
}

/// Runs every rule of the catalogue on `definition`. Diagnostics come sorted by where they
/// point, errors before warnings at the same place.
pub fn verify(definition: &Definition, context: &Context<'_>) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    names::check(definition, &mut diagnostics);
    let records = types::Records::new(definition);
    types::check(definition, &records, &mut diagnostics);
    entities::check(definition, context, &mut diagnostics);
    parameters::check(definition, &mut diagnostics);
    resources::check(definition, context, &mut diagnostics);
    warnings(definition, &mut diagnostics);
    if let Some(published) = context.published {
        breaking::check(published, definition, &mut diagnostics);
    }
    for consumer in &context.consumers {
        let (impact, changes) = impact(consumer.built_against, definition, &consumer.uses);
        if impact >= Impact::PossiblyIncompatible {
            diagnostics.push(
                Diagnostic::new(
                    Code::ConsumerAffected,
                    format!(
                        "module `{}` is {} with this change: {}",
                        consumer.module,
                        impact.name(),
                        changes.join("; ")
                    ),
                )
                .at(definition.extension.name.span)
                .help("check the module; update and republish it where the change breaks it"),
            );
        }
    }
    diagnostics.sort_by_key(|diagnostic| {
        (diagnostic.span.map_or(0, |span| span.start), diagnostic.severity(), diagnostic.code)
    });
    diagnostics
}

fn warnings(definition: &Definition, diagnostics: &mut Vec<Diagnostic>) {
    let extension = &definition.extension;
    if definition.actions.is_empty() {
        diagnostics.push(
            Diagnostic::new(
                Code::NoActions,
                format!("extension `{}` has no actions, so there is nothing to compile", extension.name.value),
            )
            .at(extension.name.span)
            .help("add an `[[actions]]` table, or ignore this if the extension only shares data"),
        );
    }
    let described = [("extension", &extension.name, &extension.description)]
        .into_iter()
        .chain(definition.actions.iter().map(|action| ("action", &action.name, &action.description)))
        .chain(definition.structures.iter().map(|structure| ("structure", &structure.name, &structure.description)))
        .chain(definition.entities.iter().map(|entity| ("entity", &entity.name, &entity.description)));
    for (kind, name, description) in described {
        if description.as_ref().is_none_or(|description| description.value.trim().is_empty()) {
            diagnostics.push(
                Diagnostic::new(Code::MissingDescription, format!("{kind} `{}` has no description", name.value))
                    .at(name.span)
                    .help(
                        "add `description = \"...\"`: it documents the element for modules and in the generated code",
                    ),
            );
        }
    }
}
