//! The request body as the director reads it: `aws-chunked` framing decoded, and the
//! payload checked against everything the client said about it.
//!
//! What the headers announce is parsed and validated by [`open`], before a byte is read:
//! - the framing: `x-amz-content-sha256: STREAMING-*` (with or without
//!   `Content-Encoding: aws-chunked`: minio-go and restic leave the encoding out) or
//!   `Content-Encoding: aws-chunked`; anything else is a plain body. The transport may
//!   itself be `Transfer-Encoding: chunked`; tiny_http has removed that layer already;
//! - the expected length (`x-amz-decoded-content-length` for aws-chunked, else
//!   Content-Length), `x-amz-content-sha256` as a hex hash, `Content-MD5`, and one
//!   `x-amz-checksum-<algorithm>` header or one announced in `x-amz-trailer`.
//!
//! [`CheckedBody`] then streams the decoded payload: memory is one fixed read buffer and
//! one chunk header line (at most `LINE_BYTES_MAX`), never a chunk. Each chunk of a signed
//! body is hashed as it passes and its `chunk-signature` compared with what the
//! [`SignatureChain`] expects once the chunk ends. At the end of the payload, before the
//! first `Ok(0)`, the length, SHA-256, MD5 and checksum are compared; the first mismatch is
//! an `io::Error` wrapping a [`BodyCheckError`], returned again by every later read.
//!
//! A failed check reaches the caller while it is still reading, that is before anything is
//! journaled: the object is not committed. Chunks already sent to stores are unreferenced
//! and left to garbage collection.
//!
//! Wire format (aws-chunked), `\r\n` line ends:
//! ```text
//! <size hex>[;chunk-signature=<64 hex>]      one line per chunk, then <size> bytes, \r\n
//! 0[;chunk-signature=<64 hex>]               the last chunk holds no data
//! [x-amz-checksum-<alg>:<base64>]            trailer forms only
//! [x-amz-trailer-signature:<64 hex>]         signed trailer form only
//! <empty line>
//! ```

use crate::checksum::{Algorithm, Checksummer, base64_decode, base64_encode};
use crate::director::error::{DirectorError, Result};
use crate::hash::to_hex;
use crate::http::Request;
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::{self, Read};

/// Longest chunk header or trailer line, `\r\n` excluded (a real one is under 100 bytes).
pub const LINE_BYTES_MAX: usize = 4096;
/// Most trailer lines after the last chunk.
pub const TRAILER_LINES_MAX: usize = 16;
/// The read-ahead buffer of an aws-chunked body.
pub const READ_BUFFER_BYTES: usize = 16 * 1024;

/// Expected signatures of a signed aws-chunked body (implemented by the auth module, which
/// seeds it with the request's own signature and keeps the previous signature itself).
pub trait SignatureChain: Send {
    /// Expected signature of the next chunk, given the lowercase hex SHA-256 of its data.
    fn chunk(&mut self, data_sha256_hex: &str) -> String;
    /// Expected signature of the trailer, given the hex SHA-256 of the trailer as signed.
    fn trailer(&mut self, trailer_sha256_hex: &str) -> String;
}

/// Why a body was refused: an S3 status, code and message. Carried inside the
/// `io::Error`s that [`CheckedBody`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyCheckError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl fmt::Display for BodyCheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for BodyCheckError {}

impl BodyCheckError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> BodyCheckError {
        BodyCheckError {
            status,
            code,
            message: message.into(),
        }
    }

    fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }

    fn into_director(self) -> DirectorError {
        DirectorError::S3(self.status, self.code, self.message)
    }
}

fn refuse(status: u16, code: &'static str, message: impl Into<String>) -> io::Error {
    BodyCheckError::new(status, code, message).into_io()
}

/// `Content-MD5` (`want`, from `CheckedBody::content_md5`) against the MD5 of what was
/// received: 400 BadDigest when they differ.
pub fn check_content_md5(want: Option<[u8; 16]>, got: &[u8; 16]) -> Result<()> {
    match want {
        Some(w) if w != *got => Err(DirectorError::S3(
            400,
            "BadDigest",
            "The Content-MD5 you specified did not match what we received; nothing was stored."
                .into(),
        )),
        _ => Ok(()),
    }
}

