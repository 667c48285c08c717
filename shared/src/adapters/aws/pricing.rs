//! What one webhook delivery costs in AWS mode, per million deliveries: the
//! list prices `make bench-cost` multiplies its measured request units by
//! (us-east-1, on-demand, arm64; `shared/docs/dynamodb.md`, "Cost").

/// DynamoDB on-demand, per write request unit (since 1 November 2024: $0.625 per million).
pub const DYNAMODB_WRU: f64 = 0.625 / 1e6;
/// DynamoDB on-demand, per read request unit ($0.125 per million).
pub const DYNAMODB_RRU: f64 = 0.125 / 1e6;
/// API Gateway HTTP API, per request (first 300 million a month).
pub const HTTP_API_REQUEST: f64 = 1.00 / 1e6;
/// Lambda, per request.
pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
/// Lambda arm64, per GB-second.
pub const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
/// The webhook function's memory (Terraform `functions.webhook.memory_size`).
pub const WEBHOOK_MEMORY_GB: f64 = 256.0 / 1024.0;
/// Billed duration of one warm webhook invocation: an assumption (about ten
/// DynamoDB calls and one archive write at single-digit milliseconds each),
/// not a measurement; moto's latency says nothing about AWS's.
pub const WEBHOOK_BILLED_SECONDS: f64 = 0.060;
/// The ledger-stream function's memory (Terraform `functions.ledger_stream.memory_size`).
pub const LEDGER_STREAM_MEMORY_GB: f64 = 128.0 / 1024.0;
/// Billed duration of one ledger-stream invocation: an assumption (one
/// BatchWriteItem of page items and one UpdateItem), not a measurement.
pub const LEDGER_STREAM_BILLED_SECONDS: f64 = 0.050;
/// S3 PUT, per request ($0.005 per 1,000).
pub const S3_PUT: f64 = 0.005 / 1000.0;
/// Amazon Data Firehose ingestion, per GB ($0.029), billed per record in
/// 5 KB steps.
pub const FIREHOSE_GB: f64 = 0.029;
/// The billed size of one archive record: the deflated body of GitHub's
/// example payloads averages 2.5 KB (largest 4.4 KB), one 5 KB step
/// (`shared/docs/aws-adapters.md`, "Cost arithmetic").
pub const ARCHIVE_RECORD_BILLED_KB: f64 = 5.0;
/// S3 objects the delivery stream writes a month at most: one per 300 s
/// buffer (Terraform `buffering_interval`), 8,640 in 30 days; at a million
/// deliveries a month that is 0.0086 PUTs a delivery.
pub const ARCHIVE_OBJECTS_PER_MONTH: f64 = 30.0 * 24.0 * 3600.0 / 300.0;

/// The raw archive's cost per delivery at `per_month` deliveries a month:
/// one Firehose record (5 KB billed) and the delivery stream's share of its
/// batched S3 PUTs.
pub fn archive_cost_per_delivery_at(per_month: f64) -> f64 {
    ARCHIVE_RECORD_BILLED_KB / 1e6 * FIREHOSE_GB + ARCHIVE_OBJECTS_PER_MONTH / per_month.max(1.0) * S3_PUT
}

/// The raw archive's cost per delivery at a million deliveries a month.
pub fn archive_cost_per_delivery() -> f64 {
    archive_cost_per_delivery_at(1e6)
}

/// One line of the cost table: what and dollars per million deliveries.
#[derive(Debug, Clone, PartialEq)]
pub struct CostLine {
    pub what: &'static str,
    pub per_million: f64,
}

/// The cost per million deliveries of a mix averaging `wru` and `rru` DynamoDB
/// request units a delivery (the webhook's and the ledger stream's), the
/// stream's batches holding `stream_batch` deliveries on average: DynamoDB,
/// API Gateway, Lambda (both functions), the archive, total.
pub fn per_million_deliveries(wru: f64, rru: f64, stream_batch: f64) -> Vec<CostLine> {
    let stream = (LAMBDA_REQUEST + LEDGER_STREAM_BILLED_SECONDS * LEDGER_STREAM_MEMORY_GB * LAMBDA_GB_SECOND)
        / stream_batch.max(1.0);
    let lines = vec![
        CostLine { what: "DynamoDB", per_million: 1e6 * (wru * DYNAMODB_WRU + rru * DYNAMODB_RRU) },
        CostLine { what: "API Gateway HTTP API", per_million: 1e6 * HTTP_API_REQUEST },
        CostLine {
            what: "Lambda (requests + duration)",
            per_million: 1e6
                * (LAMBDA_REQUEST + WEBHOOK_BILLED_SECONDS * WEBHOOK_MEMORY_GB * LAMBDA_GB_SECOND + stream),
        },
        CostLine { what: "archive", per_million: 1e6 * archive_cost_per_delivery() },
    ];
    let total = lines.iter().map(|l| l.per_million).sum();
    lines.into_iter().chain([CostLine { what: "total", per_million: total }]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_write_units_a_delivery_cost_two_and_a_half_dollars_a_million() {
        let lines = per_million_deliveries(4.0, 0.0, 100.0);
        assert!((lines[0].per_million - 2.5).abs() < 1e-9);
        // The webhook's invocations and 10,000 ledger-stream invocations of 100 deliveries each.
        let webhook = 0.2 + 0.06 * 0.25 * 13.3334;
        let stream = (0.2 + 0.05 * 0.125 * 13.3334) / 100.0;
        assert!((lines[2].per_million - (webhook + stream)).abs() < 1e-3, "{:?}", lines[2]);
        // 5 GB of Firehose records ($0.145) and 8,640 batched PUTs ($0.0432).
        assert!((lines[3].per_million - 0.1882).abs() < 1e-3, "{:?}", lines[3]);
        assert_eq!(lines.last().map(|l| l.what), Some("total"));
    }
}
