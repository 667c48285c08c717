output "bucket_name" {
  description = "Name of the archive bucket."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the archive bucket."
  value       = aws_s3_bucket.this.arn
}

output "stream_name" {
  description = "Name of the Firehose delivery stream the raw archive is written through."
  value       = aws_kinesis_firehose_delivery_stream.this.name
}

output "stream_arn" {
  description = "ARN of the Firehose delivery stream (the webhook's firehose:PutRecord resource)."
  value       = aws_kinesis_firehose_delivery_stream.this.arn
}

output "prefix" {
  description = "Key prefix of the batched objects in the bucket."
  value       = var.prefix
}
