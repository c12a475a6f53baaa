//! From element names to Rust names.

/// The snake-case form of an element name, for methods, arguments and fields:
/// `GetCustomerById` → `get_customer_by_id`, `HTTPRequest` → `http_request`.
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (index, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && index > 0 {
            let previous = chars[index - 1];
            let next_is_lower = chars.get(index + 1).is_some_and(char::is_ascii_lowercase);
            if previous != '_'
                && (previous.is_ascii_lowercase()
                    || previous.is_ascii_digit()
                    || (previous.is_ascii_uppercase() && next_is_lower))
            {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The type-name form of an element name: its first letter in upper case.
pub fn type_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_splits_words_and_acronyms() {
        for (name, expected) in [
            ("Greet", "greet"),
            ("GetCustomerById", "get_customer_by_id"),
            ("HTTPRequest", "http_request"),
            ("Get_Customer", "get_customer"),
            ("Address2Line", "address2_line"),
            ("amount", "amount"),
        ] {
            assert_eq!(snake_case(name), expected, "{name}");
        }
        assert_eq!(type_name("person"), "Person");
    }
}
