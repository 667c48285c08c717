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
/// S3 PUT, per request ($0.005 per 1,000).
pub const S3_PUT: f64 = 0.005 / 1000.0;
/// Archive writes per delivery today: one S3 PutObject each.
pub const ARCHIVE_PUTS_PER_DELIVERY: f64 = 1.0;

/// The raw archive's cost per delivery: the one input the archive's design
/// sets (S3 today: one PUT per delivery).
pub fn archive_cost_per_delivery() -> f64 {
    ARCHIVE_PUTS_PER_DELIVERY * S3_PUT
}

/// One line of the cost table: what and dollars per million deliveries.
#[derive(Debug, Clone, PartialEq)]
pub struct CostLine {
    pub what: &'static str,
    pub per_million: f64,
}

/// The cost per million deliveries of a mix averaging `wru` and `rru` DynamoDB
/// request units a delivery: DynamoDB, API Gateway, Lambda, the archive, total.
pub fn per_million_deliveries(wru: f64, rru: f64) -> Vec<CostLine> {
    let lines = vec![
        CostLine { what: "DynamoDB", per_million: 1e6 * (wru * DYNAMODB_WRU + rru * DYNAMODB_RRU) },
        CostLine { what: "API Gateway HTTP API", per_million: 1e6 * HTTP_API_REQUEST },
        CostLine {
            what: "Lambda (requests + duration)",
            per_million: 1e6 * (LAMBDA_REQUEST + WEBHOOK_BILLED_SECONDS * WEBHOOK_MEMORY_GB * LAMBDA_GB_SECOND),
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
        let lines = per_million_deliveries(4.0, 0.0);
        assert!((lines[0].per_million - 2.5).abs() < 1e-9);
        assert!((lines[3].per_million - 5.0).abs() < 1e-9, "one S3 PUT a delivery");
        assert_eq!(lines.last().map(|l| l.what), Some("total"));
    }
}
