//! The `.sqz` v1 container: a header, a section table, 64-byte-aligned section
//! blobs and a SHA-256 trailer. It knows nothing about neural nets; the runtime
//! gives meaning to section kinds. The byte layout is specified in
//! `docs/FORMAT.md`; the constants below are the single source of truth.
//!
//! Integrity model: every byte of a file is covered by a check on every load.
//! The header checksum covers the header, the table and the zero padding after
//! the table; each section checksum covers its stored bytes and the zero padding
//! up to the next 64-byte boundary; the layout must tile the file exactly, so the
//! only bytes left are the 32-byte trailer, whose *content* (a SHA-256 of all
//! preceding bytes) is compared only when [`Limits::verify_sha256`] is set,
//! because hashing a large model costs real time on a phone.

use std::borrow::Cow;

use rayon::prelude::*;
use sha2::{Digest, Sha256};
use xxhash_rust::xxh3::{xxh3_64, Xxh3};

/// First 8 bytes of every `.sqz` file.
pub const MAGIC: [u8; 8] = *b"SQUEEZE\0";
/// Major version written and read. A reader refuses any other major version.
pub const VERSION_MAJOR: u16 = 1;
/// Minor version written. Readers accept any minor of their major.
pub const VERSION_MINOR: u16 = 0;
/// Fixed header size in bytes.
pub const HEADER_LEN: usize = 32;
/// Size of one section table entry in bytes.
pub const ENTRY_LEN: usize = 40;
/// Alignment of every section blob, so an uncompressed blob can be used in
/// place from an mmap (64 covers every SIMD width and a cache line).
pub const ALIGN: usize = 64;
/// Size of the SHA-256 trailer in bytes.
pub const TRAILER_LEN: usize = 32;

/// Offset of the header checksum field, which is hashed as zeros.
const CHECKSUM_FIELD: usize = 24;

/// How a section's bytes are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Stored as is; usable in place (stored length == raw length).
    None,
    /// One zstd frame that declares its content size.
    Zstd,
}

impl Codec {
    /// The on-disk byte, `None` for an unknown codec.
    pub fn from_u8(byte: u8) -> Option<Codec> {
        match byte {
            0 => Some(Codec::None),
            1 => Some(Codec::Zstd),
            _ => None,
        }
    }

    /// The on-disk byte.
    pub fn as_u8(self) -> u8 {
        match self {
            Codec::None => 0,
            Codec::Zstd => 1,
        }
    }
}

/// Caps applied while parsing, so a hostile file cannot make the reader
/// allocate or work without bound. Sizes are checked before any allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted file, trailer included.
    pub max_file_bytes: u64,
    /// Largest accepted raw (decompressed) length of one section.
    pub max_section_raw_bytes: u64,
    /// Largest accepted sum of raw lengths over all sections.
    pub max_total_raw_bytes: u64,
    /// Largest accepted number of sections.
    pub max_sections: u32,
    /// Compare the SHA-256 trailer with the file (on by default). Turn it off
    /// where load time matters: the xxh3 checks always run and still cover
    /// every byte except the 32 trailer bytes.
    pub verify_sha256: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 4 << 30,
            max_section_raw_bytes: 1 << 30,
            max_total_raw_bytes: 2 << 30,
            max_sections: 4096,
            verify_sha256: true,
        }
    }
}

/// Options for [`write_container`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteOptions {
    /// zstd level for sections that ask for [`Codec::Zstd`]. Only packing time
    /// depends on it; decompression speed is about the same for every level.
    pub zstd_level: i32,
    /// A zstd section is kept only if it saves at least this share of its
    /// raw size (percent); otherwise it is stored raw, which loads with no
    /// decompression and can be used in place from an mmap.
    pub min_saving_percent: u32,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            zstd_level: 10,
            min_saving_percent: 0,
        }
    }
}

/// One section to write: its kind, the codec to try, and its raw bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectionInput {
    pub kind: u32,
    pub codec: Codec,
    pub data: Vec<u8>,
}

/// One parsed, validated section table entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectionEntry {
    /// Position in the section table.
    pub index: usize,
    /// Meaning is defined by the runtime; unknown kinds are kept and skipped.
    pub kind: u32,
    pub codec: Codec,
    /// File offset of the stored bytes, a multiple of [`ALIGN`].
    pub offset: u64,
    /// Number of stored bytes (after compression).
    pub stored_len: u64,
    /// Number of bytes after decoding.
    pub raw_len: u64,
    /// xxh3-64 of the stored bytes and the zero padding after them.
    pub checksum: u64,
}

