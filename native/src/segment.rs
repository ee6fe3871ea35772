//! FormTable: the native twin of a matching Segment's lookup (anpr_stream/core/matching/segment.py and
//! WatchlistIndex.match_normalised): exact, OCR (shared confusion form), fuzzy at Levenshtein distance 1 and
//! pattern hits of one read, each slot at most once, every kind decided as the Python verification decides it.
//!
//! Distance 1 uses symmetric deletion, as the Python table does: each entry's form is stored under its own hash and,
//! when it has at least MIN_FUZZY_LENGTH characters, under the hash of each single-character deletion. Items are
//! 64-bit (35 bits of tag, a deletion flag, a 28-bit slot) grouped in buckets by the top bits of the hash, so a
//! probe reads the per-slot text only for candidates whose tag matched. Hashes are FxHash-style and unsalted: the
//! table lives in one process and is never persisted.
//!
//! Only ASCII plates without a newline are handled (what normalise produces): there a byte is a character, so byte
//! comparisons are the reference's character comparisons and `?`/`*` match what the regex's `.` matches. A segment
//! with any other entry gets no table (form_table returns None) and a read with any other text gets None from probe:
//! the Python path decides.

use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};

// anpr_stream/core/matching/segment.py: MIN_FUZZY_LENGTH, SLOT_BITS and the item layout.
const MIN_FUZZY_LENGTH: usize = 5;
const SLOT_BITS: u32 = 28;
const MAX_SEGMENT: usize = 1 << SLOT_BITS;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;
const DELETION: u64 = 1 << SLOT_BITS;
const TAG_MASK: u64 = !((1 << (SLOT_BITS + 1)) - 1);
const FIELD_SEP: char = '\x1f';
// The kinds as index.KIND_ORDER numbers them.
const EXACT: u8 = 0;
const OCR: u8 = 1;
const FUZZY: u8 = 2;
const PATTERN: u8 = 3;

