//! A strict PEM scanner (RFC 7468) that keeps every block's label.
//!
//! OpenSSL's own readers skip whatever they do not look for, so they cannot
//! say "this field holds a CERTIFICATE REQUEST"; this scanner can. It accepts:
//! - explanatory text *before* a block (RFC 7468 §2 permits it; `openssl x509
//!   -text` output and PKCS#12 "Bag Attributes" put it there); it is dropped,
//!   since every block is re-encoded from its parsed form;
//! - RFC 1421 headers (`Proc-Type`, `DEK-Info`) inside a block, reported so the
//!   caller can refuse legacy encrypted keys;
//! - CRLF line endings and indentation.
//!
//! It drops, reporting them (as the OpenShift router's reader skips them): a
//! block whose END line is missing, malformed or names another label.
//!
//! It refuses: text after the last block (trailing garbage usually means a
//! truncated or mis-pasted value), text without any block, malformed
//! boundary lines outside a block, and bodies that are not base64. An empty
//! body is a block with no bytes (the caller decides).

use std::fmt;

/// One decoded PEM block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Block {
    /// The label of the BEGIN/END lines, e.g. `CERTIFICATE`.
    pub label: String,
    /// RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`), in order.
    pub headers: Vec<(String, String)>,
    /// The decoded body.
    pub der: Vec<u8>,
    /// 1-based position of the block in the field.
    pub index: usize,
}

impl Block {
    /// A legacy (RFC 1421 style) encrypted block: `Proc-Type: 4,ENCRYPTED`.
    pub fn is_legacy_encrypted(&self) -> bool {
        self.headers.iter().any(|(name, value)| {
            name.eq_ignore_ascii_case("Proc-Type")
                && value.to_ascii_uppercase().contains("ENCRYPTED")
        })
    }
}

/// Why a field is not well-formed PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PemError {
    /// Non-blank text but no PEM block at all.
    NoBlock,
    /// Text after the last block.
    TrailingText { after_block: usize, line: usize },
    /// `-----BEGIN X-----` without `-----END X-----`.
    Unterminated { label: String, index: usize },
    /// `-----END Y-----` closing a `-----BEGIN X-----`.
    MismatchedEnd {
        label: String,
        end: String,
        index: usize,
    },
    /// An END line outside any block, or a line that looks like a boundary
    /// but is not one.
    MalformedBoundary { line: usize },
    /// A block body that is not base64 (or is empty).
    BadBody { label: String, index: usize },
}

impl fmt::Display for PemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PemError::NoBlock => f.write_str("not PEM: no -----BEGIN ...----- block found"),
            PemError::TrailingText { after_block, line } => write!(
                f,
                "unexpected text after the last PEM block (line {line}, after block {after_block}); \
                 the value looks truncated or has trailing garbage"
            ),
            PemError::Unterminated { label, index } => write!(
                f,
                "PEM block {index} ({label}) has no matching -----END {label}----- line"
            ),
            PemError::MismatchedEnd { label, end, index } => write!(
                f,
                "PEM block {index} begins as {label} but ends as {end}"
            ),
            PemError::MalformedBoundary { line } => {
                write!(
                    f,
                    "malformed PEM boundary line (line {line}); each -----BEGIN/END ...----- \
                     marker must be on a line of its own"
                )
            }
            PemError::BadBody { label, index } => {
                write!(f, "PEM block {index} ({label}) does not hold valid base64 data")
            }
        }
    }
}

/// A field split into blocks: the well-formed ones, and the ones dropped
/// because their END line is missing, malformed or names another label.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Scanned {
    pub blocks: Vec<Block>,
    /// [`PemError::Unterminated`] or [`PemError::MismatchedEnd`], in order.
    pub dropped: Vec<PemError>,
}