/// Everything that can be wrong with a `.sqz` file.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("file truncated: needs {needed} bytes, has {available}")]
    Truncated { needed: u64, available: u64 },
    #[error("not a .sqz file (bad magic)")]
    BadMagic,
    #[error(
        "unsupported .sqz version {}.{}: this runtime reads major version {} (minor up to {})",
        .found.0, .found.1, .supported.0, .supported.1
    )]
    UnsupportedVersion {
        found: (u16, u16),
        supported: (u16, u16),
    },
    #[error("invalid header: {reason}")]
    InvalidHeader { reason: String },
    #[error("header checksum mismatch: header or section table is corrupt")]
    HeaderChecksumMismatch,
    #[error("checksum mismatch in section {index} (kind {kind:#x}): data is corrupt")]
    SectionChecksumMismatch { index: usize, kind: u32 },
    #[error("SHA-256 trailer does not match the file contents")]
    Sha256Mismatch,
    #[error("invalid section {index}: {reason}")]
    InvalidSection { index: usize, reason: String },
    #[error("{what} of {declared} bytes exceeds the limit of {limit}")]
    TooLarge {
        what: &'static str,
        declared: u64,
        limit: u64,
    },
    #[error("section {index} uses unknown codec {codec}")]
    UnknownCodec { index: usize, codec: u8 },
    #[error("cannot decompress section {index}: {reason}")]
    Decompress { index: usize, reason: String },
    #[error("cannot compress section {index}: {reason}")]
    Compress { index: usize, reason: String },
    #[error("section {index}: {what} is {found} bytes, table declares {expected}")]
    SizeMismatch {
        index: usize,
        what: &'static str,
        expected: u64,
        found: u64,
    },
    #[error("no section with index {index}")]
    NoSuchSection { index: usize },
}

/// Fields of the fixed header, before the table is checked.
struct Header {
    minor: u16,
    section_count: u32,
    file_len: u64,
    checksum: u64,
    /// End of header + table + zero padding: where the first blob starts.
    data_start: u64,
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[at..at + 2]);
    u16::from_le_bytes(a)
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Rounds up to a multiple of [`ALIGN`]; `None` on overflow.
fn align_up(n: u64) -> Option<u64> {
    n.checked_add(ALIGN as u64 - 1)
        .map(|v| v & !(ALIGN as u64 - 1))
}

fn too_large(what: &'static str, declared: u64, limit: u64) -> ContainerError {
    ContainerError::TooLarge {
        what,
        declared,
        limit,
    }
}

/// Reads and checks the fixed header: magic, then version (first, because a
/// newer major may lay out everything after it differently), then the caps.
/// Nothing here is trusted yet: the header checksum is checked by the caller.
fn read_header(prefix: &[u8], limits: &Limits) -> Result<Header, ContainerError> {
    if prefix.len() < HEADER_LEN {
        return Err(ContainerError::Truncated {
            needed: HEADER_LEN as u64,
            available: prefix.len() as u64,
        });
    }
    if prefix[..8] != MAGIC {
        return Err(ContainerError::BadMagic);
    }
    let major = le_u16(prefix, 8);
    let minor = le_u16(prefix, 10);
    if major != VERSION_MAJOR {
        return Err(ContainerError::UnsupportedVersion {
            found: (major, minor),
            supported: (VERSION_MAJOR, VERSION_MINOR),
        });
    }
    let section_count = le_u32(prefix, 12);
    let file_len = le_u64(prefix, 16);
    let checksum = le_u64(prefix, CHECKSUM_FIELD);
    if section_count > limits.max_sections {
        return Err(too_large(
            "section count",
            section_count.into(),
            limits.max_sections.into(),
        ));
    }
    if file_len > limits.max_file_bytes {
        return Err(too_large("file", file_len, limits.max_file_bytes));
    }
    // u32 * 40 + 32 cannot overflow u64; align_up cannot either at this size.
    let table_end = HEADER_LEN as u64 + u64::from(section_count) * ENTRY_LEN as u64;
    let data_start = align_up(table_end).ok_or_else(|| ContainerError::InvalidHeader {
        reason: "section table size overflows".into(),
    })?;
    let min_len = data_start + TRAILER_LEN as u64;
    if file_len < min_len {
        return Err(ContainerError::InvalidHeader {
            reason: format!(
                "declared file length {file_len} is smaller than header and table ({min_len})"
            ),
        });
    }
    Ok(Header {
        minor,
        section_count,
        file_len,
        checksum,
        data_start,
    })
}

/// Declared total file length from the first [`HEADER_LEN`] bytes, after the
/// magic, version and cap checks. Lets a stream loader refuse an oversized
/// file and allocate exactly once before reading the rest. The value is not
/// yet covered by a checksum; [`Container::parse`] checks it again.
pub fn declared_file_len(prefix: &[u8], limits: &Limits) -> Result<u64, ContainerError> {
    read_header(prefix, limits).map(|h| h.file_len)
}

/// Lower-case hex SHA-256 of `bytes`. Pass the whole file to get the hash to
/// publish next to a download (it differs from the trailer, which hashes all
/// bytes before the trailer).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// xxh3-64 of `head` followed by `pad_len` zero bytes.
fn checksum_with_zeros(head: &[u8], pad_len: usize) -> u64 {
    const ZEROS: [u8; ALIGN] = [0; ALIGN];
    let mut h = Xxh3::new();
    h.update(head);
    h.update(&ZEROS[..pad_len]);
    h.digest()
}