/// Malformed aws-chunked framing.
fn malformed(message: impl Into<String>) -> io::Error {
    refuse(400, "InvalidRequest", message)
}

/// The body ended too early.
fn incomplete(message: impl Into<String>) -> io::Error {
    refuse(400, "IncompleteBody", message)
}

fn trailer_error(message: impl Into<String>) -> io::Error {
    refuse(400, "MalformedTrailerError", message)
}

fn signature_error(message: impl Into<String>) -> io::Error {
    refuse(403, "SignatureDoesNotMatch", message)
}

/// Any body read error as the director answers it: a failed check keeps its own status
/// and code; a transport error (the client went away) is `IncompleteBody`.
pub fn director_error(e: &io::Error) -> DirectorError {
    match e.get_ref().and_then(|i| i.downcast_ref::<BodyCheckError>()) {
        Some(b) => b.clone().into_director(),
        None => DirectorError::BodyRead(e.to_string()),
    }
}

/// `Content-Encoding` as S3 stores it: without `aws-chunked`, which only describes the
/// upload. None when nothing is left.
pub fn stored_content_encoding(value: &str) -> Option<String> {
    let is_framing = |e: &str| e.trim().eq_ignore_ascii_case("aws-chunked");
    // Without aws-chunked the header is the object's, kept byte for byte.
    if !value.split(',').any(is_framing) {
        return (!value.trim().is_empty()).then(|| value.to_string());
    }
    let kept: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty() && !is_framing(e))
        .collect();
    (!kept.is_empty()).then(|| kept.join(", "))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Plain,
    AwsChunked {
        /// Chunks carry `chunk-signature` (STREAMING-AWS4-HMAC-SHA256-PAYLOAD...).
        signed: bool,
        /// The x-amz-content-sha256 value names a trailer form (...-TRAILER).
        trailer_form: bool,
    },
}

/// What the headers say about the body, validated before a byte is read.
#[derive(Debug)]
struct Announced {
    framing: Framing,
    /// Decoded length: x-amz-decoded-content-length (aws-chunked) or Content-Length.
    len: Option<u64>,
    sha256: Option<[u8; 32]>,
    md5: Option<Vec<u8>>,
    /// The checksum algorithm and, when sent as a header, its value (else a trailer).
    checksum: Option<(Algorithm, Option<Vec<u8>>)>,
}

impl Announced {
    fn trailer_expected(&self) -> Option<Algorithm> {
        match &self.checksum {
            Some((alg, None)) => Some(*alg),
            _ => None,
        }
    }
}

fn bad_request(code: &'static str, message: impl Into<String>) -> DirectorError {
    DirectorError::S3(400, code, message.into())
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    crate::hash::Hash::parse(&s.to_ascii_lowercase()).map(|h| h.0)
}

/// Reads what the headers announce of the body: framing, decoded length, payload hash,
/// Content-MD5 and checksum, each refused here if malformed.
fn announce(req: &Request<'_>) -> Result<Announced> {
    let (framing, sha256) = framing(req)?;
    Ok(Announced {
        framing,
        len: decoded_len(req, framing)?,
        sha256,
        md5: content_md5(req)?,
        checksum: announced_checksum(req, framing)?,
    })
}

