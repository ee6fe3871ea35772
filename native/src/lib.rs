//! anpr_native: the native twin of anpr_stream's read-decoding core (message.decode, readings.reading_from_mapping,
//! plates.normalise / confusion_form, identity.passage_key).
//!
//! The Python code is the reference; this is a fast path that may only accept. Every function returns None for an
//! input it is not certain about, and the Python reference decides (and gives the refusal reason). What it returns
//! must be exactly what the reference produces: tests/unit/test_native_core.py checks it differentially.
//!
//! normalise(raw) / confusion_form(normalised): the plates functions for ASCII text, None for any other.
//! passage_key(read_id, camera_id, epoch_micros, plate_norm): identity.passage_key, for any text.
//! parse_read(value): (read_id, camera_id, observed_at, plate, country, confidence, extra, plate_norm, plate_class,
//!     passage_key) for a message the reference accepts, None when not certain.
//! decode_read(value, Reading): the same, as (Reading, plate_class, passage_key): what message.decode_native uses.
//! ENABLED (False under ANPR_CORE=python), LIMITS and READING_ATTRS: what the tests compare with the reference.
//! form_table(records) / FormTable.probe: a matching segment's lookup (segment.rs; tests/unit/test_native_segment.py).

mod segment;

use std::borrow::Cow;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyString, PyTuple, PyType};
use sha2::{Digest, Sha256};

// The reference's limits (anpr_stream/core/readings.py, message.py, the schema), exported as LIMITS so that a test
// fails when the two disagree.
const MAX_MESSAGE_BYTES: usize = 16 * 1024;
const MAX_ID: usize = 128;
const MAX_RAW_PLATE: usize = 32;
const MAX_NORMALISED_PLATE: usize = 16;
const MAX_EXTRA_FIELDS: usize = 32;
const MAX_EXTRA_KEY: usize = 64;
const MAX_EXTRA_STRING: usize = 1024;
const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;
const READING_FIELDS: usize = 6;
// readings.EARLIEST (2000-01-01T00:00:00Z) and the first instant astimezone(UTC) cannot represent (year 10000).
const EARLIEST_MICROS: i64 = 946_684_800_000_000;
const END_MICROS: i64 = 253_402_300_800_000_000;
// The schema's maxLength of these extra fields (reading.schema.json), beyond the reference's MAX_EXTRA_STRING.
const MAX_DIRECTION: usize = 32;
const MAX_VEHICLE: usize = 32;
const MAX_IMAGE_REF: usize = 512;

/// A top-level JSON value of the fast path: scalars only (an object or an array sends the read to the reference).
enum Value<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
}

