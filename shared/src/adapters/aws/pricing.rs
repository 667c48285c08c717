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
pub const WEBHOOK_MEMORY_MB: f64 = 160.0;
/// CPU time one warm webhook invocation uses: measured
/// (`functions/scripts/bench-init.py --warm 300`, 2026-12-07: 3.97–4.07 ms
/// on a 2-core x86_64 development machine, the `aws` profile's build of the
/// same code, GitHub's example payloads; Graviton's arm64 cores are of the
/// same order, not measured).
pub const WEBHOOK_CPU_SECONDS: f64 = 0.004;
/// Time one webhook invocation waits on DynamoDB and Firehose: an
/// assumption (about five DynamoDB calls in sequence at a few milliseconds
/// each inside a region, and one Firehose `PutRecord`), not a measurement;
/// moto's latency says nothing about AWS's.
pub const WEBHOOK_WAIT_SECONDS: f64 = 0.035;
/// Memory at which Lambda gives a function one whole vCPU; below it, a
/// share in proportion.
pub const LAMBDA_MB_PER_VCPU: f64 = 1769.0;

/// The billed duration of one warm webhook invocation at `memory_mb`: its
/// CPU time at Lambda's CPU share for that memory, plus its waits, rounded
/// up to the millisecond.
pub fn webhook_billed_seconds(memory_mb: f64) -> f64 {
    let share = (memory_mb / LAMBDA_MB_PER_VCPU).min(1.0);
    // (Less a hair first: 39 ms computed as 39.000000000000004 is billed as 39.)
    ((WEBHOOK_CPU_SECONDS / share + WEBHOOK_WAIT_SECONDS) * 1000.0 - 1e-6).ceil() / 1000.0
}

/// The webhook function's Lambda cost per delivery at `memory_mb`: the
/// request and the billed duration.
pub fn webhook_lambda_cost(memory_mb: f64) -> f64 {
    LAMBDA_REQUEST + webhook_billed_seconds(memory_mb) * memory_mb / 1024.0 * LAMBDA_GB_SECOND
}
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
            per_million: 1e6 * (webhook_lambda_cost(WEBHOOK_MEMORY_MB) + stream),
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
        // The webhook's invocations (4 ms of CPU at 160/1,769 of a vCPU, 44.2 ms, and 35 ms of
        // waits: 80 ms billed at 160 MB) and 10,000 ledger-stream invocations of 100 deliveries each.
        let webhook = 0.2 + 0.080 * (160.0 / 1024.0) * 13.3334;
        let stream = (0.2 + 0.05 * 0.125 * 13.3334) / 100.0;
        assert!((lines[2].per_million - (webhook + stream)).abs() < 1e-3, "{:?}", lines[2]);
        // 5 GB of Firehose records ($0.145) and 8,640 batched PUTs ($0.0432).
        assert!((lines[3].per_million - 0.1882).abs() < 1e-3, "{:?}", lines[3]);
        assert_eq!(lines.last().map(|l| l.what), Some("total"));
    }

    #[test]
    fn the_webhook_s_duration_grows_as_its_cpu_share_shrinks_and_its_cost_with_its_memory() {
        // 4 ms of CPU: a whole vCPU adds 4 ms to the waits, 128 MB 55.3 ms.
        assert!((webhook_billed_seconds(1769.0) - 0.039).abs() < 1e-9);
        assert!((webhook_billed_seconds(128.0) - 0.091).abs() < 1e-9);
        assert!((webhook_billed_seconds(256.0) - 0.063).abs() < 1e-9);
        let cost = |mb: f64| webhook_lambda_cost(mb) * 1e6;
        // Per million: 128 MB $0.352, 160 MB $0.367, 256 MB $0.410, 512 MB $0.528.
        assert!(cost(128.0) < cost(160.0) && cost(160.0) < cost(256.0) && cost(256.0) < cost(512.0));
        assert!((cost(160.0) - 0.3667).abs() < 1e-3, "{}", cost(160.0));
    }
}
