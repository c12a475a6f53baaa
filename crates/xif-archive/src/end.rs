//! The end of central directory records, read by one rule for both readers of this crate.
//!
//! Written by hand because which end record a zip reader believes decides which central
//! directory it reads, and two readers that believe different ones see different archives:
//! the upload check ([`StreamCheck`](crate::StreamCheck)) would check one set of entries and
//! the deploy (the `zip` crate, in [`XifReader`](crate::XifReader)) unpack another. The `zip`
//! crate (2.x) follows the zip64 end record only when the 32-bit record's entry count is
//! 0xffff or its directory offset 0xffffffff, and the 32-bit values otherwise. This module
//! takes the same choice, and refuses every archive where the choice could matter: a zip64
//! record whose values differ from the 32-bit record's unsaturated ones, a saturated 32-bit
//! field that the `zip` crate would not replace with a zip64 value, and a zip64 record the
//! `zip` crate would pass over for an earlier end record.

const ZIP64_LOCATOR_SIGNATURE: u32 = 0x0706_4b50;
const ZIP64_END_SIGNATURE: u32 = 0x0606_4b50;
/// A zip64 locator's length.
const LOCATOR: usize = 20;
/// A zip64 end record's length without an extensible data sector (which no XIF has).
const ZIP64_END: usize = 56;
/// A central directory header's fixed length.
const HEADER: u64 = 46;

/// Where the central directory is, as every reader of the archive must see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Directory {
    /// How many entries it lists.
    pub count: u64,
    /// Its length in bytes.
    pub size: u64,
    /// Its offset in the archive.
    pub offset: u64,
    /// Where it must end: at the zip64 end record when there is one, else at the end record.
    pub end: u64,
}

/// Reads the end records. `tail` holds the archive's last bytes, from archive offset
/// `tail_offset` to the archive's end; `end` is the end record's position in `tail` (the last
/// one). The reason is a phrase for a "damaged archive" error.
pub(crate) fn directory(tail: &[u8], tail_offset: u64, end: usize) -> Result<Directory, String> {
    let short = || "a short end of central directory record".to_owned();
    let disk = u16_at(tail, end + 4).ok_or_else(short)?;
    let directory_disk = u16_at(tail, end + 6).ok_or_else(short)?;
    let on_disk = u16_at(tail, end + 8).ok_or_else(short)?;
    let count = u16_at(tail, end + 10).ok_or_else(short)?;
    let size = u32_at(tail, end + 12).ok_or_else(short)?;
    let offset = u32_at(tail, end + 16).ok_or_else(short)?;
    let comment = usize::from(u16_at(tail, end + 20).ok_or_else(short)?);
    // Nothing after the record but its comment: the end record every reader finds is this one.
    if comment != tail.len() - end - 22 {
        return Err("the end of central directory record is not at the archive's end".into());
    }
    if disk != 0 || directory_disk != 0 || on_disk != count {
        return Err("the archive spans several disks".into());
    }
    let end_offset = tail_offset + end as u64;
    let count_saturated = count == 0xffff;
    let size_saturated = size == 0xffff_ffff;
    let offset_saturated = offset == 0xffff_ffff;
    let locator = end.checked_sub(LOCATOR).filter(|at| u32_at(tail, *at) == Some(ZIP64_LOCATOR_SIGNATURE));
    let Some(locator) = locator else {
        if count_saturated || size_saturated || offset_saturated {
            return Err("the end record's values are saturated but there is no zip64 end record".into());
        }
        return Ok(Directory {
            count: u64::from(count),
            size: u64::from(size),
            offset: u64::from(offset),
            end: end_offset,
        });
    };
    // The `zip` crate's rule for following the zip64 record.
    let followed = count_saturated || offset_saturated;
    if !followed && size_saturated {
        return Err("the end record's directory size is saturated but readers would not use the zip64 one".into());
    }
    let short = || "a short zip64 end record".to_owned();
    let locator_disk = u32_at(tail, locator + 4).ok_or_else(short)?;
    let record = u64_at(tail, locator + 8).ok_or_else(short)?;
    let disks = u32_at(tail, locator + 16).ok_or_else(short)?;
    if locator_disk != 0 || disks > 1 {
        return Err("the archive spans several disks".into());
    }
    // The zip64 record right before its locator, with no extensible data: where the `zip`
    // crate looks first, and what it accepts.
    let at = locator.checked_sub(ZIP64_END).ok_or("a damaged zip64 end record")?;
    let record_offset = tail_offset + at as u64;
    if record != record_offset
        || u32_at(tail, at) != Some(ZIP64_END_SIGNATURE)
        || u64_at(tail, at + 4) != Some(ZIP64_END as u64 - 12)
    {
        return Err("a damaged zip64 end record".into());
    }
    let made_by = u16_at(tail, at + 12).ok_or_else(short)?;
    let needed = u16_at(tail, at + 14).ok_or_else(short)?;
    let disk64 = u32_at(tail, at + 16).ok_or_else(short)?;
    let directory_disk64 = u32_at(tail, at + 20).ok_or_else(short)?;
    let on_disk64 = u64_at(tail, at + 24).ok_or_else(short)?;
    let count64 = u64_at(tail, at + 32).ok_or_else(short)?;
    let size64 = u64_at(tail, at + 40).ok_or_else(short)?;
    let offset64 = u64_at(tail, at + 48).ok_or_else(short)?;
    if disk64 != 0 || directory_disk64 != 0 || on_disk64 != count64 {
        return Err("the archive spans several disks".into());
    }
    // What the `zip` crate refuses in a zip64 record, after which it would look for an
    // earlier end record (one hidden in an entry's data, say).
    if needed > made_by || record_offset < count64.saturating_mul(HEADER).saturating_add(offset64) {
        return Err("a damaged zip64 end record".into());
    }
    // Both records must say the same wherever the 32-bit one can.
    if (!count_saturated && u64::from(count) != count64)
        || (!size_saturated && u64::from(size) != size64)
        || (!offset_saturated && u64::from(offset) != offset64)
    {
        return Err("the zip64 end record and the end record disagree".into());
    }
    Ok(Directory { count: count64, size: size64, offset: offset64, end: record_offset })
}

pub(crate) fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    bytes.get(at..at.checked_add(2)?).map(|slice| u16::from_le_bytes([slice[0], slice[1]]))
}

pub(crate) fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    bytes.get(at..at.checked_add(4)?).map(|slice| u32::from_le_bytes([slice[0], slice[1], slice[2], slice[3]]))
}

pub(crate) fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    bytes.get(at..at.checked_add(8)?).map(|slice| {
        u64::from_le_bytes([slice[0], slice[1], slice[2], slice[3], slice[4], slice[5], slice[6], slice[7]])
    })
}
