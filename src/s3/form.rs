//! A streaming `multipart/form-data` reader (RFC 7578) for S3's POST Object: the small
//! fields before the file are read whole (bounded), the file part is handed out as a
//! `Read` that stops at the next boundary, so an upload is never held in memory.
//!
//! Memory is one read buffer (`FORM_BUFFER_BYTES`) and one part's header block (at most
//! `PART_HEADER_BYTES_MAX`). A body that ends before the closing delimiter of the part
//! being read is an error, never a shorter part: a browser upload cut off by a dropped
//! connection must not be stored as a truncated file.

use std::io::{self, Read};

/// Longest boundary (RFC 2046 allows 70 characters).
pub const BOUNDARY_BYTES_MAX: usize = 70;
/// Longest header block of one part (its Content-Disposition and Content-Type lines).
pub const PART_HEADER_BYTES_MAX: usize = 8 * 1024;
/// The read buffer; larger than any delimiter, so a delimiter always fits in it.
pub const FORM_BUFFER_BYTES: usize = 64 * 1024;

/// Why a form could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormError {
    /// Not well-formed multipart/form-data (a bad header block, no boundary, ...).
    Malformed(String),
    /// The body ended inside a part, before its closing delimiter.
    Truncated,
    /// The transport failed (the client went away).
    Io(String),
}

impl std::fmt::Display for FormError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FormError::Malformed(m) => write!(f, "malformed multipart/form-data: {m}"),
            FormError::Truncated => write!(f, "the form ended before its closing boundary"),
            FormError::Io(m) => write!(f, "reading the form: {m}"),
        }
    }
}

impl std::error::Error for FormError {}

impl FormError {
    fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }

    /// The `FormError` inside an `io::Error` a part's reader returned, or the transport
    /// error as `Io`.
    pub fn from_io(e: &io::Error) -> FormError {
        match e.get_ref().and_then(|i| i.downcast_ref::<FormError>()) {
            Some(f) => f.clone(),
            None => FormError::Io(e.to_string()),
        }
    }
}

fn malformed(m: impl Into<String>) -> FormError {
    FormError::Malformed(m.into())
}

/// The boundary of a `multipart/form-data; boundary=...` content type (quoted or not);
/// None for any other content type.
pub fn boundary(content_type: &str) -> Option<Result<String, FormError>> {
    let mut params = content_type.split(';');
    let kind = params.next()?.trim();
    if !kind.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let b = params.find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_string())
    });
    Some(match b {
        None => Err(malformed("the content type names no boundary")),
        Some(b) if b.is_empty() || b.len() > BOUNDARY_BYTES_MAX => Err(malformed(format!(
            "the boundary must be 1 to {BOUNDARY_BYTES_MAX} characters"
        ))),
        Some(b) => Ok(b),
    })
}

/// The head of one part: its field name, and the file name a file input gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartHead {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
}

/// Where the reader is between parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Inside a part's data (or the preamble before the first delimiter).
    InPart,
    /// Just after a delimiter: the next part's header block, or `--` for the end.
    AfterDelimiter,
    /// After the closing delimiter.
    End,
}

/// A multipart/form-data body being read. `next_part` moves to the next part's head;
/// the part's data is read through `Read` on this reader (or `read_value`), which returns
/// `Ok(0)` at the part's end.
pub struct FormReader<R: Read> {
    inner: R,
    /// `\r\n--boundary`: what ends every part.
    delimiter: Vec<u8>,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    inner_eof: bool,
    state: State,
}

impl<R: Read> FormReader<R> {
    pub fn new(inner: R, boundary: &str) -> FormReader<R> {
        let delimiter = format!("\r\n--{boundary}").into_bytes();
        let mut buf = vec![0; FORM_BUFFER_BYTES.max(delimiter.len() * 2)];
        // The first delimiter has no line break before it; a virtual one lets one search
        // find it like every other (anything before it is the preamble, skipped).
        buf[..2].copy_from_slice(b"\r\n");
        FormReader {
            inner,
            delimiter,
            buf,
            pos: 0,
            end: 2,
            inner_eof: false,
            state: State::InPart,
        }
    }

