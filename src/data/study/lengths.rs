//! A walk over a DICOM file's element headers, up to its pixel data, checking each declared
//! length against the bytes the file has left. dicom-rs allocates (and zero-fills) an element's
//! declared length before reading it, so a 600-byte file declaring 1.4 GB made it hold 1.4 GB
//! (found by the `study_header` fuzz target); with this check first, what it allocates is
//! bounded by the file's size. Deflated files cannot be walked before inflating; their lengths
//! are dicom-rs's to check.
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use super::{StudyError, StudyErrorKind};

const PIXEL_DATA: (u16, u16) = (0x7FE0, 0x0010);
const UNDEFINED: u32 = 0xFFFF_FFFF;
/// Elements walked at most (a real header has a few hundred).
const MAX_ELEMENTS: usize = 200_000;
const DEFLATED: &str = "1.2.840.10008.1.2.1.99";
const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
const EXPLICIT_BE: &str = "1.2.840.10008.1.2.2";

/// Whether an explicit VR's length field is 4 bytes (after 2 reserved): every VR but the short
/// ones, and an unknown VR too, which dicom-rs reads as UN.
fn long_vr(vr: [u8; 2]) -> bool {
    !matches!(
        &vr,
        b"AE"
            | b"AS"
            | b"AT"
            | b"CS"
            | b"DA"
            | b"DS"
            | b"DT"
            | b"FL"
            | b"FD"
            | b"IS"
            | b"LO"
            | b"LT"
            | b"PN"
            | b"SH"
            | b"SL"
            | b"SS"
            | b"ST"
            | b"TM"
            | b"UI"
            | b"UL"
            | b"US"
    )
}

struct Walk<'a, R> {
    path: &'a Path,
    reader: R,
    len: u64,
    big: bool,
}