/// A strict JSON reader (RFC 8259, as orjson reads it) of one flat object of printable-ASCII text. None means "not
/// certain", never "invalid": the reference reads the message again.
struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn ws(&mut self) {
        while matches!(self.b.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        self.i - start
    }

    /// A string after its opening quote. Raw bytes outside printable ASCII (control characters, which JSON forbids
    /// raw, DEL, and any UTF-8 sequence) and escapes that do not produce printable ASCII end the fast path: the
    /// reference refuses control characters, and non-ASCII text is its own to judge.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let start = self.i;
        loop {
            match *self.b.get(self.i)? {
                b'"' => {
                    // SAFETY: every byte from start is printable ASCII (the arm below), hence UTF-8.
                    let text = unsafe { std::str::from_utf8_unchecked(&self.b[start..self.i]) };
                    self.i += 1;
                    return Some(Cow::Borrowed(text));
                }
                b'\\' => break,
                0x20..=0x7e => self.i += 1,
                _ => return None,
            }
        }
        let mut out = String::from(std::str::from_utf8(&self.b[start..self.i]).ok()?);
        loop {
            match *self.b.get(self.i)? {
                b'"' => {
                    self.i += 1;
                    return Some(Cow::Owned(out));
                }
                b'\\' => {
                    let c = match *self.b.get(self.i + 1)? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'u' => {
                            let hex = self.b.get(self.i + 2..self.i + 6)?;
                            let mut code = 0u32;
                            for &h in hex {
                                code = code * 16 + char::from(h).to_digit(16)?;
                            }
                            if !(0x20..=0x7e).contains(&code) {
                                return None;
                            }
                            self.i += 4;
                            char::from_u32(code)?
                        }
                        _ => return None, // \b \f \n \r \t: control characters
                    };
                    out.push(c);
                    self.i += 2;
                }
                c @ 0x20..=0x7e => {
                    out.push(char::from(c));
                    self.i += 1;
                }
                _ => return None,
            }
        }
    }

    /// A number as orjson gives it: an int without fraction or exponent, else a float. Ints beyond i64 (orjson turns
    /// them into floats past u64), -0 and numbers beyond a finite double (orjson refuses them) end the fast path.
    fn number(&mut self) -> Option<Value<'a>> {
        let start = self.i;
        let _ = self.eat(b'-');
        match *self.b.get(self.i)? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        let mut float = false;
        if self.eat(b'.').is_some() {
            if self.digits() == 0 {
                return None;
            }
            float = true;
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
            float = true;
        }
        let text = std::str::from_utf8(&self.b[start..self.i]).ok()?;
        if float {
            // Rust's parse is correctly rounded (as orjson's reader): the same double for every decimal text.
            let value: f64 = text.parse().ok()?;
            value.is_finite().then_some(Value::Float(value))
        } else if text == "-0" {
            None
        } else {
            text.parse().ok().map(Value::Int)
        }
    }

    fn literal(&mut self, word: &[u8], value: Value<'a>) -> Option<Value<'a>> {
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| {
            self.i = end;
            value
        })
    }

    fn value(&mut self) -> Option<Value<'a>> {
        match *self.b.get(self.i)? {
            b'"' => {
                self.i += 1;
                self.string().map(Value::Str)
            }
            b'-' | b'0'..=b'9' => self.number(),
            b't' => self.literal(b"true", Value::Bool(true)),
            b'f' => self.literal(b"false", Value::Bool(false)),
            b'n' => self.literal(b"null", Value::Null),
            _ => None, // an object or an array (candidates, position, nested extras), or not JSON
        }
    }

    /// The whole message: one object with unique keys and at most as many fields as a valid read has.
    fn object(mut self) -> Option<Vec<(Cow<'a, str>, Value<'a>)>> {
        let mut fields: Vec<(Cow<'a, str>, Value<'a>)> = Vec::with_capacity(12);
        self.ws();
        self.eat(b'{')?;
        self.ws();
        if self.eat(b'}').is_none() {
            loop {
                self.eat(b'"')?;
                let key = self.string()?;
                self.ws();
                self.eat(b':')?;
                self.ws();
                let value = self.value()?;
                // orjson keeps the last of duplicate keys; the reference judges such a message itself.
                if fields.len() == READING_FIELDS + MAX_EXTRA_FIELDS || fields.iter().any(|(k, _)| *k == key) {
                    return None;
                }
                fields.push((key, value));
                self.ws();
                match *self.b.get(self.i)? {
                    b',' => {
                        self.i += 1;
                        self.ws();
                    }
                    b'}' => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.ws();
        (self.i == self.b.len()).then_some(fields)
    }
}

fn two_digits(s: &[u8], at: usize) -> Option<i64> {
    let (a, b) = (*s.get(at)?, *s.get(at + 1)?);
    (a.is_ascii_digit() && b.is_ascii_digit()).then(|| i64::from(a - b'0') * 10 + i64::from(b - b'0'))
}

fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Howard Hinnant's days_from_civil: days since 1970-01-01 in the proleptic Gregorian calendar.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Microseconds since the epoch (identity.epoch_micros) of a timestamp matching both the schema's pattern and
/// rfc3339's, with every field in range, from 2000 (readings.EARLIEST) to the end of year 9999 in UTC; else None.
/// Digits of the fraction past the sixth are dropped, as datetime.fromisoformat drops them.
fn epoch_micros(s: &[u8]) -> Option<i64> {
    let year = two_digits(s, 0)? * 100 + two_digits(s, 2)?;
    let month = two_digits(s, 5)?;
    let day = two_digits(s, 8)?;
    let hour = two_digits(s, 11)?;
    let minute = two_digits(s, 14)?;
    let second = two_digits(s, 17)?;
    if s[4] != b'-' || s[7] != b'-' || !matches!(s[10], b'T' | b't' | b' ') || s[13] != b':' || s[16] != b':' {
        return None;
    }
    let mut i = 19;
    let mut micros = 0;
    if s.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while s.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start || i - start > 9 {
            return None;
        }
        for k in 0..6 {
            micros = micros * 10 + s.get(start + k).filter(|_| start + k < i).map_or(0, |d| i64::from(d - b'0'));
        }
    }
    let offset_minutes = match *s.get(i)? {
        b'Z' | b'z' => {
            i += 1;
            0
        }
        sign @ (b'+' | b'-') => {
            let (hh, mm) = (two_digits(s, i + 1)?, two_digits(s, i + 4)?);
            if s[i + 3] != b':' || hh > 23 || mm > 59 {
                return None;
            }
            i += 6;
            if sign == b'+' {
                hh * 60 + mm
            } else {
                -(hh * 60 + mm)
            }
        }
        _ => return None,
    };
    let valid = i == s.len()
        && year >= 1
        && (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour <= 23
        && minute <= 59
        && second <= 59;
    if !valid {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second;
    let utc = (seconds - offset_minutes * 60) * 1_000_000 + micros;
    (EARLIEST_MICROS..END_MICROS).contains(&utc).then_some(utc)
}

fn normalise_ascii(raw: &str) -> String {
    raw.bytes()
        .map(|b| b.to_ascii_uppercase())
        .filter(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        .map(char::from)
        .collect()
}

fn confusion_ascii(normalised: &str) -> String {
    // confusion.CONFUSION_CLASSES: each character to its class's first one.
    normalised
        .bytes()
        .map(|b| match b {
            b'O' | b'D' | b'Q' => '0',
            b'I' | b'L' => '1',
            b'Z' => '2',
            b'S' => '5',
            b'B' => '8',
            b'G' => '6',
            other => char::from(other),
        })
        .collect()
}

fn key_of(read_id: &str, camera_id: &str, epoch_micros: i64, plate_norm: &str) -> String {
    let mut hash = Sha256::new();
    for (n, part) in [read_id, camera_id, &epoch_micros.to_string(), plate_norm].iter().enumerate() {
        if n > 0 {
            hash.update(b"\x1f");
        }
        hash.update(part.as_bytes());
    }
    let digest = hash.finalize();
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(36);
    for (n, byte) in digest[..16].iter().enumerate() {
        if matches!(n, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 15)]));
    }
    out
}

/// `plates.normalise(raw)` for ASCII text; None for any other (NFKC and the homoglyphs are the reference's).
#[pyfunction]
fn normalise(raw: &str) -> Option<String> {
    raw.is_ascii().then(|| normalise_ascii(raw))
}

/// `plates.confusion_form(normalised)` for ASCII text; None for any other.
#[pyfunction]
fn confusion_form(normalised: &str) -> Option<String> {
    normalised.is_ascii().then(|| confusion_ascii(normalised))
}

/// `identity.passage_key` from the instant's `identity.epoch_micros`.
#[pyfunction]
fn passage_key(read_id: &str, camera_id: &str, epoch_micros: i64, plate_norm: &str) -> String {
    key_of(read_id, camera_id, epoch_micros, plate_norm)
}

fn scalar<'py>(py: Python<'py>, value: &Value<'_>) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Str(text) => PyString::new(py, text).into_any(),
        Value::Int(n) => n.into_pyobject(py)?.into_any(),
        Value::Float(x) => PyFloat::new(py, *x).into_any(),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Null => py.None().into_bound(py),
    })
}

