//! The names in a zip's central directory, read directly.
//!
//! Written by hand because the `zip` crate indexes entries by name and silently keeps one of
//! two entries with the same name, while two readers that pick different ones is exactly how a
//! duplicate name smuggles content past a check. Only the end-of-central-directory records and
//! the name of each header are read, with every length bounded.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use crate::end::{self, u16_at, u32_at};

const END_SIGNATURE: u32 = 0x0605_4b50;
const HEADER_SIGNATURE: u32 = 0x0201_4b50;
/// The end record is 22 bytes, followed by a comment of at most 65,535, and preceded by the
/// zip64 end record and locator (76 bytes) when there are.
const END_SEARCH: u64 = 76 + 22 + 65_535;

/// The number of entries the central directory declares, when it is at most `max_entries`
/// their raw names in order, and the directory's offset (by the rule of [`end`], which the
/// `zip` crate's must agree with); or why they cannot be read.
pub(crate) fn names(file: &mut File, max_entries: usize) -> Result<(u64, Vec<Vec<u8>>, u64), String> {
    let length = file.seek(SeekFrom::End(0)).map_err(|error| error.to_string())?;
    let tail_start = length.saturating_sub(END_SEARCH);
    let mut tail = vec![0; usize::try_from(length - tail_start).map_err(|error| error.to_string())?];
    file.seek(SeekFrom::Start(tail_start)).map_err(|error| error.to_string())?;
    file.read_exact(&mut tail).map_err(|error| error.to_string())?;
    let end = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&at| u32_at(&tail, at) == Some(END_SIGNATURE))
        .ok_or("no end of central directory record")?;
    let end::Directory { count, size, offset, end } = end::directory(&tail, tail_start, end)?;
    if count > max_entries as u64 {
        return Ok((count, Vec::new(), offset));
    }
    if offset.checked_add(size) != Some(end) {
        return Err("the central directory is not where its end record says".into());
    }
    let mut directory = vec![0; usize::try_from(size).map_err(|error| error.to_string())?];
    file.seek(SeekFrom::Start(offset)).map_err(|error| error.to_string())?;
    file.read_exact(&mut directory).map_err(|error| error.to_string())?;
    let mut names = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let mut at = 0;
    while at + 46 <= directory.len() && names.len() < max_entries {
        if u32_at(&directory, at) != Some(HEADER_SIGNATURE) {
            return Err("a damaged central directory header".into());
        }
        let name_length = usize::from(u16_at(&directory, at + 28).ok_or("short header")?);
        let extra_length = usize::from(u16_at(&directory, at + 30).ok_or("short header")?);
        let comment_length = usize::from(u16_at(&directory, at + 32).ok_or("short header")?);
        let name = directory.get(at + 46..at + 46 + name_length).ok_or("a name past the directory's end")?;
        names.push(name.to_vec());
        at += 46 + name_length + extra_length + comment_length;
    }
    Ok((count, names, offset))
}
