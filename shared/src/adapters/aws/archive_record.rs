//! The batched raw archive's record format: one JSON line per delivery (or
//! per part of a very large one), as the webhook hands it to Amazon Data
//! Firehose and as Firehose concatenates it into S3 objects.
//!
//! ```json
//! {"v":1,"hook":"123","delivery":"72d3…","event":"pull_request",
//!  "received_at":"2026-12-02T12:00:00.123456Z","content_type":"application/json",
//!  "enc":"deflate","body":"<base64 of the raw-deflated body>"}
//! ```
//!
//! The body is deflated here (pure Rust, miniz_oxide) because Firehose bills
//! each record by its size rounded up to 5 KB: a compressed webhook body is
//! one 5 KB step, an uncompressed one three to six (docs/aws-adapters.md).
//! A record is at most [`MAX_RECORD_BYTES`] (Firehose's limit is 1,000 KiB);
//! a body whose compressed form does not fit is split into parts, `part`
//! 0..`parts`, each a record of its own carrying the same delivery, event and
//! time; reading puts them back together. An object is the records as
//! Firehose wrote them, gzip-compressed or not (Firehose's own compression).

use std::io::{Read as _, Write as _};

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use crate::domain::*;

/// Firehose's record limit, 1,000 KiB, less a margin.
pub const MAX_RECORD_BYTES: usize = 1_000 * 1024 - 4 * 1024;
/// Compressed body bytes per part: base64 makes 4/3 of it, the rest of the
/// line (ids, event, time, content type) is at most a few hundred bytes.
pub const PART_BODY_BYTES: usize = 720 * 1024;
/// The largest body a record set may inflate to (Lambda's request limit is 6 MB).
const MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;
const VERSION: u8 = 1;
const DEFLATE: &str = "deflate";

/// One line of a batched archive object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveRecord {
    pub v: u8,
    pub hook: String,
    pub delivery: String,
    pub event: String,
    /// RFC 3339, UTC, at the clock's full precision.
    pub received_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    pub enc: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub part: u32,
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub parts: u32,
    /// base64 of this part of the compressed body.
    pub body: String,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
fn is_one(n: &u32) -> bool {
    *n == 1
}
fn one() -> u32 {
    1
}

impl ArchiveRecord {
    /// Which delivery (and which arrival of it) this record belongs to.
    pub fn identity(&self) -> (&str, &str, &str) {
        (&self.hook, &self.delivery, &self.received_at)
    }
}

/// A delivery as the lines to put, each ending in `\n` (Firehose adds no
/// separator), in part order.
pub fn encode(d: &RawDelivery) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&d.body).and_then(|_| z.flush()).context("compressing the body")?;
    let compressed = z.finish().context("compressing the body")?;
    let chunks: Vec<&[u8]> =
        if compressed.is_empty() { vec![&compressed[..]] } else { compressed.chunks(PART_BODY_BYTES).collect() };
    let parts = u32::try_from(chunks.len()).context("too many parts")?;
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            let record = ArchiveRecord {
                v: VERSION,
                hook: d.key.hook_id.to_string(),
                delivery: d.key.delivery_id.to_string(),
                event: d.event.as_str().to_owned(),
                received_at: d.received_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                content_type: d.content_type.clone(),
                enc: DEFLATE.to_owned(),
                part: i as u32,
                parts,
                body: BASE64.encode(chunk),
            };
            let mut line = serde_json::to_vec(&record).context("encoding an archive record")?;
            line.push(b'\n');
            anyhow::ensure!(line.len() <= MAX_RECORD_BYTES, "archive record of {} bytes is over the limit", line.len());
            Ok(line)
        })
        .collect()
}

/// The records of one object (gzip-compressed or plain), in order; `object`
/// names it in errors.
pub fn decode_object(object: &str, bytes: &[u8]) -> anyhow::Result<Vec<ArchiveRecord>> {
    let text = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .with_context(|| format!("decompressing archive object {object}"))?;
        out
    } else {
        bytes.to_vec()
    };
    text.split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
        .map(|(n, line)| {
            serde_json::from_slice(line).with_context(|| format!("archive object {object}, line {}", n + 1))
        })
        .collect()
}

