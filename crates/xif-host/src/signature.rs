//! The signatures an extension must announce: derived from the definition, compared with the
//! hello.

use xif_definition::{Definition, Parameter};
use xif_protocol::{ActionSignature, ParameterSignature};

/// The signatures of the definition's actions, as a binary built from it announces them.
pub fn signatures(definition: &Definition) -> Vec<ActionSignature> {
    let parameters = |parameters: &[Parameter]| {
        parameters
            .iter()
            .map(|parameter| ParameterSignature {
                name: parameter.name.value.clone(),
                data_type: parameter.data_type.data_type.value.name().to_owned(),
                record: parameter.data_type.record.as_ref().map(|record| record.value.clone()),
            })
            .collect()
    };
    definition
        .actions
        .iter()
        .map(|action| ActionSignature {
            name: action.name.value.clone(),
            inputs: parameters(&action.inputs),
            outputs: parameters(&action.outputs),
        })
        .collect()
}

/// How the announced actions differ from the expected ones, one sentence each; empty when they
/// match.
pub fn signature_mismatches(expected: &[ActionSignature], announced: &[ActionSignature]) -> Vec<String> {
    let mut mismatches = Vec::new();
    for action in expected {
        match announced.iter().find(|candidate| candidate.name == action.name) {
            None => mismatches.push(format!("action `{}` is in the definition but not in the binary", action.name)),
            Some(found) if found != action => {
                mismatches.push(format!("action `{}` has other parameters in the binary", action.name));
            }
            Some(_) => {}
        }
    }
    for action in announced {
        if !expected.iter().any(|candidate| candidate.name == action.name) {
            mismatches.push(format!("action `{}` is in the binary but not in the definition", action.name));
        }
    }
    mismatches
}