/// FxHash over the bytes of `text` without the byte at `skip` (none when out of range), then a murmur3 finaliser:
/// bucket and tag are the top bits, which the plain multiply leaves poorly mixed.
fn hash_without(text: &[u8], skip: usize) -> u64 {
    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let length = text.len() - usize::from(skip < text.len());
    let mut h = (length as u64).wrapping_mul(K);
    for (i, &b) in text.iter().enumerate() {
        if i != skip {
            h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Positions whose deletion gives a distinct string: deleting any character of a run gives the same string.
fn deletions(text: &[u8]) -> impl Iterator<Item = usize> + '_ {
    (0..text.len()).filter(move |&i| i == 0 || text[i] != text[i - 1])
}

/// Whether two different strings are within Levenshtein distance 1: one substitution, or one insertion.
fn within_one(a: &[u8], b: &[u8]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let first = short.iter().zip(long).take_while(|(x, y)| x == y).count();
    match long.len() - short.len() {
        0 => first < short.len() && short[first + 1..] == long[first + 1..],
        1 => short[first..] == long[first + 1..],
        _ => false,
    }
}

/// A whole-string match of the pattern (`?` one character, `*` any run, possibly empty), as the reference's regex
/// (`?` to `.`, `*` to `.*`, fullmatch) for text without a newline. Greedy with backtracking to the last `*`.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Table items in buckets by the top `64 - shift` bits: `starts[b]..starts[b + 1]` are bucket b's items.
struct Buckets {
    items: Vec<u64>,
    starts: Vec<u32>,
    shift: u32,
}

impl Buckets {
    fn new(unplaced: Vec<u64>) -> Buckets {
        // About two items a bucket: a short scan, and a directory of two bytes an item rather than eight.
        let bits = (usize::BITS - unplaced.len().leading_zeros()).saturating_sub(1).max(1);
        let shift = 64 - bits;
        let mut starts = vec![0u32; (1 << bits) + 1];
        for &item in &unplaced {
            starts[(item >> shift) as usize + 1] += 1;
        }
        for b in 1..starts.len() {
            starts[b] += starts[b - 1];
        }
        let mut fill = starts.clone();
        let mut items = vec![0u64; unplaced.len()];
        for item in unplaced {
            let bucket = (item >> shift) as usize;
            items[fill[bucket] as usize] = item;
            fill[bucket] += 1;
        }
        Buckets { items, starts, shift }
    }

    /// Slots stored under this hash (full forms only unless `deletions_too`), with repeats.
    fn probe(&self, hash: u64, deletions_too: bool, mut found: impl FnMut(usize)) {
        let tag = hash & TAG_MASK;
        let bucket = (tag >> self.shift) as usize;
        for &item in &self.items[self.starts[bucket] as usize..self.starts[bucket + 1] as usize] {
            if item & TAG_MASK == tag && (deletions_too || item & DELETION == 0) {
                found((item & SLOT_MASK) as usize);
            }
        }
    }
}

/// A pattern entry: its slot, and its confusion form at `text[at..at + len]`.
struct Pattern {
    slot: u32,
    at: u32,
    len: u32,
    // The length of the reads it can match: `min_len` exactly, or `min_len` or more when it has a `*`.
    min_len: u32,
    open: bool,
}

/// The lookup of one segment; immutable, so shared across threads without locking.
#[pyclass(frozen, module = "anpr_native")]
pub struct FormTable {
    // Per slot, the normalised plate then its confusion form (same length, ASCII): text[ends[s - 1]..ends[s]].
    text: Vec<u8>,
    ends: Vec<u32>,
    variants: Buckets,
    patterns: Vec<Pattern>,
}

impl FormTable {
    fn plate(&self, slot: usize) -> (&[u8], &[u8]) {
        let start = if slot == 0 { 0 } else { self.ends[slot - 1] as usize };
        let both = &self.text[start..self.ends[slot] as usize];
        both.split_at(both.len() / 2)
    }
}

fn plain(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii() && b != b'\n')
}

/// The table of a segment from its records (`normalised US entry_id US plate US reference`, segment.py), slot by
/// slot; None when some normalised plate is not plain ASCII (the Python table serves that segment).
#[pyfunction]
pub fn form_table(records: &Bound<'_, PyList>) -> PyResult<Option<FormTable>> {
    if records.len() > MAX_SEGMENT {
        return Ok(None);
    }
    let mut text = Vec::with_capacity(records.len() * 16);
    let mut ends = Vec::with_capacity(records.len());
    let mut unplaced = Vec::with_capacity(records.len() * 8);
    let mut patterns = Vec::new();
    for (slot, record) in records.iter().enumerate() {
        let record = record.cast::<PyString>()?.to_str()?;
        let normalised = record.split(FIELD_SEP).next().unwrap_or_default();
        if !plain(normalised) {
            return Ok(None);
        }
        let at = text.len();
        text.extend_from_slice(normalised.as_bytes());
        text.extend_from_slice(crate::confusion_ascii(normalised).as_bytes());
        ends.push(u32::try_from(text.len()).map_err(|_| pyo3::exceptions::PyOverflowError::new_err("text"))?);
        let form = &text[at + normalised.len()..];
        let slot_bits = slot as u64;
        if form.iter().any(|&b| b == b'?' || b == b'*') {
            patterns.push(Pattern {
                slot: slot as u32,
                at: (at + normalised.len()) as u32,
                len: form.len() as u32,
                min_len: form.iter().filter(|&&b| b != b'*').count() as u32,
                open: form.contains(&b'*'),
            });
            continue;
        }
        unplaced.push((hash_without(form, usize::MAX) & TAG_MASK) | slot_bits);
        if form.len() >= MIN_FUZZY_LENGTH {
            for skip in deletions(form) {
                unplaced.push((hash_without(form, skip) & TAG_MASK) | DELETION | slot_bits);
            }
        }
    }
    text.shrink_to_fit();
    Ok(Some(FormTable { text, ends, variants: Buckets::new(unplaced), patterns }))
}

#[pymethods]
impl FormTable {
    /// (slot, kind, distance) of every entry the read matches, each slot once: exact (same normalised plate), ocr
    /// (same confusion form), fuzzy (distance 1 between the forms, entry plate of MIN_FUZZY_LENGTH or more; only when
    /// `fuzzy`) and pattern (matches the whole form). None when the read is not plain ASCII: Python decides.
    fn probe(&self, normalised: &str, form: &str, fuzzy: bool) -> Option<Vec<(u32, u8, u8)>> {
        if !plain(normalised) || !plain(form) {
            return None;
        }
        let (normalised, form) = (normalised.as_bytes(), form.as_bytes());
        let mut hits: Vec<(u32, u8, u8)> = Vec::new();
        let mut verify = |slot: usize| {
            if hits.iter().any(|&(s, _, _)| s as usize == slot) {
                return;
            }
            let (entry_plate, entry_form) = self.plate(slot);
            let hit = if entry_plate == normalised {
                Some((EXACT, 0))
            } else if entry_form == form {
                Some((OCR, 0))
            } else if fuzzy && entry_plate.len() >= MIN_FUZZY_LENGTH && within_one(entry_form, form) {
                Some((FUZZY, 1))
            } else {
                None
            };
            if let Some((kind, distance)) = hit {
                hits.push((slot as u32, kind, distance));
            }
        };
        self.variants.probe(hash_without(form, usize::MAX), fuzzy, &mut verify);
        if fuzzy {
            for skip in deletions(form) {
                self.variants.probe(hash_without(form, skip), true, &mut verify);
            }
        }
        for pattern in &self.patterns {
            // Length and first literal first: most patterns are ruled out without running the matcher.
            let min_len = pattern.min_len as usize;
            let fits = if pattern.open { form.len() >= min_len } else { form.len() == min_len };
            let at = pattern.at as usize;
            let text = &self.text[at..at + pattern.len as usize];
            let first = text.first().is_none_or(|&c| c == b'?' || c == b'*' || form.first() == Some(&c));
            if fits && first && glob(text, form) {
                hits.push((pattern.slot, PATTERN, 0));
            }
        }
        Some(hits)
    }

    /// Bytes held by the table, for Segment.nbytes.
    fn nbytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.text.capacity()
            + 4 * self.ends.capacity()
            + 8 * self.variants.items.capacity()
            + 4 * self.variants.starts.capacity()
            + std::mem::size_of::<Pattern>() * self.patterns.capacity()
    }
}
