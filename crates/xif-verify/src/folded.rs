//! Names compared and hashed without regard to ASCII case, without allocating a lower-case copy
//! (the verifier looks up every name of a definition, tens of thousands in a large one).

use std::hash::{Hash, Hasher};

/// A name that compares and hashes ignoring ASCII case. Names that differ only in the case of
/// non-ASCII letters are not folded together; such names are refused by `XE0101` anyway.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Folded<'a>(pub(crate) &'a str);

impl PartialEq for Folded<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(other.0)
    }
}

impl Eq for Folded<'_> {}

impl Hash for Folded<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for byte in self.0.bytes() {
            state.write_u8(byte.to_ascii_lowercase());
        }
        state.write_u8(0xff);
    }
}