/// Whether an extra field is one the schema and the reference's `_flat_and_clean` both accept as it is.
fn plain_extra(key: &str, value: &Value<'_>) -> bool {
    if key.is_empty() || key.len() > MAX_EXTRA_KEY {
        return false;
    }
    let text_up_to = |limit: usize| match value {
        Value::Str(text) => text.len() <= limit,
        Value::Null => true,
        _ => false,
    };
    match key {
        // Typed by the reference (Candidate, Position): its own to build, even when null.
        "candidates" | "position" => false,
        "direction" => text_up_to(MAX_DIRECTION),
        "vehicle" => text_up_to(MAX_VEHICLE),
        "image_ref" => text_up_to(MAX_IMAGE_REF),
        // The schema's "integer" also takes 1.0: a float lane is the reference's to judge.
        "lane" => matches!(value, Value::Int(n) if n.abs() <= MAX_SAFE_INTEGER) || text_up_to(MAX_EXTRA_STRING),
        _ => match value {
            Value::Str(text) => text.len() <= MAX_EXTRA_STRING,
            Value::Int(n) => n.abs() <= MAX_SAFE_INTEGER,
            Value::Float(_) | Value::Bool(_) | Value::Null => true,
        },
    }
}

fn identifier<'v>(value: Option<&'v Value<'_>>) -> Option<&'v str> {
    match value? {
        Value::Str(text) if !text.is_empty() && text.len() <= MAX_ID && text.bytes().any(|b| b != b' ') => Some(text),
        _ => None,
    }
}

/// A read the fast path accepts, as the reference builds it.
struct Read<'py> {
    read_id: Bound<'py, PyString>,
    camera_id: Bound<'py, PyString>,
    observed_at: Bound<'py, PyAny>,
    plate: Bound<'py, PyString>,
    country: Option<String>,
    confidence: f64,
    extra: Bound<'py, PyDict>,
    plate_norm: String,
    plate_class: String,
    passage_key: String,
}