/// The header checksum: xxh3-64 of bytes `[0, data_start)` with the checksum
/// field itself read as zeros.
fn header_checksum(region: &[u8]) -> u64 {
    let mut h = Xxh3::new();
    h.update(&region[..CHECKSUM_FIELD]);
    h.update(&[0u8; 8]);
    h.update(&region[CHECKSUM_FIELD + 8..]);
    h.digest()
}

/// Checks that a zstd section's frame declares exactly the table's raw length,
/// so decompression never allocates on the word of only one of them.
fn check_frame(index: usize, stored: &[u8], raw_len: u64) -> Result<(), ContainerError> {
    match zstd::zstd_safe::get_frame_content_size(stored) {
        Ok(Some(n)) if n == raw_len => Ok(()),
        Ok(Some(n)) => Err(ContainerError::SizeMismatch {
            index,
            what: "zstd frame content size",
            expected: raw_len,
            found: n,
        }),
        Ok(None) => Err(ContainerError::Decompress {
            index,
            reason: "zstd frame does not declare its content size".into(),
        }),
        Err(_) => Err(ContainerError::Decompress {
            index,
            reason: "not a valid zstd frame header".into(),
        }),
    }
}

/// Builds a complete `.sqz` file in memory. Sections are compressed in
/// parallel. A section that asks for zstd but does not get smaller (tiny or
/// incompressible data, including empty sections) is stored with
/// [`Codec::None`] instead, so it stays usable in place; callers must read the
/// codec from the parsed table, not assume the one they asked for.
pub fn write_container(
    sections: &[SectionInput],
    opts: &WriteOptions,
) -> Result<Vec<u8>, ContainerError> {
    let count = u32::try_from(sections.len())
        .map_err(|_| too_large("section count", sections.len() as u64, u32::MAX.into()))?;
    let blobs = sections
        .par_iter()
        .enumerate()
        .map(|(index, s)| {
            let (codec, stored): (Codec, Cow<[u8]>) = match s.codec {
                Codec::None => (Codec::None, Cow::Borrowed(&s.data)),
                Codec::Zstd => {
                    let c = zstd::bulk::compress(&s.data, opts.zstd_level).map_err(|e| {
                        ContainerError::Compress {
                            index,
                            reason: e.to_string(),
                        }
                    })?;
                    let keep_at_most = s.data.len() as u128
                        * (100 - opts.min_saving_percent.min(100)) as u128
                        / 100;
                    if c.len() < s.data.len() && (c.len() as u128) <= keep_at_most {
                        (Codec::Zstd, Cow::Owned(c))
                    } else {
                        (Codec::None, Cow::Borrowed(&s.data))
                    }
                }
            };
            let pad = (ALIGN - stored.len() % ALIGN) % ALIGN;
            let checksum = checksum_with_zeros(&stored, pad);
            Ok((codec, stored, pad, checksum))
        })
        .collect::<Result<Vec<_>, ContainerError>>()?;

    let overflow = || too_large("file", u64::MAX, u64::MAX);
    let table_end = HEADER_LEN + ENTRY_LEN * sections.len();
    let data_start = table_end.div_ceil(ALIGN) * ALIGN;
    let mut total = data_start;
    for (_, stored, pad, _) in &blobs {
        total = total
            .checked_add(stored.len())
            .and_then(|t| t.checked_add(*pad))
            .ok_or_else(overflow)?;
    }
    total = total.checked_add(TRAILER_LEN).ok_or_else(overflow)?;

    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION_MAJOR.to_le_bytes());
    out.extend_from_slice(&VERSION_MINOR.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&(total as u64).to_le_bytes());
    out.extend_from_slice(&[0u8; 8]); // header checksum, filled in below
    let mut offset = data_start as u64;
    for (s, (codec, stored, pad, checksum)) in sections.iter().zip(&blobs) {
        out.extend_from_slice(&s.kind.to_le_bytes());
        out.push(codec.as_u8());
        out.extend_from_slice(&[0u8; 3]);
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&(stored.len() as u64).to_le_bytes());
        out.extend_from_slice(&(s.data.len() as u64).to_le_bytes());
        out.extend_from_slice(&checksum.to_le_bytes());
        offset += (stored.len() + pad) as u64;
    }
    out.resize(data_start, 0);
    let hc = header_checksum(&out);
    out[CHECKSUM_FIELD..CHECKSUM_FIELD + 8].copy_from_slice(&hc.to_le_bytes());
    for (_, stored, pad, _) in &blobs {
        out.extend_from_slice(stored);
        out.resize(out.len() + pad, 0);
    }
    let sha = Sha256::digest(&out);
    out.extend_from_slice(&sha);
    debug_assert_eq!(out.len(), total);
    Ok(out)
}

/// A parsed and verified `.sqz` file borrowing the caller's bytes (a `Vec`
/// or an mmap), so uncompressed sections are used without copying.
pub struct Container<'a> {
    bytes: &'a [u8],
    minor: u16,
    sections: Vec<SectionEntry>,
}

