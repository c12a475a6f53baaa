//! The names in a zip's central directory, read directly.
//!
//! Written by hand because the `zip` crate indexes entries by name and silently keeps one of
//! two entries with the same name, while two readers that pick different ones is exactly how a
//! duplicate name smuggles content past a check. Only the end-of-central-directory records and
//! the name of each header are read, with every length bounded.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

const END_SIGNATURE: u32 = 0x0605_4b50;
const ZIP64_LOCATOR_SIGNATURE: u32 = 0x0706_4b50;
const ZIP64_END_SIGNATURE: u32 = 0x0606_4b50;
const HEADER_SIGNATURE: u32 = 0x0201_4b50;
/// The end record is 22 bytes, followed by a comment of at most 65,535.
const END_SEARCH: u64 = 22 + 65_535;

/// The number of entries the central directory declares and, when it is at most
/// `max_entries`, their raw names in order; or why they cannot be read.
pub(crate) fn names(file: &mut File, max_entries: usize) -> Result<(u64, Vec<Vec<u8>>), String> {
    let length = file.seek(SeekFrom::End(0)).map_err(|error| error.to_string())?;
    let tail_start = length.saturating_sub(END_SEARCH);
    let mut tail = vec![0; usize::try_from(length - tail_start).map_err(|error| error.to_string())?];
    file.seek(SeekFrom::Start(tail_start)).map_err(|error| error.to_string())?;
    file.read_exact(&mut tail).map_err(|error| error.to_string())?;
    let end = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&at| u32_at(&tail, at) == Some(END_SIGNATURE))
        .ok_or("no end of central directory record")?;
    let mut count = u64::from(u16_at(&tail, end + 10).ok_or("short end record")?);
    let mut size = u64::from(u32_at(&tail, end + 12).ok_or("short end record")?);
    let mut offset = u64::from(u32_at(&tail, end + 16).ok_or("short end record")?);
    if (count == 0xffff || size == 0xffff_ffff || offset == 0xffff_ffff) && end >= 20 {
        let locator = end - 20;
        if u32_at(&tail, locator) == Some(ZIP64_LOCATOR_SIGNATURE) {
            let record = u64_at(&tail, locator + 8).ok_or("short zip64 locator")?;
            let mut zip64 = [0u8; 56];
            file.seek(SeekFrom::Start(record)).map_err(|error| error.to_string())?;
            file.read_exact(&mut zip64).map_err(|error| error.to_string())?;
            if u32_at(&zip64, 0) != Some(ZIP64_END_SIGNATURE) {
                return Err("a damaged zip64 end record".into());
            }
            count = u64_at(&zip64, 32).ok_or("short zip64 end record")?;
            size = u64_at(&zip64, 40).ok_or("short zip64 end record")?;
            offset = u64_at(&zip64, 48).ok_or("short zip64 end record")?;
        }
    }
    if count > max_entries as u64 {
        return Ok((count, Vec::new()));
    }
    if offset.saturating_add(size) > length {
        return Err("the central directory lies past the end of the file".into());
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
    Ok((count, names))
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    bytes.get(at..at + 2).map(|slice| u16::from_le_bytes([slice[0], slice[1]]))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    bytes.get(at..at + 4).map(|slice| u32::from_le_bytes([slice[0], slice[1], slice[2], slice[3]]))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    bytes.get(at..at + 8).map(|slice| {
        u64::from_le_bytes([slice[0], slice[1], slice[2], slice[3], slice[4], slice[5], slice[6], slice[7]])
    })
}