/// Split `text` into PEM blocks. Blank text gives no blocks.
///
/// A block without a proper END line (missing, malformed such as
/// `----END X-----`, or naming another label) is dropped, not fatal: the
/// OpenShift router's PEM reader skips such a block and goes on with the
/// next BEGIN line, so a Route it admits must not be refused here. The
/// caller reports each dropped block as a warning.
pub(crate) fn scan(text: &str) -> Result<Scanned, PemError> {
    struct Open {
        label: String,
        lines: Vec<String>,
        index: usize,
    }

    let mut scanned = Scanned::default();
    let mut open: Option<Open> = None;
    let mut begun = 0;
    // Line number of the first non-blank text line since the last block.
    let mut pending_text: Option<usize> = None;

    for (number, raw) in text.split('\n').enumerate() {
        let number = number + 1;
        let line = raw.trim();
        if let Some(current) = open.as_mut() {
            if let Some(end) = boundary(line, "END") {
                let Some(current) = open.take() else {
                    unreachable!("a block is open")
                };
                if end == current.label {
                    scanned.blocks.push(decode_block(
                        current.label,
                        &current.lines,
                        current.index,
                    )?);
                } else {
                    scanned.dropped.push(PemError::MismatchedEnd {
                        label: current.label,
                        end: end.to_string(),
                        index: current.index,
                    });
                }
                continue;
            }
            if !line.contains("-----") {
                current.lines.push(line.to_string());
                continue;
            }
            // A boundary-like line that does not close the block: the block
            // is dropped; a BEGIN line goes on to open the next one.
            let Some(current) = open.take() else {
                unreachable!("a block is open")
            };
            scanned.dropped.push(PemError::Unterminated {
                label: current.label,
                index: current.index,
            });
            if boundary(line, "BEGIN").is_none() {
                continue;
            }
        }
        if let Some(label) = boundary(line, "BEGIN") {
            begun += 1;
            open = Some(Open {
                label: label.to_string(),
                lines: Vec::new(),
                index: begun,
            });
            pending_text = None;
        } else if line.contains("-----") {
            return Err(PemError::MalformedBoundary { line: number });
        } else if !line.is_empty() && pending_text.is_none() {
            pending_text = Some(number);
        }
    }

    if let Some(current) = open {
        scanned.dropped.push(PemError::Unterminated {
            label: current.label,
            index: current.index,
        });
    }
    match (pending_text, begun) {
        (None, _) => Ok(scanned),
        (Some(_), 0) => Err(PemError::NoBlock),
        (Some(line), after_block) => Err(PemError::TrailingText { after_block, line }),
    }
}

/// `-----BEGIN LABEL-----` -> `LABEL` (for `kind` BEGIN or END).
fn boundary<'a>(line: &'a str, kind: &str) -> Option<&'a str> {
    let rest = line.strip_prefix("-----")?.strip_prefix(kind)?;
    let label = rest.strip_prefix(' ')?.strip_suffix("-----")?;
    let label_ok = !label.is_empty()
        && !label.starts_with(' ')
        && !label.ends_with(' ')
        && label
            .bytes()
            .all(|b| (b.is_ascii_graphic() && b != b'-') || b == b' ');
    label_ok.then_some(label)
}

fn decode_block(label: String, lines: &[String], index: usize) -> Result<Block, PemError> {
    let bad = || PemError::BadBody {
        label: label.clone(),
        index,
    };

    // RFC 1421 headers: `Name: value` lines up to the first blank line.
    let mut headers = Vec::new();
    let mut body_start = 0;
    if lines.first().is_some_and(|l| l.contains(':')) {
        let mut i = 0;
        while i < lines.len() && !lines[i].is_empty() {
            let (name, value) = lines[i].split_once(':').ok_or_else(bad)?;
            headers.push((name.trim().to_string(), value.trim().to_string()));
            i += 1;
        }
        body_start = i;
    }

    let body: String = lines[body_start..].concat();
    // An empty body decodes to no bytes; what that means (an empty EC
    // PARAMETERS block is dropped, an empty certificate is refused) is the
    // caller's to say.
    let der = base64_decode(&body).ok_or_else(bad)?;
    Ok(Block {
        label,
        headers,
        der,
        index,
    })
}