    /// Reads more of the body into the buffer (moving what is left to its start); false
    /// at the end of the body.
    fn fill(&mut self) -> Result<bool, FormError> {
        if self.inner_eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.end == self.buf.len() {
            return Ok(true);
        }
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.inner_eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(FormError::Io(e.to_string())),
            }
        }
    }

    /// Moves to the head of the next part, skipping what is left of the current one.
    /// None after the closing delimiter.
    pub fn next_part(&mut self) -> Result<Option<PartHead>, FormError> {
        let mut sink = [0u8; 4096];
        while self.state == State::InPart {
            self.read_part(&mut sink)?;
        }
        if self.state == State::End {
            return Ok(None);
        }
        // After a delimiter: `--` closes the form; else optional whitespace and CRLF.
        while self.end - self.pos < 2 {
            if !self.fill()? {
                return Err(FormError::Truncated);
            }
        }
        if &self.buf[self.pos..self.pos + 2] == b"--" {
            self.state = State::End;
            return Ok(None);
        }
        let head = self.header_block()?;
        self.state = State::InPart;
        parse_head(&head).map(Some)
    }

    /// The header block of a part, from the line break after its delimiter to the empty
    /// line (both excluded).
    fn header_block(&mut self) -> Result<String, FormError> {
        loop {
            let window = &self.buf[self.pos..self.end];
            let found = find(window, b"\r\n\r\n");
            if found.unwrap_or(window.len()) > PART_HEADER_BYTES_MAX {
                return Err(malformed(format!(
                    "a part's headers are longer than {PART_HEADER_BYTES_MAX} bytes"
                )));
            }
            if let Some(i) = found {
                let text = std::str::from_utf8(&window[..i])
                    .map_err(|_| malformed("a part's headers are not UTF-8"))?
                    .to_string();
                self.pos += i + 4;
                // What follows the delimiter on its line is transport padding.
                let text = match text.split_once("\r\n") {
                    Some((pad, rest)) if pad.trim().is_empty() => rest.to_string(),
                    // An empty header block: the part starts right after its delimiter line.
                    None if text.trim().is_empty() => String::new(),
                    _ => return Err(malformed("text after a boundary on its line")),
                };
                return Ok(text);
            }
            if !self.fill()? {
                return Err(FormError::Truncated);
            }
        }
    }

    /// Some of the current part's data; 0 at its end (the delimiter is then consumed).
    fn read_part(&mut self, out: &mut [u8]) -> Result<usize, FormError> {
        if self.state != State::InPart || out.is_empty() {
            return Ok(0);
        }
        let d = self.delimiter.len();
        loop {
            let window = &self.buf[self.pos..self.end];
            // Only as far as this read can hand out (plus a delimiter's length): small
            // reads must not rescan the whole buffer each time.
            let window = &window[..window.len().min(out.len() + d - 1)];
            if let Some(i) = find(window, &self.delimiter) {
                if i == 0 {
                    self.pos += d;
                    self.state = State::AfterDelimiter;
                    return Ok(0);
                }
                let n = i.min(out.len());
                out[..n].copy_from_slice(&window[..n]);
                self.pos += n;
                return Ok(n);
            }
            // Bytes that cannot be the start of a delimiter are data.
            let safe = window.len().saturating_sub(d - 1);
            if safe > 0 {
                let n = safe.min(out.len());
                out[..n].copy_from_slice(&window[..n]);
                self.pos += n;
                return Ok(n);
            }
            if !self.fill()? {
                return Err(FormError::Truncated);
            }
        }
    }

    /// The whole data of the current part, refused when longer than `max` bytes (the
    /// caller's error then says which limit).
    pub fn read_value(&mut self, max: u64) -> Result<Option<Vec<u8>>, FormError> {
        let mut v = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = self.read_part(&mut chunk)?;
            if n == 0 {
                return Ok(Some(v));
            }
            v.extend_from_slice(&chunk[..n]);
            if v.len() as u64 > max {
                return Ok(None);
            }
        }
    }
}

impl<R: Read> Read for FormReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.read_part(out).map_err(FormError::into_io)
    }
}

/// The first position of `needle` in `hay`: a scan for its first byte, then a compare.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let last_start = hay.len().checked_sub(needle.len())?;
    let mut start = 0;
    while start <= last_start {
        let i = start + hay[start..=last_start].iter().position(|&b| b == first)?;
        if hay[i..].starts_with(needle) {
            return Some(i);
        }
        start = i + 1;
    }
    None
}

/// A part's header block: `Content-Disposition: form-data; name="..."[; filename="..."]`
/// (required) and `Content-Type` (optional); other headers are ignored.
fn parse_head(text: &str) -> Result<PartHead, FormError> {
    let mut disposition = None;
    let mut content_type = None;
    for line in text.split("\r\n") {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| malformed(format!("a part header without a colon: {line:?}")))?;
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-disposition") {
            disposition = Some(value.trim().to_string());
        } else if name.eq_ignore_ascii_case("content-type") {
            content_type = Some(value.trim().to_string());
        }
    }
    let d = disposition.ok_or_else(|| malformed("a part without Content-Disposition"))?;
    let mut params = split_params(&d).into_iter();
    match params.next() {
        Some((kind, None)) if kind.eq_ignore_ascii_case("form-data") => {}
        _ => return Err(malformed(format!("a part that is not form-data: {d:?}"))),
    }
    let mut name = None;
    let mut filename = None;
    for (k, v) in params {
        match (k.to_ascii_lowercase().as_str(), v) {
            ("name", Some(v)) => name = Some(v),
            ("filename", Some(v)) => filename = Some(v),
            _ => {}
        }
    }
    Ok(PartHead {
        name: name.ok_or_else(|| malformed(format!("a part without a name: {d:?}")))?,
        filename,
        content_type,
    })
}