/// The body's framing from `x-amz-content-sha256` and `Content-Encoding`, and the
/// payload hash when the header is one.
fn framing(req: &Request<'_>) -> Result<(Framing, Option<[u8; 32]>)> {
    let aws_chunked_encoding = req.header("content-encoding").is_some_and(|v| {
        v.split(',')
            .any(|e| e.trim().eq_ignore_ascii_case("aws-chunked"))
    });
    let chunked = |signed, trailer_form| {
        Ok((
            Framing::AwsChunked {
                signed,
                trailer_form,
            },
            None,
        ))
    };
    match req.header("x-amz-content-sha256").map(str::trim) {
        Some("STREAMING-AWS4-HMAC-SHA256-PAYLOAD") => chunked(true, false),
        Some("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER") => chunked(true, true),
        Some("STREAMING-UNSIGNED-PAYLOAD-TRAILER") => chunked(false, true),
        Some(v) if v.starts_with("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD") => Err(
            DirectorError::NotImplemented("SigV4a (ECDSA) signed streaming bodies".into()),
        ),
        Some("UNSIGNED-PAYLOAD") | None if aws_chunked_encoding => chunked(false, false),
        Some("UNSIGNED-PAYLOAD") | None => Ok((Framing::Plain, None)),
        Some(v) => match parse_hex32(v) {
            Some(h) if !aws_chunked_encoding => Ok((Framing::Plain, Some(h))),
            Some(_) => Err(bad_request(
                "InvalidRequest",
                "an aws-chunked body needs x-amz-content-sha256 STREAMING-* or UNSIGNED-PAYLOAD, not a payload hash",
            )),
            None => Err(bad_request(
                "InvalidArgument",
                format!(
                    "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER], STREAMING-UNSIGNED-PAYLOAD-TRAILER or a SHA-256 in hex, not {v:?}"
                ),
            )),
        },
    }
}

/// The length of the body once decoded: `Content-Length` of a plain body,
/// `x-amz-decoded-content-length` of an aws-chunked one (None when not sent).
fn decoded_len(req: &Request<'_>, framing: Framing) -> Result<Option<u64>> {
    match framing {
        Framing::Plain => Ok(req.body_len),
        Framing::AwsChunked { .. } => match req.header("x-amz-decoded-content-length") {
            None => Ok(None),
            Some(v) => v.trim().parse::<u64>().map(Some).map_err(|_| {
                bad_request(
                    "InvalidArgument",
                    format!("x-amz-decoded-content-length must be a number of bytes, not {v:?}"),
                )
            }),
        },
    }
}

/// `Content-MD5`, decoded: the base64 of 16 bytes, or `InvalidDigest`.
fn content_md5(req: &Request<'_>) -> Result<Option<Vec<u8>>> {
    match req.header("content-md5") {
        None => Ok(None),
        Some(v) => match base64_decode(v.trim()) {
            Some(d) if d.len() == 16 => Ok(Some(d)),
            _ => Err(bad_request(
                "InvalidDigest",
                "The Content-MD5 you specified is not valid (it must be the base64 of 16 bytes).",
            )),
        },
    }
}