type Parsed<'py> = (
    Bound<'py, PyString>,
    Bound<'py, PyString>,
    Bound<'py, PyAny>,
    Bound<'py, PyString>,
    Option<String>,
    f64,
    Bound<'py, PyDict>,
    String,
    String,
    String,
);

fn read<'py>(py: Python<'py>, value: &Bound<'py, PyAny>) -> PyResult<Option<Read<'py>>> {
    static FROMISOFORMAT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let Ok(bytes) = value.cast::<pyo3::types::PyBytes>() else {
        return Ok(None);
    };
    let message = bytes.as_bytes();
    if message.len() > MAX_MESSAGE_BYTES {
        return Ok(None);
    }
    let Some(fields) = (Parser { b: message, i: 0 }).object() else {
        return Ok(None);
    };
    let mut own: [Option<&Value<'_>>; READING_FIELDS] = [None; READING_FIELDS];
    let mut extra = Vec::with_capacity(fields.len());
    for (key, value) in &fields {
        let slot = match key.as_ref() {
            "read_id" => 0,
            "camera_id" => 1,
            "observed_at" => 2,
            "plate" => 3,
            "country" => 4,
            "confidence" => 5,
            _ => {
                if !plain_extra(key, value) {
                    return Ok(None);
                }
                extra.push((key, value));
                continue;
            }
        };
        own[slot] = Some(value);
    }
    if extra.len() > MAX_EXTRA_FIELDS {
        return Ok(None);
    }
    let (Some(read_id), Some(camera_id)) = (identifier(own[0]), identifier(own[1])) else {
        return Ok(None);
    };
    let Some(Value::Str(observed)) = own[2] else {
        return Ok(None);
    };
    if observed.len() > 40 {
        return Ok(None);
    }
    let Some(micros) = epoch_micros(observed.as_bytes()) else {
        return Ok(None);
    };
    let Some(Value::Str(plate)) = own[3] else {
        return Ok(None);
    };
    let plate_norm = normalise_ascii(plate);
    if plate.len() > MAX_RAW_PLATE || plate_norm.is_empty() || plate_norm.len() > MAX_NORMALISED_PLATE {
        return Ok(None);
    }
    let country = match own[4] {
        Some(Value::Null) => None,
        Some(Value::Str(code)) if code.is_empty() => None,
        Some(Value::Str(code)) if code.len() == 2 && code.bytes().all(|b| b.is_ascii_alphabetic()) => {
            Some(code.to_ascii_uppercase())
        }
        _ => return Ok(None),
    };
    let confidence = match own[5] {
        Some(Value::Int(n @ (0 | 1))) => *n as f64,
        Some(Value::Float(x)) if (0.0..=1.0).contains(x) => *x,
        _ => return Ok(None),
    };
    // The datetime itself from the reference's own call (rfc3339.parse_rfc3339), so that it and its tzinfo are the
    // reference's; the checks above make the call certain to succeed, and a failure only ends the fast path.
    let fromisoformat = FROMISOFORMAT.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        Ok(py.import("datetime")?.getattr("datetime")?.getattr("fromisoformat")?.unbind())
    })?;
    let Ok(observed_at) = fromisoformat.bind(py).call1((observed.to_ascii_uppercase(),)) else {
        return Ok(None);
    };
    let dict = PyDict::new(py);
    for (key, value) in extra {
        dict.set_item(PyString::new(py, key), scalar(py, value)?)?;
    }
    let plate_class = confusion_ascii(&plate_norm);
    let passage_key = key_of(read_id, camera_id, micros, &plate_norm);
    Ok(Some(Read {
        read_id: PyString::new(py, read_id),
        camera_id: PyString::new(py, camera_id),
        observed_at,
        plate: PyString::new(py, plate),
        country,
        confidence,
        extra: dict,
        plate_norm,
        plate_class,
        passage_key,
    }))
}

/// The fast path of `message.decode`: (read_id, camera_id, observed_at, plate, country, confidence, extra,
/// plate_norm, plate_class, passage_key) for a read the reference accepts, exactly as it builds them (plate_class is
/// confusion_form(plate_norm), passage_key identity.passage_key); None when not certain.
#[pyfunction]
fn parse_read<'py>(py: Python<'py>, value: &Bound<'py, PyAny>) -> PyResult<Option<Parsed<'py>>> {
    Ok(read(py, value)?.map(|r| {
        (
            r.read_id,
            r.camera_id,
            r.observed_at,
            r.plate,
            r.country,
            r.confidence,
            r.extra,
            r.plate_norm,
            r.plate_class,
            r.passage_key,
        )
    }))
}