/// `a; b="x;y"; c=z` as (name, value) pairs, quotes removed and `\"` unescaped.
fn split_params(s: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.trim().is_empty() {
        let rest_t = rest.trim_start_matches([' ', '\t', ';']);
        let end = rest_t.find([';', '=']).unwrap_or(rest_t.len());
        let key = rest_t[..end].trim().to_string();
        if rest_t[end..].starts_with('=') {
            let v = rest_t[end + 1..].trim_start();
            if let Some(q) = v.strip_prefix('"') {
                let mut value = String::new();
                let mut chars = q.char_indices();
                let mut close = q.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, n)) = chars.next() {
                                value.push(n);
                            }
                        }
                        '"' => {
                            close = i + 1;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                out.push((key, Some(value)));
                rest = &q[close.min(q.len())..];
            } else {
                let e = v.find(';').unwrap_or(v.len());
                out.push((key, Some(v[..e].trim().to_string())));
                rest = &v[e..];
            }
        } else {
            if !key.is_empty() {
                out.push((key, None));
            }
            rest = &rest_t[end..];
        }
        rest = rest.trim_start_matches([' ', '\t', ';']);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes per read, to cut delimiters apart.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn form(file: &[u8]) -> Vec<u8> {
        let mut b = b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nup/${filename}\r\n--XyZ  \r\ncontent-disposition: form-data; name=\"file\"; filename=\"a \\\"b\\\";c.txt\"\r\nContent-Type: text/plain\r\n\r\n".to_vec();
        b.extend_from_slice(file);
        b.extend_from_slice(
            b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"after\"\r\n\r\nx\r\n--XyZ--\r\n",
        );
        b
    }

    fn read_all(body: &[u8], step: usize) -> Result<Vec<(PartHead, Vec<u8>)>, FormError> {
        let mut r = FormReader::new(Trickle(body, step), "XyZ");
        let mut parts = Vec::new();
        while let Some(h) = r.next_part()? {
            let mut v = Vec::new();
            r.read_to_end(&mut v).map_err(|e| FormError::from_io(&e))?;
            parts.push((h, v));
        }
        Ok(parts)
    }

    #[test]
    fn parts_come_out_whole_whatever_the_read_sizes() {
        // The file holds near-delimiters: a line break and dashes that are not a boundary.
        let file = b"line\r\n--XyQ\r\n--Xy\r\nend\r\n".repeat(5000);
        let body = form(&file);
        for step in [1, 3, 7, 64, 4096, 1 << 20] {
            let parts = read_all(&body, step).unwrap();
            assert_eq!(parts.len(), 3, "step {step}");
            assert_eq!(parts[0].0.name, "key");
            assert_eq!(parts[0].1, b"up/${filename}");
            assert_eq!(parts[1].0.name, "file");
            assert_eq!(parts[1].0.filename.as_deref(), Some("a \"b\";c.txt"));
            assert_eq!(parts[1].0.content_type.as_deref(), Some("text/plain"));
            assert_eq!(parts[1].1, file, "step {step}");
            assert_eq!(parts[2].1, b"x");
        }
    }

    #[test]
    fn an_empty_file_is_an_empty_part() {
        let parts = read_all(&form(b""), 5).unwrap();
        assert_eq!(parts[1].1, b"");
    }

    #[test]
    fn a_cut_body_is_an_error_not_a_short_file() {
        let body = form(&[7u8; 100_000]);
        for cut in [3, 20, 60, 150, 50_000, body.len() - 40] {
            let r = read_all(&body[..cut], 999);
            assert_eq!(r.unwrap_err(), FormError::Truncated, "cut at {cut}");
        }
    }

    #[test]
    fn bad_heads_are_malformed() {
        for head in [
            "Content-Type: text/plain",
            "Content-Disposition: attachment; name=\"a\"",
            "Content-Disposition: form-data; filename=\"a\"",
            "no colon here",
        ] {
            let body = format!("--XyZ\r\n{head}\r\n\r\nv\r\n--XyZ--");
            assert!(
                matches!(read_all(body.as_bytes(), 9), Err(FormError::Malformed(_))),
                "{head}"
            );
        }
        let huge = format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\nv\r\n--XyZ--",
            "n".repeat(PART_HEADER_BYTES_MAX + 10)
        );
        assert!(matches!(
            read_all(huge.as_bytes(), 4096),
            Err(FormError::Malformed(_))
        ));
    }

    #[test]
    fn values_are_bounded() {
        let body =
            b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n0123456789\r\n--XyZ--";
        let mut r = FormReader::new(&body[..], "XyZ");
        r.next_part().unwrap().unwrap();
        assert_eq!(r.read_value(9).unwrap(), None);
        let mut r = FormReader::new(&body[..], "XyZ");
        r.next_part().unwrap().unwrap();
        assert_eq!(r.read_value(10).unwrap().unwrap(), b"0123456789");
    }

    #[test]
    fn boundaries_from_content_types() {
        assert_eq!(
            boundary("multipart/form-data; boundary=abc").unwrap(),
            Ok("abc".into())
        );
        assert_eq!(
            boundary("Multipart/Form-Data;charset=x; boundary=\"a b\"").unwrap(),
            Ok("a b".into())
        );
        assert!(boundary("application/xml").is_none());
        assert!(boundary("multipart/form-data").unwrap().is_err());
        let long = format!("multipart/form-data; boundary={}", "b".repeat(71));
        assert!(boundary(&long).unwrap().is_err());
    }
}