/// The delivery from all its records (one, or every part in any order).
pub fn assemble(mut records: Vec<ArchiveRecord>) -> anyhow::Result<RawDelivery> {
    records.sort_by_key(|r| r.part);
    let first = records.first().context("no archive record")?.clone();
    let parts = first.parts as usize;
    anyhow::ensure!(first.v == VERSION, "archive record version {} is not {VERSION}", first.v);
    anyhow::ensure!(first.enc == DEFLATE, "archive record encoding {:?} is not {DEFLATE}", first.enc);
    anyhow::ensure!(
        records.len() == parts
            && records.iter().enumerate().all(|(i, r)| r.part as usize == i && r.parts == first.parts),
        "delivery {}: {} of {parts} parts",
        first.delivery,
        records.len()
    );
    let mut compressed = Vec::new();
    for r in &records {
        compressed.extend(BASE64.decode(&r.body).with_context(|| format!("delivery {}: body", first.delivery))?);
    }
    let mut body = Vec::new();
    flate2::read::DeflateDecoder::new(&compressed[..])
        .take(MAX_BODY_BYTES)
        .read_to_end(&mut body)
        .with_context(|| format!("delivery {}: inflating the body", first.delivery))?;
    Ok(RawDelivery {
        key: DeliveryKey { hook_id: HookId::parse(&first.hook)?, delivery_id: DeliveryId::parse(&first.delivery)? },
        event: EventName::parse(&first.event)?,
        received_at: chrono::DateTime::parse_from_rfc3339(&first.received_at)
            .with_context(|| format!("delivery {}: received_at {:?}", first.delivery, first.received_at))?
            .with_timezone(&chrono::Utc),
        content_type: first.content_type,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(body: Vec<u8>) -> RawDelivery {
        RawDelivery {
            key: DeliveryKey {
                hook_id: HookId::parse("123").unwrap(),
                delivery_id: DeliveryId::parse("72d3162e-cc78-11e3-81ab-4c9367dc0958").unwrap(),
            },
            event: EventName::parse("pull_request").unwrap(),
            received_at: chrono::DateTime::parse_from_rfc3339("2026-12-02T12:00:00.123456Z").unwrap().into(),
            content_type: Some("application/json".to_owned()),
            body,
        }
    }

    #[test]
    fn a_delivery_is_one_line_and_reads_back_unchanged() {
        let d = delivery(br#"{"action":"opened","number":2}"#.to_vec());
        let lines = encode(&d).unwrap();
        assert_eq!(lines.len(), 1);
        assert!(lines[0].ends_with(b"\n") && !lines[0][..lines[0].len() - 1].contains(&b'\n'));
        let records = decode_object("o", &lines.concat()).unwrap();
        assert_eq!(records[0].received_at, "2026-12-02T12:00:00.123456Z");
        assert_eq!(assemble(records).unwrap(), d);
    }

    #[test]
    fn an_incompressible_body_over_the_record_limit_is_split_and_joined_in_any_order() {
        // 2.5 MB of noise: deflate cannot shrink it, so it needs 4 parts
        let mut rng = fastrand::Rng::with_seed(7);
        let body: Vec<u8> = (0..2_500_000).map(|_| rng.u8(..)).collect();
        let d = delivery(body);
        let lines = encode(&d).unwrap();
        assert_eq!(lines.len(), 4);
        assert!(lines.iter().all(|l| l.len() <= MAX_RECORD_BYTES));
        let mut records = decode_object("o", &lines.concat()).unwrap();
        records.reverse();
        assert_eq!(assemble(records.clone()).unwrap(), d);
        // AND a missing part is an error, not a short body
        records.pop();
        assert!(assemble(records).is_err());
    }

    #[test]
    fn a_gzip_object_of_several_records_reads_as_the_plain_one() {
        let a = encode(&delivery(b"{}".to_vec())).unwrap().concat();
        let plain = [a.clone(), a].concat();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(decode_object("o.gz", &gz).unwrap(), decode_object("o", &plain).unwrap());
        assert_eq!(decode_object("o", &plain).unwrap().len(), 2);
        // AND a line that is not a record names the object and line
        let err = decode_object("obj", b"{}\n").unwrap_err();
        assert!(format!("{err:#}").contains("obj, line 1"), "{err:#}");
    }
}
