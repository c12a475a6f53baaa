//! Adding a stub method for each new action to the author's `impl Extension for …`.

use xif_definition::Definition;

use crate::generate::signature_with;
use crate::names::snake_case;

/// What [`insert_stubs`] did to the author's source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StubOutcome {
    /// Every action already has a method; the source is unchanged.
    Complete,
    /// Stubs were added for these actions; the new source follows.
    Added {
        /// The actions that got a stub, in definition order.
        actions: Vec<String>,
        /// The author's source with the stubs.
        source: String,
    },
    /// The source has no `impl … Extension for …` to add stubs to.
    NoImplementation,
    /// The source does not parse; the compiler will say why.
    Unparsable,
}

/// Adds to the author's `impl Extension for …` in `source` a method for every action of
/// `definition` that has none. A stub compiles and returns a "not implemented" error.
pub fn insert_stubs(definition: &Definition, source: &str) -> StubOutcome {
    let Ok(file) = syn::parse_file(source) else { return StubOutcome::Unparsable };
    let implementation = file.items.iter().find_map(|item| match item {
        syn::Item::Impl(implementation)
            if implementation
                .trait_
                .as_ref()
                .and_then(|(_, path, _)| path.segments.last())
                .is_some_and(|segment| segment.ident == "Extension") =>
        {
            Some(implementation)
        }
        _ => None,
    });
    let Some(implementation) = implementation else { return StubOutcome::NoImplementation };
    let methods: Vec<String> = implementation
        .items
        .iter()
        .filter_map(|item| match item {
            syn::ImplItem::Fn(method) => Some(method.sig.ident.to_string()),
            _ => None,
        })
        .collect();
    let missing: Vec<_> =
        definition.actions.iter().filter(|action| !methods.contains(&snake_case(&action.name.value))).collect();
    if missing.is_empty() {
        return StubOutcome::Complete;
    }
    let mut stubs = String::new();
    for action in &missing {
        stubs.push('\n');
        if let Some(description) = action.description.as_ref().map(|description| description.value.trim()) {
            for line in description.lines() {
                stubs.push_str(&format!("    /// {}\n", line.trim_end()).replace("/// \n", "///\n"));
            }
        }
        stubs.push_str(&format!(
            "    {} {{\n        Err(bindings::ActionError::not_implemented({:?}))\n    }}\n",
            signature_with(definition, action, "_", "bindings::"),
            action.name.value
        ));
    }
    let close = implementation.brace_token.span.close().start();
    let Some(offset) = byte_offset(source, close.line, close.column) else { return StubOutcome::Unparsable };
    // Stubs go after the last method, before the closing brace's line.
    let insert_at = source[..offset].rfind('\n').map_or(offset, |newline| newline + 1);
    let mut updated = String::with_capacity(source.len() + stubs.len());
    updated.push_str(&source[..insert_at]);
    let stubs = if source[..insert_at].trim_end().ends_with('{') { stubs.trim_start_matches('\n') } else { &stubs };
    updated.push_str(stubs);
    updated.push_str(&source[insert_at..]);
    StubOutcome::Added { actions: missing.iter().map(|action| action.name.value.clone()).collect(), source: updated }
}

/// The byte offset of a 1-based line and 0-based character column, as `proc-macro2` reports
/// them.
fn byte_offset(source: &str, line: usize, column: usize) -> Option<usize> {
    let line_start =
        if line <= 1 { 0 } else { source.match_indices('\n').nth(line - 2).map(|(offset, _)| offset + 1)? };
    let rest = &source[line_start..];
    let within = rest.char_indices().nth(column).map_or(rest.len(), |(offset, _)| offset);
    Some(line_start + within)
}