/// Hand-written so that debugging a container never dumps the whole file.
impl std::fmt::Debug for Container<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container")
            .field("len", &self.bytes.len())
            .field("version", &self.version())
            .field("sections", &self.sections)
            .finish()
    }
}

impl<'a> Container<'a> {
    /// Parses and verifies a whole file: header, table, layout, caps, all
    /// checksums, zstd frame sizes, and the SHA-256 trailer if
    /// `limits.verify_sha256`. Fails on any byte that is out of place.
    pub fn parse(bytes: &'a [u8], limits: &Limits) -> Result<Container<'a>, ContainerError> {
        let available = bytes.len() as u64;
        let h = read_header(bytes, limits)?;
        if available > limits.max_file_bytes {
            return Err(too_large("file", available, limits.max_file_bytes));
        }
        let min_len = h.data_start + TRAILER_LEN as u64;
        if available < min_len {
            return Err(ContainerError::Truncated {
                needed: min_len,
                available,
            });
        }
        // data_start < available, so it fits in usize.
        let data_start = h.data_start as usize;
        if header_checksum(&bytes[..data_start]) != h.checksum {
            return Err(ContainerError::HeaderChecksumMismatch);
        }
        if h.file_len > available {
            return Err(ContainerError::Truncated {
                needed: h.file_len,
                available,
            });
        }
        if h.file_len < available {
            return Err(ContainerError::InvalidHeader {
                reason: format!(
                    "{} unexpected bytes after the declared end of file",
                    available - h.file_len
                ),
            });
        }
        let count = h.section_count as usize;
        let table_end = HEADER_LEN + count * ENTRY_LEN;
        if bytes[table_end..data_start].iter().any(|&b| b != 0) {
            return Err(ContainerError::InvalidHeader {
                reason: "nonzero padding after the section table".into(),
            });
        }

        let sections_end = available - TRAILER_LEN as u64;
        let mut sections = Vec::with_capacity(count);
        let mut cursor = h.data_start;
        let mut total_raw: u64 = 0;
        for index in 0..count {
            let e = &bytes[HEADER_LEN + index * ENTRY_LEN..][..ENTRY_LEN];
            let kind = le_u32(e, 0);
            let codec_byte = e[4];
            let offset = le_u64(e, 8);
            let stored_len = le_u64(e, 16);
            let raw_len = le_u64(e, 24);
            let checksum = le_u64(e, 32);
            let codec = Codec::from_u8(codec_byte).ok_or(ContainerError::UnknownCodec {
                index,
                codec: codec_byte,
            })?;
            if raw_len > limits.max_section_raw_bytes {
                return Err(too_large(
                    "section raw length",
                    raw_len,
                    limits.max_section_raw_bytes,
                ));
            }
            total_raw = total_raw
                .checked_add(raw_len)
                .filter(|&t| t <= limits.max_total_raw_bytes)
                .ok_or_else(|| {
                    too_large(
                        "total raw length",
                        total_raw.saturating_add(raw_len),
                        limits.max_total_raw_bytes,
                    )
                })?;
            let invalid = |reason: String| ContainerError::InvalidSection { index, reason };
            if codec == Codec::None && stored_len != raw_len {
                return Err(invalid(format!(
                    "uncompressed section stores {stored_len} bytes but declares {raw_len} raw bytes"
                )));
            }
            if offset != cursor {
                return Err(invalid(format!(
                    "starts at offset {offset}, expected {cursor}: sections must follow each \
                     other in table order, each at the next 64-byte boundary"
                )));
            }
            let padded_end = offset
                .checked_add(stored_len)
                .and_then(align_up)
                .filter(|&end| end <= sections_end)
                .ok_or_else(|| {
                    invalid(format!(
                        "{stored_len} bytes at offset {offset} run past the section area, which ends at {sections_end}"
                    ))
                })?;
            cursor = padded_end;
            sections.push(SectionEntry {
                index,
                kind,
                codec,
                offset,
                stored_len,
                raw_len,
                checksum,
            });
        }
        if cursor != sections_end {
            return Err(ContainerError::InvalidHeader {
                reason: format!(
                    "{} bytes between the last section and the trailer",
                    sections_end - cursor
                ),
            });
        }

        sections.par_iter().try_for_each(|s| {
            // Bounds were checked above: every range lies inside `bytes`.
            let start = s.offset as usize;
            let end = start + s.stored_len as usize;
            let padded = align_up(end as u64).unwrap_or(u64::MAX) as usize;
            let region = &bytes[start..padded];
            if xxh3_64(region) != s.checksum {
                return Err(ContainerError::SectionChecksumMismatch {
                    index: s.index,
                    kind: s.kind,
                });
            }
            if bytes[end..padded].iter().any(|&b| b != 0) {
                return Err(ContainerError::InvalidSection {
                    index: s.index,
                    reason: "nonzero padding after the section".into(),
                });
            }
            if s.codec == Codec::Zstd {
                check_frame(s.index, &bytes[start..end], s.raw_len)?;
            }
            Ok(())
        })?;

        let container = Container {
            bytes,
            minor: h.minor,
            sections,
        };
        if limits.verify_sha256 {
            container.verify_sha256()?;
        }
        Ok(container)
    }

    /// Recomputes the SHA-256 of everything before the trailer and compares.
    /// For callers that parsed with `verify_sha256 = false` and want to check
    /// later (e.g. in the background).
    pub fn verify_sha256(&self) -> Result<(), ContainerError> {
        let body = &self.bytes[..self.bytes.len() - TRAILER_LEN];
        if Sha256::digest(body).as_slice() == self.sha256() {
            Ok(())
        } else {
            Err(ContainerError::Sha256Mismatch)
        }
    }

    /// Format version `(major, minor)` of the file.
    pub fn version(&self) -> (u16, u16) {
        (VERSION_MAJOR, self.minor)
    }

    /// All sections in table (= file) order, unknown kinds included.
    pub fn sections(&self) -> &[SectionEntry] {
        &self.sections
    }

    /// First section of `kind`.
    pub fn find(&self, kind: u32) -> Option<&SectionEntry> {
        self.sections.iter().find(|s| s.kind == kind)
    }

    /// Every section of `kind`, in table order.
    pub fn find_all(&self, kind: u32) -> impl Iterator<Item = &SectionEntry> + '_ {
        self.sections.iter().filter(move |s| s.kind == kind)
    }