/// The one checksum the client announces: an `x-amz-checksum-<alg>` header (value
/// decoded) or a trailer named in `x-amz-trailer` (value None), consistent with
/// `x-amz-sdk-checksum-algorithm`.
fn announced_checksum(
    req: &Request<'_>,
    framing: Framing,
) -> Result<Option<(Algorithm, Option<Vec<u8>>)>> {
    let mut found: Vec<(Algorithm, Option<Vec<u8>>)> = Vec::new();
    for (name, value) in &req.headers {
        let Some(alg) = Algorithm::from_header(name) else {
            continue;
        };
        match base64_decode(value.trim()) {
            Some(d) if d.len() == alg.digest_len() => found.push((alg, Some(d))),
            _ => {
                return Err(bad_request(
                    "InvalidRequest",
                    format!("Value for {name} header is invalid."),
                ));
            }
        }
    }
    if let Some(t) = req.header("x-amz-trailer") {
        if framing == Framing::Plain {
            return Err(bad_request(
                "InvalidRequest",
                "x-amz-trailer needs an aws-chunked body (x-amz-content-sha256: STREAMING-...-TRAILER)",
            ));
        }
        for name in t.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match Algorithm::from_header(&name.to_ascii_lowercase()) {
                Some(alg) => found.push((alg, None)),
                None => {
                    return Err(bad_request(
                        "InvalidRequest",
                        format!(
                            "the trailer {name:?} is not supported (only x-amz-checksum-crc32, -crc32c, -crc64nvme, -sha1 and -sha256)"
                        ),
                    ));
                }
            }
        }
    }
    if found.len() > 1 {
        return Err(bad_request(
            "InvalidRequest",
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
        ));
    }
    let one = found.pop();
    if let Some(v) = req.header("x-amz-sdk-checksum-algorithm") {
        let Some(sdk) = Algorithm::from_name(v) else {
            return Err(bad_request(
                "InvalidRequest",
                format!("Value for x-amz-sdk-checksum-algorithm header is invalid: {v:?}"),
            ));
        };
        match &one {
            None => {
                return Err(bad_request(
                    "InvalidRequest",
                    "x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* or x-amz-trailer headers were found.",
                ));
            }
            Some((alg, _)) if *alg != sdk => {
                return Err(bad_request(
                    "InvalidRequest",
                    format!(
                        "x-amz-sdk-checksum-algorithm is {v} but the checksum sent is {}",
                        alg.header()
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(one)
}

/// Where the aws-chunked decoder is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Next comes a chunk header line.
    Header,
    /// Inside a chunk's data, this many bytes left.
    Data(u64),
    /// After a chunk's data: its `\r\n`.
    DataEnd,
    /// After the zero-size chunk: trailers (if any) and the closing empty line.
    Trailer,
    Done,
}

/// A request body being read: decoded and verified. See the module documentation.
pub struct CheckedBody<'r> {
    inner: &'r mut dyn Read,
    announced: Announced,
    chain: Option<Box<dyn SignatureChain>>,
    // aws-chunked decoding: a read-ahead buffer for header lines (data that follows a
    // line in it is handed out from it too), the phase, and the current chunk.
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    inner_eof: bool,
    phase: Phase,
    chunk_index: u64,
    chunk_signature: Option<String>,
    chunk_hash: Option<Sha256>,
    trailer_value: Option<Vec<u8>>,
    // Checks of the decoded payload.
    total: u64,
    sha256: Option<Sha256>,
    summer: Option<Checksummer>,
    verified: Option<(String, String)>,
    finished: bool,
    failed: Option<BodyCheckError>,
}

/// Opens the body of `req` for reading: decodes aws-chunked framing (recognised from
/// x-amz-content-sha256 STREAMING-* even without Content-Encoding), and verifies at EOF the
/// payload SHA-256 and any x-amz-checksum-* (header or trailer); Content-MD5 is only parsed
/// here and compared by the writer (`check_content_md5`) with the ETag's MD5. A failed check
/// is an io::Error whose inner error is `BodyCheckError`; `director_error(&io::Error)` turns
/// any body read error into the right DirectorError. Headers that are themselves invalid
/// (a Content-MD5 that is not base64, two checksums, ...) are refused here.
pub fn open<'r>(
    req: &'r mut Request<'_>,
    chain: Option<Box<dyn SignatureChain>>,
) -> Result<CheckedBody<'r>> {
    let announced = announce(req)?;
    let chunked = announced.framing != Framing::Plain;
    Ok(CheckedBody {
        sha256: announced.sha256.map(|_| Sha256::new()),
        summer: announced
            .checksum
            .as_ref()
            .map(|(a, _)| Checksummer::new(*a)),
        announced,
        inner: &mut *req.body,
        chain,
        buf: if chunked {
            vec![0; READ_BUFFER_BYTES]
        } else {
            Vec::new()
        },
        pos: 0,
        end: 0,
        inner_eof: false,
        phase: Phase::Header,
        chunk_index: 0,
        chunk_signature: None,
        chunk_hash: None,
        trailer_value: None,
        total: 0,
        verified: None,
        finished: false,
        failed: None,
    })
}

impl CheckedBody<'_> {
    /// Decoded length if known in advance (Content-Length or x-amz-decoded-content-length).
    pub fn len(&self) -> Option<u64> {
        self.announced.len
    }

    /// Whether the body is known in advance to be empty.
    pub fn is_empty(&self) -> bool {
        self.announced.len == Some(0)
    }

    /// The `Content-MD5` the client sent (16 bytes, checked for form by `open`). The body's
    /// MD5 is computed once, by the writer, which needs it for the ETag anyway; the writer
    /// compares with `check_content_md5` before anything is committed.
    pub fn content_md5(&self) -> Option<[u8; 16]> {
        let d = self.announced.md5.as_ref()?;
        <[u8; 16]>::try_from(d.as_slice()).ok()
    }

    /// After EOF: the verified checksum the client sent, e.g. ("crc32", base64 value).
    pub fn checksum(&self) -> Option<(String, String)> {
        self.verified.clone()
    }

    /// The algorithm of the checksum the headers announce (a header or a trailer), known
    /// before a byte is read.
    pub fn checksum_algorithm(&self) -> Option<Algorithm> {
        self.announced.checksum.as_ref().map(|(a, _)| *a)
    }

    /// One read of the underlying body, retrying on `Interrupted`.
    fn read_inner(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(out) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    /// Makes buffered bytes available; false at the end of the underlying body.
    fn fill(&mut self) -> io::Result<bool> {
        if self.pos < self.end {
            return Ok(true);
        }
        if self.inner_eof {
            return Ok(false);
        }
        let mut buf = std::mem::take(&mut self.buf);
        let r = self.read_inner(&mut buf);
        self.buf = buf;
        let n = r?;
        self.pos = 0;
        self.end = n;
        self.inner_eof = n == 0;
        Ok(n > 0)
    }

    /// The next line without its `\r\n` (a bare `\n` is accepted too); None if the body
    /// ends before the line starts.
    fn read_line(&mut self) -> io::Result<Option<String>> {
        let mut line = Vec::new();
        loop {
            if !self.fill()? {
                if line.is_empty() {
                    return Ok(None);
                }
                return Err(incomplete(format!(
                    "the body ends inside a line of its aws-chunked framing (after {} payload bytes)",
                    self.total
                )));
            }
            let avail = &self.buf[self.pos..self.end];
            let newline = avail.iter().position(|&c| c == b'\n');
            let take = newline.unwrap_or(avail.len());
            if line.len() + take > LINE_BYTES_MAX {
                return Err(malformed(format!(
                    "an aws-chunked header or trailer line is longer than {LINE_BYTES_MAX} bytes"
                )));
            }
            line.extend_from_slice(&avail[..take]);
            self.pos += take;
            if newline.is_some() {
                self.pos += 1;
                break;
            }
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        String::from_utf8(line)
            .map(Some)
            .map_err(|_| malformed("an aws-chunked header or trailer line is not text"))
    }

    /// Decodes aws-chunked framing into `out`; Ok(0) once the closing line has been read.
    fn read_chunked(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.phase {
                Phase::Header => self.chunk_header()?,
                Phase::Data(left) => return self.chunk_data(out, left),
                Phase::DataEnd => {
                    match self.read_line()? {
                        Some(l) if l.is_empty() => {}
                        Some(_) => {
                            return Err(malformed(format!(
                                "chunk {} holds more bytes than its size line says",
                                self.chunk_index
                            )));
                        }
                        None => {
                            return Err(incomplete(format!(
                                "the body ends after the data of chunk {} (its \\r\\n and the last chunk are missing)",
                                self.chunk_index
                            )));
                        }
                    }
                    self.check_chunk_signature()?;
                    self.chunk_index += 1;
                    self.phase = Phase::Header;
                }
                Phase::Trailer => {
                    self.trailers()?;
                    self.phase = Phase::Done;
                }
                Phase::Done => return Ok(0),
            }
        }
    }

    fn chunk_header(&mut self) -> io::Result<()> {
        let Some(line) = self.read_line()? else {
            return Err(incomplete(format!(
                "the body ended after {} bytes, before its last (zero-size) aws-chunked chunk",
                self.total
            )));
        };
        let (size, signature) = parse_chunk_header(&line)
            .map_err(|m| malformed(format!("chunk {}: {m}", self.chunk_index)))?;
        if let Some(d) = self.announced.len {
            if self.total.saturating_add(size) > d {
                return Err(incomplete(format!(
                    "the chunks hold more than the {d} bytes x-amz-decoded-content-length announces"
                )));
            }
        }
        self.chunk_signature = signature;
        if size == 0 {
            self.check_chunk_signature()?;
            self.phase = Phase::Trailer;
        } else {
            self.chunk_hash = self.verifies_signatures().then(Sha256::new);
            self.phase = Phase::Data(size);
        }
        Ok(())
    }

    fn chunk_data(&mut self, out: &mut [u8], left: u64) -> io::Result<usize> {
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(out.len());
        let n = if self.pos < self.end {
            let n = want.min(self.end - self.pos);
            out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
            self.pos += n;
            n
        } else if self.inner_eof {
            0
        } else {
            self.read_inner(&mut out[..want])?
        };
        if n == 0 {
            return Err(incomplete(format!(
                "the body ends inside chunk {} ({left} of its bytes missing)",
                self.chunk_index
            )));
        }
        if let Some(h) = self.chunk_hash.as_mut() {
            h.update(&out[..n]);
        }
        let left = left - n as u64;
        self.phase = if left == 0 {
            Phase::DataEnd
        } else {
            Phase::Data(left)
        };
        Ok(n)
    }

    /// Chunk signatures are checked for a signed body when the auth module gave a chain.
    fn verifies_signatures(&self) -> bool {
        matches!(
            self.announced.framing,
            Framing::AwsChunked { signed: true, .. }
        ) && self.chain.is_some()
    }

    fn check_chunk_signature(&mut self) -> io::Result<()> {
        if !self.verifies_signatures() {
            return Ok(());
        }
        let hash = match self.chunk_hash.take() {
            Some(h) => to_hex(&h.finalize()),
            None => to_hex(&Sha256::digest(b"")),
        };
        let Some(chain) = self.chain.as_mut() else {
            return Ok(());
        };
        let expected = chain.chunk(&hash);
        match &self.chunk_signature {
            Some(sig) if same(sig, &expected) => Ok(()),
            Some(_) => Err(signature_error(format!(
                "the chunk-signature of chunk {} does not match its data",
                self.chunk_index
            ))),
            None => Err(signature_error(format!(
                "chunk {} of a signed streaming body carries no chunk-signature",
                self.chunk_index
            ))),
        }
    }

    /// After the zero-size chunk: the trailer lines up to the closing empty line. An
    /// empty line right after the last chunk is allowed before trailers (the AWS
    /// documentation's examples have one; the SDKs do not send it). The end of the body
    /// in place of the closing line is accepted: the payload is complete by then.
    fn trailers(&mut self) -> io::Result<()> {
        let trailer_form = matches!(
            self.announced.framing,
            Framing::AwsChunked {
                trailer_form: true,
                ..
            }
        );
        let mut lines: Vec<String> = Vec::new();
        let mut blank_allowed = trailer_form;
        loop {
            match self.read_line()? {
                None => break,
                Some(l) if l.is_empty() => {
                    if lines.is_empty() && blank_allowed {
                        blank_allowed = false;
                        continue;
                    }
                    break;
                }
                Some(l) => {
                    if lines.len() == TRAILER_LINES_MAX {
                        return Err(trailer_error(format!(
                            "more than {TRAILER_LINES_MAX} trailer lines"
                        )));
                    }
                    lines.push(l);
                }
            }
        }
        if self.fill()? {
            return Err(malformed(
                "bytes follow the end of the aws-chunked body (the closing empty line)",
            ));
        }
        self.parse_trailers(&lines)
    }

    fn parse_trailers(&mut self, lines: &[String]) -> io::Result<()> {
        let expected = self.announced.trailer_expected();
        let mut signed = String::new();
        let mut signature = None;
        for l in lines {
            let Some((name, value)) = l.split_once(':') else {
                return Err(trailer_error(format!(
                    "the trailer line {l:?} is not name:value"
                )));
            };
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            if name == "x-amz-trailer-signature" {
                signature = Some(value.to_string());
                continue;
            }
            let alg = Algorithm::from_header(&name).filter(|a| Some(*a) == expected);
            let Some(alg) = alg else {
                return Err(trailer_error(format!(
                    "the trailer {name} was not announced in x-amz-trailer"
                )));
            };
            if self.trailer_value.is_some() {
                return Err(trailer_error(format!("the trailer {name} comes twice")));
            }
            match base64_decode(value) {
                Some(d) if d.len() == alg.digest_len() => self.trailer_value = Some(d),
                _ => {
                    return Err(refuse(
                        400,
                        "InvalidRequest",
                        format!("Value for {name} trailing header is invalid."),
                    ));
                }
            }
            signed.push_str(&format!("{name}:{value}\n"));
        }
        if let (Some(alg), None) = (expected, &self.trailer_value) {
            return Err(trailer_error(format!(
                "x-amz-trailer announces {} but the body ends without it",
                alg.header()
            )));
        }
        let signed_trailer = matches!(
            self.announced.framing,
            Framing::AwsChunked {
                signed: true,
                trailer_form: true
            }
        );
        if let (true, Some(chain)) = (signed_trailer, self.chain.as_mut()) {
            let want = chain.trailer(&to_hex(&Sha256::digest(signed.as_bytes())));
            match signature {
                Some(s) if same(&s, &want) => {}
                Some(_) => {
                    return Err(signature_error(
                        "the x-amz-trailer-signature does not match the trailer",
                    ));
                }
                None => {
                    return Err(signature_error(
                        "a signed trailer carries no x-amz-trailer-signature",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The checks at the end of the payload, in order: length, SHA-256, MD5, checksum.
    fn finish(&mut self) -> io::Result<()> {
        if let Some(d) = self.announced.len {
            if self.total != d {
                return Err(incomplete(format!(
                    "the body ended after {} of {d} bytes; nothing was stored",
                    self.total
                )));
            }
        }
        if let (Some(want), Some(h)) = (self.announced.sha256, self.sha256.take()) {
            if h.finalize().as_slice() != want {
                return Err(refuse(
                    400,
                    "XAmzContentSHA256Mismatch",
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                ));
            }
        }
        if let Some(summer) = self.summer.take() {
            let alg = summer.algorithm();
            let got = summer.finish();
            let want = match &self.announced.checksum {
                Some((_, Some(v))) => Some(v),
                _ => self.trailer_value.as_ref(),
            };
            if want != Some(&got) {
                return Err(refuse(
                    400,
                    "BadDigest",
                    format!(
                        "The {} you specified did not match the calculated checksum.",
                        alg.name().to_ascii_uppercase()
                    ),
                ));
            }
            self.verified = Some((alg.name().to_string(), base64_encode(&got)));
        }
        Ok(())
    }
}

impl Read for CheckedBody<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = &self.failed {
            return Err(e.clone().into_io());
        }
        if self.finished || out.is_empty() {
            return Ok(0);
        }
        let r = match self.announced.framing {
            Framing::Plain => self.read_inner(out),
            Framing::AwsChunked { .. } => self.read_chunked(out),
        };
        let r = match r {
            Ok(0) => self.finish().map(|()| {
                self.finished = true;
                0
            }),
            Ok(n) => {
                let data = &out[..n];
                self.total += n as u64;
                if let Some(h) = self.sha256.as_mut() {
                    h.update(data);
                }
                if let Some(c) = self.summer.as_mut() {
                    c.update(data);
                }
                Ok(n)
            }
            Err(e) => Err(e),
        };
        if let Err(e) = &r {
            if let Some(b) = e.get_ref().and_then(|i| i.downcast_ref::<BodyCheckError>()) {
                self.failed = Some(b.clone());
            }
        }
        r
    }
}

/// `<size hex>[;name=value]...`: the size and the chunk-signature extension, if any.
fn parse_chunk_header(line: &str) -> std::result::Result<(u64, Option<String>), String> {
    let (size, ext) = line.split_once(';').unwrap_or((line, ""));
    let size = size.trim();
    if size.is_empty() || size.len() > 16 || !size.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "the size {size:?} is not a hexadecimal number (line {line:?})"
        ));
    }
    let size = u64::from_str_radix(size, 16).map_err(|e| format!("bad size {size:?}: {e}"))?;
    let signature = ext
        .split(';')
        .find_map(|e| e.trim().strip_prefix("chunk-signature="))
        .map(|s| s.trim().to_string());
    Ok((size, signature))
}

/// Compares two signatures without stopping at the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Reads a small body (an XML or JSON document, or a body whose hash a signature may
/// cover) into memory: at most `max` bytes; a longer one is refused with `too_long(max)`,
/// never cut silently. The one bounded-body reader of the director.
pub fn read_small(
    req: &mut Request<'_>,
    max: u64,
    too_long: fn(u64) -> DirectorError,
) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    (&mut req.body)
        .take(max.saturating_add(1))
        .read_to_end(&mut body)
        .map_err(|e| DirectorError::BodyRead(e.to_string()))?;
    if body.len() as u64 > max {
        return Err(too_long(max));
    }
    Ok(body)
}

#[cfg(test)]
mod tests;
