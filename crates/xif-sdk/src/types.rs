//! The Rust type of each platform data type, and how it travels as JSON.
//!
//! | platform type | Rust type | JSON |
//! |---|---|---|
//! | Text, Email, Phone Number | [`Text`] (`String`) | string |
//! | Integer | [`Integer`] (`i32`) | number |
//! | Long Integer | [`LongInteger`] (`i64`) | number |
//! | Decimal, Currency | [`Decimal`] (exact, 28 digits) | string, `"12.50"` |
//! | Boolean | `bool` | `true`, `false` |
//! | Date Time | [`DateTime`] | string, `"2024-01-31T09:30:00"` |
//! | Date | [`Date`] | string, `"2024-01-31"` |
//! | Time | [`Time`] | string, `"09:30:00"` |
//! | Binary Data | [`BinaryData`] | string, base64 |
//! | Record, Record List | generated structs, `Vec` of them | object, array |

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Text, Email and Phone Number.
pub type Text = String;
/// A 32-bit integer.
pub type Integer = i32;
/// A 64-bit integer.
pub type LongInteger = i64;
/// An exact decimal number; never a float.
pub type Decimal = rust_decimal::Decimal;
/// A money amount, exact.
pub type Currency = rust_decimal::Decimal;
/// A date and a time of day, without a time zone.
pub type DateTime = chrono::NaiveDateTime;
/// A calendar date.
pub type Date = chrono::NaiveDate;
/// A time of day.
pub type Time = chrono::NaiveTime;

/// Bytes, which travel as base64 text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct BinaryData(pub Vec<u8>);

impl Serialize for BinaryData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for BinaryData {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map(BinaryData)
            .map_err(|error| serde::de::Error::custom(format!("not base64: {error}")))
    }
}
