//! An action's outputs as the extension wrote them, checked without being rebuilt.
//!
//! The host used to read every `Return` frame into a map of values and write that map out again
//! for the client: two passes that built and freed a tree per call. Now the outputs are kept as
//! the JSON text they arrived as ([`Outputs`]), after a check that refuses exactly what building
//! the map refused (not an object, malformed JSON, a lone surrogate escape, a number out of range
//! of a double), so that a hostile extension's output reaches a client no less checked than
//! before. The check walks the text with serde_json's own parser but builds nothing (serde's
//! visitor API is how serde_json exposes a validating pass; no crate offers one).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use xif_protocol::Values;

/// The outputs of a call: a JSON object of output names to values, as the extension wrote it,
/// checked to be what the protocol allows.
#[derive(Debug, Clone)]
pub struct Outputs(Box<RawValue>);

impl Outputs {
    /// The outputs as JSON text.
    pub fn json(&self) -> &str {
        self.0.get()
    }

    /// The outputs as JSON text, owned (without a copy).
    pub fn into_json(self) -> String {
        String::from(Box::<str>::from(self.0))
    }

    /// The outputs as a map of values.
    pub fn values(&self) -> Values {
        // Checked on arrival to be an object of values serde_json reads: this cannot fail, and
        // an empty map is the safe answer if it somehow did.
        serde_json::from_str(self.json()).unwrap_or_default()
    }

    /// `values` written out as outputs (`None` only if serde_json could not write them).
    pub(crate) fn from_values(values: &Values) -> Option<Self> {
        serde_json::value::to_raw_value(values).ok().map(Self)
    }

    /// `raw` as outputs, when it is a JSON object that reads as [`Values`].
    pub(crate) fn checked(raw: Box<RawValue>) -> Option<Self> {
        // A raw value is well-formed JSON without leading space: `{` makes it an object.
        if !raw.get().starts_with('{') {
            return None;
        }
        let mut walker = serde_json::Deserializer::from_str(raw.get());
        Walk::deserialize(&mut walker).ok()?;
        walker.end().ok()?;
        Some(Self(raw))
    }
}

/// The fast reading of a `Return` frame: its id and outputs kept raw. Any other frame, or one
/// this does not read, goes through the full decoding of `ExtensionMessage`.
#[derive(Deserialize)]
pub(crate) struct ReturnFrame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    id: Option<u64>,
    outputs: Option<Box<RawValue>>,
}

impl ReturnFrame<'_> {
    /// The call's id and its checked outputs, when `payload` is a `Return` whose outputs pass.
    pub(crate) fn read(payload: &[u8]) -> Option<(u64, Outputs)> {
        let frame: ReturnFrame<'_> = serde_json::from_slice(payload).ok()?;
        if frame.kind != "return" {
            return None;
        }
        Some((frame.id?, Outputs::checked(frame.outputs?)?))
    }
}

/// A JSON value read as `serde_json::Value` reads one, and thrown away as it goes.
struct Walk;

impl<'de> Deserialize<'de> for Walk {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Walk)
    }
}

impl<'de> Visitor<'de> for Walk {
    type Value = Walk;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Walk, E> {
        Ok(Walk)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Walk, E> {
        Ok(Walk)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Walk, E> {
        Ok(Walk)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Walk, E> {
        Ok(Walk)
    }

    fn visit_str<E>(self, _: &str) -> Result<Walk, E> {
        Ok(Walk)
    }

    fn visit_unit<E>(self) -> Result<Walk, E> {
        Ok(Walk)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<Walk, A::Error> {
        while sequence.next_element::<Walk>()?.is_some() {}
        Ok(Walk)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Walk, A::Error> {
        while map.next_entry::<Walk, Walk>()?.is_some() {}
        Ok(Walk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs(text: &str) -> Option<Outputs> {
        Outputs::checked(RawValue::from_string(text.into()).ok()?)
    }

    #[test]
    fn what_values_read_passes_as_written_and_what_they_refused_is_refused() {
        let text = r#"{"Greeting": "Hello, \u00e9!", "List": [1, -2, 3.5e2, true, null, {"a": []}]}"#;
        assert_eq!(outputs(text).expect("passes").json(), text);
        for refused in ["[1]", "\"text\"", "null", r#"{"a": "\ud800"}"#, r#"{"a": 1e400}"#, r#"{"\udc00": 1}"#] {
            assert!(outputs(refused).is_none(), "{refused} is refused");
            // As building the map refuses it (or it is not a map at all).
            assert!(serde_json::from_str::<Values>(refused).is_err(), "{refused} is refused by Values too");
        }
    }

    #[test]
    fn a_return_frame_is_read_fast_and_others_are_left_to_the_full_decoding() {
        let (id, read) = ReturnFrame::read(br#"{"type":"return","id":7,"outputs":{"A":1}}"#).expect("a return");
        assert_eq!((id, read.json()), (7, r#"{"A":1}"#));
        assert_eq!(read.values().get("A"), Some(&serde_json::json!(1)));
        assert!(ReturnFrame::read(br#"{"type":"fail","id":7,"error":{"code":"x","message":"y"}}"#).is_none());
        assert!(ReturnFrame::read(br#"{"type":"return","id":7,"outputs":[1]}"#).is_none());
        assert!(ReturnFrame::read(br#"{"type":"return","outputs":{}}"#).is_none());
        assert!(ReturnFrame::read(b"garbage").is_none());
    }
}