    /// The stored (possibly compressed) bytes of `entry`, borrowed from the
    /// file; 64-byte aligned relative to the start of the file. `entry` must
    /// come from this container; a foreign, out-of-range entry yields `&[]`.
    pub fn stored_bytes(&self, entry: &SectionEntry) -> &'a [u8] {
        let bytes: &'a [u8] = self.bytes;
        usize::try_from(entry.offset)
            .ok()
            .zip(usize::try_from(entry.stored_len).ok())
            .and_then(|(start, len)| bytes.get(start..start.checked_add(len)?))
            .unwrap_or(&[])
    }

    /// The raw bytes of one section: borrowed for [`Codec::None`], a fresh
    /// buffer of exactly `raw_len` bytes for [`Codec::Zstd`].
    pub fn decode(&self, entry: &SectionEntry) -> Result<Cow<'a, [u8]>, ContainerError> {
        let stored = self.stored_bytes(entry);
        match entry.codec {
            Codec::None if stored.len() as u64 == entry.raw_len => Ok(Cow::Borrowed(stored)),
            Codec::None => Err(ContainerError::SizeMismatch {
                index: entry.index,
                what: "stored length",
                expected: entry.raw_len,
                found: stored.len() as u64,
            }),
            Codec::Zstd => {
                let index = entry.index;
                check_frame(index, stored, entry.raw_len)?;
                let cap = usize::try_from(entry.raw_len).map_err(|_| {
                    too_large("section raw length", entry.raw_len, usize::MAX as u64)
                })?;
                let out = zstd::bulk::decompress(stored, cap).map_err(|e| {
                    ContainerError::Decompress {
                        index,
                        reason: e.to_string(),
                    }
                })?;
                if out.len() != cap {
                    return Err(ContainerError::SizeMismatch {
                        index,
                        what: "decompressed length",
                        expected: entry.raw_len,
                        found: out.len() as u64,
                    });
                }
                Ok(Cow::Owned(out))
            }
        }
    }

    /// Decodes, in parallel, every section whose kind is in `kinds`, returned
    /// in table order (a kind may occur many times, e.g. one section per
    /// tensor; pair results with `sections().iter().filter(..)` in the same
    /// order, or use [`Container::decode_indices`]).
    pub fn decode_sections(&self, kinds: &[u32]) -> Result<Vec<Cow<'a, [u8]>>, ContainerError> {
        let wanted: Vec<&SectionEntry> = self
            .sections
            .iter()
            .filter(|s| kinds.contains(&s.kind))
            .collect();
        wanted.par_iter().map(|s| self.decode(s)).collect()
    }

    /// Decodes, in parallel, the sections at the given table indices, in the
    /// order given.
    pub fn decode_indices(&self, indices: &[usize]) -> Result<Vec<Cow<'a, [u8]>>, ContainerError> {
        indices
            .par_iter()
            .map(|&index| {
                let s = self
                    .sections
                    .get(index)
                    .ok_or(ContainerError::NoSuchSection { index })?;
                self.decode(s)
            })
            .collect()
    }

    /// The SHA-256 trailer as stored (of all bytes before it). Only checked
    /// against the contents by `parse` when `verify_sha256` was set.
    pub fn sha256(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(&self.bytes[self.bytes.len() - TRAILER_LEN..]);
        out
    }

    /// The whole file this container was parsed from.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIND_META: u32 = 1;
    const KIND_GRAPH: u32 = 2;
    const KIND_WEIGHTS: u32 = 3;
    const KIND_UNKNOWN: u32 = 0xDEAD_BEEF;

    fn no_sha() -> Limits {
        Limits {
            verify_sha256: false,
            ..Limits::default()
        }
    }

    /// Deterministic bytes that zstd cannot shrink.
    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn sample_inputs() -> Vec<SectionInput> {
        vec![
            SectionInput {
                kind: KIND_META,
                codec: Codec::None,
                data: br#"{"name":"tiny"}"#.to_vec(),
            },
            SectionInput {
                kind: KIND_GRAPH,
                codec: Codec::Zstd,
                data: b"conv relu pool ".repeat(40),
            },
            SectionInput {
                kind: KIND_WEIGHTS,
                codec: Codec::Zstd,
                data: Vec::new(),
            },
            SectionInput {
                kind: KIND_UNKNOWN,
                codec: Codec::Zstd,
                data: noise(100, 1),
            },
            SectionInput {
                kind: KIND_WEIGHTS,
                codec: Codec::None,
                data: noise(130, 2),
            },
        ]
    }

    fn sample_file() -> Vec<u8> {
        write_container(&sample_inputs(), &WriteOptions::default()).unwrap()
    }

    /// Recomputes every checksum and the trailer after a test edited the file,
    /// so that only the check under test can fail.
    fn reseal(bytes: &mut [u8]) {
        let count = le_u32(bytes, 12) as usize;
        for i in 0..count {
            let e = HEADER_LEN + i * ENTRY_LEN;
            let start = le_u64(bytes, e + 8) as usize;
            let len = le_u64(bytes, e + 16) as usize;
            let padded = (start + len).div_ceil(ALIGN) * ALIGN;
            if padded <= bytes.len() {
                let sum = xxh3_64(&bytes[start..padded]);
                bytes[e + 32..e + 40].copy_from_slice(&sum.to_le_bytes());
            }
        }
        let data_start = (HEADER_LEN + count * ENTRY_LEN).div_ceil(ALIGN) * ALIGN;
        let hc = header_checksum(&bytes[..data_start]);
        bytes[CHECKSUM_FIELD..CHECKSUM_FIELD + 8].copy_from_slice(&hc.to_le_bytes());
        let n = bytes.len() - TRAILER_LEN;
        let sha = Sha256::digest(&bytes[..n]);
        bytes[n..].copy_from_slice(&sha);
    }

    fn entry_at(i: usize) -> usize {
        HEADER_LEN + i * ENTRY_LEN
    }

    #[test]
    fn round_trip() {
        let inputs = sample_inputs();
        let file = sample_file();
        let c = Container::parse(&file, &Limits::default()).unwrap();
        assert_eq!(c.version(), (VERSION_MAJOR, VERSION_MINOR));
        assert_eq!(c.sections().len(), inputs.len());
        let codecs: Vec<Codec> = c.sections().iter().map(|s| s.codec).collect();
        // Empty and incompressible sections fall back to Codec::None.
        assert_eq!(
            codecs,
            [
                Codec::None,
                Codec::Zstd,
                Codec::None,
                Codec::None,
                Codec::None
            ]
        );
        for (s, input) in c.sections().iter().zip(&inputs) {
            assert_eq!(s.kind, input.kind);
            assert_eq!(s.raw_len, input.data.len() as u64);
            assert_eq!(c.decode(s).unwrap().as_ref(), &input.data[..]);
        }
        assert!(c.sections()[1].stored_len < c.sections()[1].raw_len);

        // A caller that knows kinds 1..=3 skips the unknown one.
        let known = c
            .decode_sections(&[KIND_META, KIND_GRAPH, KIND_WEIGHTS])
            .unwrap();
        let expected: Vec<&[u8]> = inputs
            .iter()
            .filter(|s| s.kind != KIND_UNKNOWN)
            .map(|s| &s.data[..])
            .collect();
        assert_eq!(known.len(), 4);
        for (got, want) in known.iter().zip(&expected) {
            assert_eq!(got.as_ref(), *want);
        }
        assert!(matches!(known[0], Cow::Borrowed(_)));
        assert!(matches!(known[1], Cow::Owned(_)));
        // Borrowed means in place: the slice points into the file.
        let meta = c.find(KIND_META).unwrap();
        assert_eq!(
            c.stored_bytes(meta).as_ptr(),
            file[meta.offset as usize..].as_ptr()
        );
        assert_eq!(c.find_all(KIND_WEIGHTS).count(), 2);
        assert!(c.find(99).is_none());

        let by_index = c.decode_indices(&[4, 1]).unwrap();
        assert_eq!(by_index[0].as_ref(), &inputs[4].data[..]);
        assert_eq!(by_index[1].as_ref(), &inputs[1].data[..]);
        assert!(matches!(
            c.decode_indices(&[5]),
            Err(ContainerError::NoSuchSection { index: 5 })
        ));

        let n = file.len() - TRAILER_LEN;
        assert_eq!(c.sha256().as_slice(), Sha256::digest(&file[..n]).as_slice());
        assert_eq!(
            declared_file_len(&file, &Limits::default()).unwrap(),
            file.len() as u64
        );
    }

    #[test]
    fn empty_container() {
        let file = write_container(&[], &WriteOptions::default()).unwrap();
        assert_eq!(file.len(), ALIGN + TRAILER_LEN);
        let c = Container::parse(&file, &Limits::default()).unwrap();
        assert!(c.sections().is_empty());
        assert!(c.decode_sections(&[1]).unwrap().is_empty());
    }

    #[test]
    fn every_section_is_aligned_and_padded_with_zeros() {
        let file = sample_file();
        let c = Container::parse(&file, &Limits::default()).unwrap();
        for s in c.sections() {
            assert_eq!(s.offset % ALIGN as u64, 0, "section {}", s.index);
            let end = (s.offset + s.stored_len) as usize;
            let padded = end.div_ceil(ALIGN) * ALIGN;
            assert!(file[end..padded].iter().all(|&b| b == 0));
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let file = sample_file();
        assert!(
            (500..4096).contains(&file.len()),
            "sample should be a few hundred bytes, is {}",
            file.len()
        );
        for limits in [Limits::default(), no_sha()] {
            for len in 0..file.len() {
                assert!(
                    Container::parse(&file[..len], &limits).is_err(),
                    "truncation to {len} accepted"
                );
            }
        }
    }

    #[test]
    fn every_byte_change_is_an_error_with_sha256() {
        let file = sample_file();
        let mut copy = file.clone();
        for at in 0..file.len() {
            for mask in [0x01u8, 0xFF] {
                copy[at] ^= mask;
                assert!(
                    Container::parse(&copy, &Limits::default()).is_err(),
                    "change at {at} (^{mask:#x}) accepted"
                );
                copy[at] ^= mask;
            }
        }
    }

    /// Without the SHA-256 check, the xxh3 checksums and the exact layout still
    /// catch a change anywhere except in the 32 trailer bytes themselves.
    #[test]
    fn every_byte_change_outside_trailer_is_an_error_without_sha256() {
        let file = sample_file();
        let trailer = file.len() - TRAILER_LEN;
        let mut copy = file.clone();
        for at in 0..file.len() {
            for mask in [0x01u8, 0xFF] {
                copy[at] ^= mask;
                let result = Container::parse(&copy, &no_sha());
                if at < trailer {
                    assert!(result.is_err(), "change at {at} (^{mask:#x}) accepted");
                } else {
                    assert!(result.is_ok(), "trailer byte {at} is not xxh3-covered");
                    assert!(matches!(
                        result.unwrap().verify_sha256(),
                        Err(ContainerError::Sha256Mismatch)
                    ));
                }
                copy[at] ^= mask;
            }
        }
    }

    #[test]
    fn extra_trailing_bytes_are_refused() {
        let mut file = sample_file();
        file.push(0);
        assert!(Container::parse(&file, &no_sha()).is_err());
    }

    #[test]
    fn huge_declared_section_is_refused_before_allocating() {
        let file = write_container(
            &[SectionInput {
                kind: KIND_WEIGHTS,
                codec: Codec::None,
                data: vec![7; 800],
            }],
            &WriteOptions::default(),
        )
        .unwrap();
        assert!(file.len() <= 1024);
        let mut bad = file.clone();
        bad[entry_at(0) + 4] = Codec::Zstd.as_u8();
        bad[entry_at(0) + 24..entry_at(0) + 32].copy_from_slice(&(4u64 << 30).to_le_bytes());
        reseal(&mut bad);
        match Container::parse(&bad, &Limits::default()) {
            Err(ContainerError::TooLarge { declared, .. }) => assert_eq!(declared, 4 << 30),
            other => panic!("expected TooLarge, got {other:?}"),
        }
        // With the caps lifted it still fails (not a zstd frame), without
        // allocating 4 GB.
        let lifted = Limits {
            max_section_raw_bytes: u64::MAX,
            max_total_raw_bytes: u64::MAX,
            ..Limits::default()
        };
        assert!(Container::parse(&bad, &lifted).is_err());

        // The sum of raw lengths is capped too.
        let two = write_container(
            &[
                SectionInput {
                    kind: 1,
                    codec: Codec::None,
                    data: vec![1; 100],
                },
                SectionInput {
                    kind: 1,
                    codec: Codec::None,
                    data: vec![1; 100],
                },
            ],
            &WriteOptions::default(),
        )
        .unwrap();
        let total_cap = Limits {
            max_total_raw_bytes: 150,
            ..Limits::default()
        };
        assert!(matches!(
            Container::parse(&two, &total_cap),
            Err(ContainerError::TooLarge {
                what: "total raw length",
                ..
            })
        ));
        let count_cap = Limits {
            max_sections: 1,
            ..Limits::default()
        };
        assert!(matches!(
            Container::parse(&two, &count_cap),
            Err(ContainerError::TooLarge {
                what: "section count",
                ..
            })
        ));
        let file_cap = Limits {
            max_file_bytes: 100,
            ..Limits::default()
        };
        assert!(matches!(
            Container::parse(&two, &file_cap),
            Err(ContainerError::TooLarge { what: "file", .. })
        ));
    }

    #[test]
    fn huge_section_count_is_refused() {
        let mut file = sample_file();
        file[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        let lifted = Limits {
            max_sections: u32::MAX,
            ..Limits::default()
        };
        assert!(matches!(
            Container::parse(&file, &lifted),
            Err(ContainerError::InvalidHeader { .. })
        ));
        assert!(matches!(
            Container::parse(&file, &Limits::default()),
            Err(ContainerError::TooLarge { .. })
        ));
    }

    #[test]
    fn newer_major_is_refused_newer_minor_accepted() {
        let mut newer = sample_file();
        newer[8..10].copy_from_slice(&2u16.to_le_bytes());
        newer[10..12].copy_from_slice(&3u16.to_le_bytes());
        reseal(&mut newer);
        let err = Container::parse(&newer, &Limits::default()).unwrap_err();
        assert!(
            matches!(
                err,
                ContainerError::UnsupportedVersion {
                    found: (2, 3),
                    supported: (1, 0)
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("2.3"), "{err}");

        let mut minor = sample_file();
        minor[10..12].copy_from_slice(&7u16.to_le_bytes());
        reseal(&mut minor);
        let c = Container::parse(&minor, &Limits::default()).unwrap();
        assert_eq!(c.version(), (1, 7));
    }

    #[test]
    fn bad_magic_and_unknown_codec() {
        let mut file = sample_file();
        file[0] = b'X';
        assert!(matches!(
            Container::parse(&file, &Limits::default()),
            Err(ContainerError::BadMagic)
        ));
        let mut file = sample_file();
        file[entry_at(0) + 4] = 9;
        reseal(&mut file);
        assert!(matches!(
            Container::parse(&file, &Limits::default()),
            Err(ContainerError::UnknownCodec { index: 0, codec: 9 })
        ));
    }

    #[test]
    fn zstd_frame_size_must_match_table() {
        let file = sample_file();
        let c = Container::parse(&file, &Limits::default()).unwrap();
        let s = c.sections()[1].clone();
        assert_eq!(s.codec, Codec::Zstd);
        for raw in [s.raw_len - 1, s.raw_len + 1] {
            let mut bad = file.clone();
            bad[entry_at(1) + 24..entry_at(1) + 32].copy_from_slice(&raw.to_le_bytes());
            reseal(&mut bad);
            match Container::parse(&bad, &Limits::default()) {
                Err(ContainerError::SizeMismatch {
                    index: 1,
                    expected,
                    found,
                    ..
                }) => {
                    assert_eq!((expected, found), (raw, s.raw_len));
                }
                other => panic!("expected SizeMismatch, got {other:?}"),
            }
            // `decode` re-checks, for entries that did not come from `parse`.
            let forged = SectionEntry {
                raw_len: raw,
                ..s.clone()
            };
            assert!(c.decode(&forged).is_err());
            let foreign = SectionEntry {
                codec: Codec::None,
                offset: u64::MAX,
                ..s.clone()
            };
            assert!(c.stored_bytes(&foreign).is_empty());
            assert!(c.decode(&foreign).is_err());
        }
    }

    #[test]
    fn layout_violations_are_refused() {
        // An uncompressed section whose stored and raw lengths differ.
        let mut file = sample_file();
        let raw = le_u64(&file, entry_at(0) + 24);
        file[entry_at(0) + 24..entry_at(0) + 32].copy_from_slice(&(raw + 1).to_le_bytes());
        reseal(&mut file);
        assert!(matches!(
            Container::parse(&file, &Limits::default()),
            Err(ContainerError::InvalidSection { index: 0, .. })
        ));
        // A section moved off its slot.
        let mut file = sample_file();
        let off = le_u64(&file, entry_at(1) + 8);
        file[entry_at(1) + 8..entry_at(1) + 16].copy_from_slice(&(off + 64).to_le_bytes());
        reseal(&mut file);
        assert!(matches!(
            Container::parse(&file, &Limits::default()),
            Err(ContainerError::InvalidSection { index: 1, .. })
        ));
        // A length that overflows u64.
        let mut file = sample_file();
        file[entry_at(4) + 16..entry_at(4) + 24].copy_from_slice(&u64::MAX.to_le_bytes());
        file[entry_at(4) + 24..entry_at(4) + 32].copy_from_slice(&u64::MAX.to_le_bytes());
        reseal(&mut file);
        let lifted = Limits {
            max_section_raw_bytes: u64::MAX,
            max_total_raw_bytes: u64::MAX,
            ..Limits::default()
        };
        assert!(Container::parse(&file, &lifted).is_err());
        // Nonzero padding with a matching checksum is still refused.
        let mut file = sample_file();
        let meta_end = ALIGN * 4 + 15; // first section: 15 bytes at the data start
        let c = Container::parse(&file, &Limits::default()).unwrap();
        assert_eq!(
            c.sections()[0].offset + c.sections()[0].stored_len,
            meta_end as u64
        );
        file[meta_end] = 1;
        reseal(&mut file);
        assert!(matches!(
            Container::parse(&file, &Limits::default()),
            Err(ContainerError::InvalidSection { index: 0, .. })
        ));
    }

    #[test]
    fn sha256_hex_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
