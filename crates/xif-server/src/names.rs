//! Names in paths, checked as the path is read: an extension, action or module name follows the
//! definition's naming rules (`xif_verify::name_problem`), a user name the rule of user names.
//! Each is a type of its own, so a handler that takes one cannot get an unchecked name; a name
//! that breaks its rule is refused with `400 invalid_path` and a message that says the rule.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// The longest user name.
pub const MAX_USER_NAME: usize = 64;

/// The rule of user names, in words.
pub const USER_NAME_RULE: &str = "user names have 1 to 64 letters, digits, `.`, `_` or `-`";

/// The definition's rule for the names of `what`, in words.
pub(crate) fn definition_rule(what: &str) -> String {
    format!(
        "{what} names have letters, digits and `_` only, start with a letter, and have at most {} characters",
        xif_verify::MAX_NAME
    )
}

/// Whether `name` follows the rule of user names.
pub fn is_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_USER_NAME
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Whether `name` follows the definition's rules for the characters and length of a name.
/// Reserved words are left to the verifier: no extension or action can have one, so such a name
/// is simply not found.
pub(crate) fn is_definition_name(name: &str) -> bool {
    match xif_verify::name_problem(name, xif_verify::NameKind::Member, xif_verify::MAX_NAME) {
        None => true,
        Some((code, _, _)) => code == xif_diagnostics::Code::ReservedName,
    }
}

/// `name` as shown in a message: cut, so that a long path does not make a long answer.
fn shown(name: &str) -> String {
    const SHOWN: usize = 64;
    if name.chars().count() > SHOWN {
        format!("{}…", name.chars().take(SHOWN).collect::<String>())
    } else {
        name.into()
    }
}

/// `name` as a name of type `T` ([`ExtensionName`], [`UserName`]…), checked as the path takes
/// it: for Service Center, which reads names from its own paths and forms and calls the API's
/// handlers with them.
pub(crate) fn parse<T: de::DeserializeOwned>(name: &str) -> Result<T, crate::error::ApiError> {
    T::deserialize(de::value::StrDeserializer::<de::value::Error>::new(name))
        .map_err(|error| crate::error::ApiError::new(xif_api::ErrorCode::InvalidPath, error.to_string()))
}

macro_rules! path_names {
    ($($(#[$doc:meta])* $name:ident: $what:literal, $valid:path, $rule:expr;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl From<$name> for String {
            fn from(name: $name) -> String {
                name.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Checked;

                impl Visitor<'_> for Checked {
                    type Value = $name;

                    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                        formatter.write_str(concat!("a ", $what))
                    }

                    // Checked inside the visitor, where the path extractor still knows which
                    // parameter and value failed.
                    fn visit_str<E: de::Error>(self, name: &str) -> Result<$name, E> {
                        if $valid(name) {
                            Ok($name(name.to_owned()))
                        } else {
                            Err(E::custom(format!(concat!("`{}` is not a ", $what, ": {}"), shown(name), $rule)))
                        }
                    }
                }

                deserializer.deserialize_str(Checked)
            }
        }
    )*};
}

path_names! {
    /// An extension's name, as `/extensions/{name}/…` takes it.
    ExtensionName: "valid extension name", is_definition_name, definition_rule("extension");
    /// An action's name, as `/extensions/{name}/actions/{action}` takes it.
    ActionName: "valid action name", is_definition_name, definition_rule("action");
    /// An entity's name, as `/extensions/{name}/entities/{entity}/…` takes it.
    EntityName: "valid entity name", is_definition_name, definition_rule("entity");
    /// A module's name, as `/modules/{module}/…` takes it.
    ModuleName: "valid module name", is_definition_name, definition_rule("module");
    /// A user's name, as `/users/{name}/…` takes it.
    UserName: "valid user name", is_user_name, USER_NAME_RULE;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_their_rules() {
        for good in ["Payments", "a", "A_1", &"x".repeat(50), "Text", "match"] {
            assert!(is_definition_name(good), "{good}");
        }
        for bad in ["", "1abc", "_a", "a-b", "a b", "ä", &"x".repeat(51), "a/b", "a%2F"] {
            assert!(!is_definition_name(bad), "{bad}");
        }
        for good in ["bob", "b.o-b_1", &"x".repeat(64)] {
            assert!(is_user_name(good), "{good}");
        }
        for bad in ["", "bo b", "bob/", &"x".repeat(65), "bö"] {
            assert!(!is_user_name(bad), "{bad}");
        }
        assert!(USER_NAME_RULE.contains(&format!(" 1 to {MAX_USER_NAME} ")), "the rule in words is the rule");
    }
}
