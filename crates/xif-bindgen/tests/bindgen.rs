//! Generated bindings and stubs, as an author sees them.

use xif_bindgen::{StubOutcome, generate, insert_stubs, is_hand_edited};

const EVERY_TYPE: &str = include_str!("../../../fixtures/every-type/extension.toml");

fn definition(text: &str) -> xif_definition::Definition {
    xif_definition::parse(text).expect("the definition parses")
}

#[test]
fn bindings_of_every_data_type() {
    let bindings = generate(&definition(EVERY_TYPE));
    insta::assert_snapshot!(bindings);
    assert_eq!(bindings, generate(&definition(EVERY_TYPE)), "generation is deterministic");
    assert!(!is_hand_edited(&bindings));
    assert!(is_hand_edited(&bindings.replacen("pub struct", "pub(crate) struct", 1)));
    assert!(is_hand_edited("fn main() {}\n"));
    let reformatted = bindings.replace("    ", "  ").replace(") -> Result", ")\n        -> Result");
    assert!(!is_hand_edited(&reformatted), "reformatting is not an edit");
}

const AUTHOR: &str = r#"mod bindings;

use bindings::*;

struct Shop;

impl bindings::Extension for Shop {
    fn greet(&self, name: Text) -> Result<Text, ActionError> {
        Ok(format!("Hello, {name}"))
    }
}

fn main() -> std::process::ExitCode {
    bindings::serve(Shop)
}
"#;

#[test]
fn a_new_action_gets_a_stub_and_nothing_else_changes() {
    let text = r#"
[extension]
name = "Shop"
version = "1.0.0"

[[actions]]
name = "Greet"
inputs = [ { name = "Name", type = "Text" } ]
outputs = [ { name = "Greeting", type = "Text" } ]

[[actions]]
name = "PlaceOrder"
description = "Places an order."
inputs = [ { name = "Lines", type = "Record List", record = "Line" }, { name = "Express", type = "Boolean" } ]
outputs = [ { name = "Number", type = "Long Integer" }, { name = "Total", type = "Currency" } ]

[[structures]]
name = "Line"
attributes = [ { name = "Quantity", type = "Integer" } ]
"#;
    let StubOutcome::Added { actions, source } = insert_stubs(&definition(text), AUTHOR) else {
        panic!("a stub is added");
    };
    assert_eq!(actions, ["PlaceOrder"]);
    insta::assert_snapshot!(source, @r#"
    mod bindings;

    use bindings::*;

    struct Shop;

    impl bindings::Extension for Shop {
        fn greet(&self, name: Text) -> Result<Text, ActionError> {
            Ok(format!("Hello, {name}"))
        }

        /// Places an order.
        fn place_order(&self, _lines: Vec<bindings::Line>, _express: bool) -> Result<bindings::PlaceOrderOutputs, bindings::ActionError> {
            Err(bindings::ActionError::not_implemented("PlaceOrder"))
        }
    }

    fn main() -> std::process::ExitCode {
        bindings::serve(Shop)
    }
    "#);
    // Running again adds nothing.
    assert_eq!(insert_stubs(&definition(text), &source), StubOutcome::Complete);
}

#[test]
fn sources_without_an_implementation_or_that_do_not_parse_are_left_alone() {
    let text = "[extension]\nname = \"Shop\"\nversion = \"1.0.0\"\n[[actions]]\nname = \"Greet\"\n";
    assert_eq!(insert_stubs(&definition(text), "fn main() {}\n"), StubOutcome::NoImplementation);
    assert_eq!(insert_stubs(&definition(text), "fn main( {\n"), StubOutcome::Unparsable);
}