impl<R: Read + Seek> Walk<'_, R> {
    fn bad(&self, detail: String) -> StudyError {
        StudyError::new(self.path, StudyErrorKind::Truncated, detail)
    }

    fn pos(&mut self) -> io::Result<u64> {
        self.reader.stream_position()
    }

    fn u16(&mut self) -> io::Result<u16> {
        let mut b = [0u8; 2];
        self.reader.read_exact(&mut b)?;
        Ok(if self.big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    fn u32(&mut self) -> io::Result<u32> {
        let mut b = [0u8; 4];
        self.reader.read_exact(&mut b)?;
        Ok(if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    /// Fails when `length` bytes do not fit in what is left after the current position.
    fn fits(&mut self, tag: (u16, u16), length: u32) -> Result<(), StudyError> {
        let at = self
            .pos()
            .map_err(|e| self.bad(format!("cannot read: {e}")))?;
        let left = self.len.saturating_sub(at);
        if u64::from(length) > left {
            return Err(self.bad(format!(
                "truncated DICOM file (or a corrupt length): element ({:04X},{:04X}) at byte \
                 {at} declares {length} bytes, but only {left} remain",
                tag.0, tag.1
            )));
        }
        Ok(())
    }
}

/// Checks the meta group and the data set of the Part 10 file in `reader` (`len` bytes, `path`
/// only names it) up to the pixel data.
pub fn check_lengths<R: Read + Seek>(path: &Path, reader: R, len: u64) -> Result<(), StudyError> {
    let mut walk = Walk {
        path,
        reader,
        len,
        big: false,
    };
    let io = |e: io::Error| {
        StudyError::new(
            path,
            StudyErrorKind::Truncated,
            format!("truncated DICOM file: {e}"),
        )
    };
    walk.reader.seek(SeekFrom::Start(132)).map_err(io)?;
    let syntax = meta_group(&mut walk).map_err(|e| match e {
        Step::Io(e) => io(e),
        Step::Bad(e) => e,
    })?;
    // No group length: dicom-rs refuses the file itself. Deflated: it inflates first.
    let Some(syntax) = syntax.filter(|s| s != DEFLATED) else {
        return Ok(());
    };
    walk.big = syntax == EXPLICIT_BE;
    let explicit = syntax != IMPLICIT_LE;
    match data_set(&mut walk, explicit) {
        // A file that ends before any pixel data: dicom-rs says what is missing.
        Err(Step::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(()),
        Err(Step::Io(e)) => Err(io(e)),
        Err(Step::Bad(e)) => Err(e),
        Ok(()) => Ok(()),
    }
}

enum Step {
    Io(io::Error),
    Bad(StudyError),
}

impl From<io::Error> for Step {
    fn from(e: io::Error) -> Self {
        Step::Io(e)
    }
}

impl From<StudyError> for Step {
    fn from(e: StudyError) -> Self {
        Step::Bad(e)
    }
}

/// The meta group (explicit VR little endian), read as dicom-rs reads it: a group length
/// (0002,0000) first, then whole elements until that many bytes are read. Gives the transfer
/// syntax UID; `None` when there is no group length (dicom-rs refuses the file before reading
/// any value).
fn meta_group<R: Read + Seek>(walk: &mut Walk<'_, R>) -> Result<Option<String>, Step> {
    let (tag, length, _) = meta_element(walk)?;
    if tag != (0x0002, 0x0000) || length != 4 {
        return Ok(None);
    }
    let group_length = u64::from(walk.u32()?);
    let mut syntax = String::new();
    let mut read = 0u64;
    while read < group_length {
        let (tag, length, header) = meta_element(walk)?;
        walk.fits(tag, length)?;
        if tag == (0x0002, 0x0010) && length <= 128 {
            let mut value = vec![0u8; length as usize];
            walk.reader.read_exact(&mut value)?;
            syntax = String::from_utf8_lossy(&value)
                .trim_end_matches(['\0', ' '])
                .to_string();
        } else {
            walk.reader.seek(SeekFrom::Current(i64::from(length)))?;
        }
        read += header + u64::from(length);
    }
    Ok(Some(syntax))
}

/// One explicit VR little endian element header: tag, length, header bytes.
fn meta_element<R: Read + Seek>(walk: &mut Walk<'_, R>) -> Result<((u16, u16), u32, u64), Step> {
    let tag = (walk.u16()?, walk.u16()?);
    let mut vr = [0u8; 2];
    walk.reader.read_exact(&mut vr)?;
    Ok(if long_vr(vr) {
        walk.u16()?;
        (tag, walk.u32()?, 12)
    } else {
        (tag, u32::from(walk.u16()?), 8)
    })
}

/// The data set's element headers; sequences and items are walked into (their contents are
/// elements too), other values skipped. Stops at the top level's pixel data.
fn data_set<R: Read + Seek>(walk: &mut Walk<'_, R>, explicit: bool) -> Result<(), Step> {
    // Ends of the defined-length sequences and items being walked; `None`: undefined length.
    let mut open: Vec<Option<u64>> = Vec::new();
    for _ in 0..MAX_ELEMENTS {
        let at = walk.pos()?;
        while let Some(Some(end)) = open.last() {
            if at < *end {
                break;
            }
            open.pop();
        }
        let tag = (walk.u16()?, walk.u16()?);
        // Only these three are items and delimiters to dicom-rs; other FFFE tags are elements.
        if tag.0 == 0xFFFE && matches!(tag.1, 0xE000 | 0xE00D | 0xE0DD) {
            let length = walk.u32()?;
            match tag.1 {
                0xE000 if length == UNDEFINED => open.push(None),
                0xE000 => {
                    walk.fits(tag, length)?;
                    let here = walk.pos()?;
                    open.push(Some(here + u64::from(length)));
                }
                // Item and sequence delimiters close the innermost undefined-length level.
                _ => {
                    if let Some(index) = open.iter().rposition(Option::is_none) {
                        open.truncate(index);
                    }
                }
            }
            continue;
        }
        let (vr, length) = if explicit {
            let mut vr = [0u8; 2];
            walk.reader.read_exact(&mut vr)?;
            let length = if long_vr(vr) {
                walk.u16()?;
                walk.u32()?
            } else {
                u32::from(walk.u16()?)
            };
            (Some(vr), length)
        } else {
            (None, walk.u32()?)
        };
        if tag == PIXEL_DATA && open.is_empty() {
            if length != UNDEFINED {
                walk.fits(tag, length)?;
            }
            return Ok(());
        }
        let is_sequence = vr.is_some_and(|vr| &vr == b"SQ");
        if length == UNDEFINED {
            // A sequence (or, in implicit VR, an element of unknown VR holding one), or
            // encapsulated pixel data inside a sequence: its items follow.
            open.push(None);
            continue;
        }
        walk.fits(tag, length)?;
        if is_sequence {
            let here = walk.pos()?;
            open.push(Some(here + u64::from(length)));
        } else {
            walk.reader.seek(SeekFrom::Current(i64::from(length)))?;
        }
    }
    Err(Step::Bad(walk.bad(format!(
        "more than {MAX_ELEMENTS} data elements before the pixel data: not a DICOM image"
    ))))
}