// The attributes of readings.Reading, in its field order, as `decode_read` sets them (a test checks the list against
// dataclasses.fields(Reading)).
const READING_ATTRS: [&str; 10] = [
    "read_id",
    "camera_id",
    "observed_at",
    "plate",
    "country",
    "confidence",
    "extra",
    "candidates",
    "position",
    "plate_norm",
];

/// `parse_read` building the reading itself: (reading_type instance, plate_class, passage_key), or None. The reading
/// is made as object.__new__ and object.__setattr__ of every field, which is what the frozen dataclass's __init__
/// does, without its ten interpreted calls (a third of the fast path's cost); candidates and position are the
/// defaults of a read without them, () and None.
#[pyfunction]
fn decode_read<'py>(
    py: Python<'py>,
    value: &Bound<'py, PyAny>,
    reading_type: &Bound<'py, PyType>,
) -> PyResult<Option<(Bound<'py, PyAny>, String, String)>> {
    static OBJECT_NEW: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    static NAMES: PyOnceLock<Vec<Py<PyString>>> = PyOnceLock::new();
    let Some(r) = read(py, value)? else {
        return Ok(None);
    };
    let new = OBJECT_NEW.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        Ok(py.import("builtins")?.getattr("object")?.getattr("__new__")?.unbind())
    })?;
    let names = NAMES.get_or_init(py, || READING_ATTRS.iter().map(|n| PyString::intern(py, n).unbind()).collect());
    let reading = new.bind(py).call1((reading_type,))?;
    let values: [Bound<'py, PyAny>; 10] = [
        r.read_id.into_any(),
        r.camera_id.into_any(),
        r.observed_at,
        r.plate.into_any(),
        r.country.into_pyobject(py)?.into_any(),
        PyFloat::new(py, r.confidence).into_any(),
        r.extra.into_any(),
        PyTuple::empty(py).into_any(),
        py.None().into_bound(py),
        PyString::new(py, &r.plate_norm).into_any(),
    ];
    for (name, value) in names.iter().zip(values.iter()) {
        // SAFETY: three valid object pointers, borrowed for the call; -1 leaves the exception set, fetched below.
        if unsafe { pyo3::ffi::PyObject_GenericSetAttr(reading.as_ptr(), name.as_ptr(), value.as_ptr()) } != 0 {
            return Err(PyErr::fetch(py));
        }
    }
    Ok(Some((reading, r.plate_class, r.passage_key)))
}

/// Whether the process wants this fast path: ANPR_CORE=python makes the core use its Python reference (the switch
/// lives here, in the extension, because anpr_stream.core reads no environment).
fn enabled() -> PyResult<bool> {
    match std::env::var("ANPR_CORE").as_deref().map(str::trim) {
        Err(_) | Ok("" | "native") => Ok(true),
        Ok("python") => Ok(false),
        Ok(other) => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "ANPR_CORE={other:?}: expected `python` (the reference) or `native` (the default when installed)"
        ))),
    }
}

#[pymodule]
fn anpr_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("ENABLED", enabled()?)?;
    let limits = PyDict::new(py);
    limits.set_item("MAX_MESSAGE_BYTES", MAX_MESSAGE_BYTES)?;
    limits.set_item("MAX_ID", MAX_ID)?;
    limits.set_item("MAX_RAW_PLATE", MAX_RAW_PLATE)?;
    limits.set_item("MAX_NORMALISED_PLATE", MAX_NORMALISED_PLATE)?;
    limits.set_item("MAX_EXTRA_FIELDS", MAX_EXTRA_FIELDS)?;
    limits.set_item("MAX_EXTRA_KEY", MAX_EXTRA_KEY)?;
    limits.set_item("MAX_EXTRA_STRING", MAX_EXTRA_STRING)?;
    limits.set_item("MAX_SAFE_INTEGER", MAX_SAFE_INTEGER)?;
    limits.set_item("EARLIEST_MICROS", EARLIEST_MICROS)?;
    m.add("LIMITS", limits)?;
    m.add("READING_ATTRS", PyTuple::new(py, READING_ATTRS)?)?;
    m.add_function(wrap_pyfunction!(normalise, m)?)?;
    m.add_function(wrap_pyfunction!(confusion_form, m)?)?;
    m.add_function(wrap_pyfunction!(passage_key, m)?)?;
    m.add_function(wrap_pyfunction!(parse_read, m)?)?;
    m.add_function(wrap_pyfunction!(decode_read, m)?)?;
    m.add_class::<segment::FormTable>()?;
    m.add_function(wrap_pyfunction!(segment::form_table, m)?)?;
    Ok(())
}