/// Strict standard base64 (with padding), no whitespace.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }

    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let chunks = bytes.len() / 4;
    for (n, chunk) in bytes.chunks(4).enumerate() {
        let last = n + 1 == chunks;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut acc = 0u32;
        for &c in &chunk[..4 - pad] {
            acc = (acc << 6) | value(c)?;
        }
        acc <<= 6 * pad as u32;
        let decoded = [(acc >> 16) as u8, (acc >> 8) as u8, acc as u8];
        out.extend_from_slice(&decoded[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        assert_eq!(base64_decode("").unwrap(), b"");
        assert_eq!(base64_decode("Zg==").unwrap(), b"f");
        assert_eq!(base64_decode("Zm8=").unwrap(), b"fo");
        assert_eq!(base64_decode("Zm9v").unwrap(), b"foo");
        assert_eq!(base64_decode("Zm9vYmFy").unwrap(), b"foobar");
        assert!(base64_decode("Zm9").is_none());
        assert!(base64_decode("Zg==Zm9v").is_none());
        assert!(base64_decode("Z===").is_none());
        assert!(base64_decode("Zm9v!A==").is_none());
    }

    #[test]
    fn scans_blocks_headers_and_text() {
        let text = "Bag Attributes\r\n  localKeyID: 01\r\n-----BEGIN A B-----\r\nZm9v\r\n-----END A B-----\r\n\r\n\
                    -----BEGIN C-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nZm9v\nYmFy\n-----END C-----\n";
        let blocks = scan(text).unwrap().blocks;
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].label, "A B");
        assert_eq!(blocks[0].der, b"foo");
        assert!(!blocks[0].is_legacy_encrypted());
        assert_eq!(blocks[1].label, "C");
        assert_eq!(blocks[1].der, b"foobar");
        assert_eq!(blocks[1].index, 2);
        assert!(blocks[1].is_legacy_encrypted());
    }

    #[test]
    fn refuses_malformed_input() {
        let cases: &[(&str, PemError)] = &[
            ("hello", PemError::NoBlock),
            (
                "-----BEGIN A-----\nZm9v\n-----END A-----\ngarbage\n",
                PemError::TrailingText {
                    after_block: 1,
                    line: 4,
                },
            ),
            (
                "----BEGIN A-----\nZm9v\n-----END A-----\n",
                PemError::MalformedBoundary { line: 1 },
            ),
            ("-----END A-----\n", PemError::MalformedBoundary { line: 1 }),
            (
                "-----BEGIN A-----\nZm9v!\n-----END A-----\n",
                PemError::BadBody {
                    label: "A".into(),
                    index: 1,
                },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(scan(text).unwrap_err(), *want, "input {text:?}");
        }
        assert_eq!(scan("  \n\t\n").unwrap(), Scanned::default());
    }

    #[test]
    fn drops_blocks_without_a_proper_end_line() {
        let unterminated = |label: &str, index| PemError::Unterminated {
            label: label.into(),
            index,
        };
        let cases: Vec<(&str, Vec<&str>, Vec<PemError>)> = vec![
            ("-----BEGIN A-----\nZm9v\n", vec![], vec![unterminated("A", 1)]),
            (
                "-----BEGIN A-----\nZm9v\n-----BEGIN B-----\nZm9v\n-----END B-----\n",
                vec!["B"],
                vec![unterminated("A", 1)],
            ),
            (
                // OpenShift's "bad trailer" case: four dashes.
                "-----BEGIN UNRECOGNIZED-----\n----END UNRECOGNIZED-----\n",
                vec![],
                vec![unterminated("UNRECOGNIZED", 1)],
            ),
            (
                "-----BEGIN A-----\nZm9v\n-----END B-----\n-----BEGIN C-----\nZm9v\n-----END C-----\n",
                vec!["C"],
                vec![PemError::MismatchedEnd {
                    label: "A".into(),
                    end: "B".into(),
                    index: 1,
                }],
            ),
        ];
        for (text, labels, dropped) in cases {
            let scanned = scan(text).unwrap();
            let got: Vec<&str> = scanned.blocks.iter().map(|b| b.label.as_str()).collect();
            assert_eq!(got, labels, "input {text:?}");
            assert_eq!(scanned.dropped, dropped, "input {text:?}");
        }
        let empty = scan("-----BEGIN EC PARAMETERS-----\n-----END EC PARAMETERS-----\n").unwrap();
        assert_eq!(empty.blocks.len(), 1);
        assert!(empty.blocks[0].der.is_empty());
        assert_eq!(
            scan("-----BEGIN B-----\nZm9v\n-----END B-----\n")
                .unwrap()
                .blocks[0]
                .index,
            1
        );
    }
}
