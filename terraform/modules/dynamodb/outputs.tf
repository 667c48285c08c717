output "table_name" {
  description = "Name of the table."
  value       = aws_dynamodb_table.this.name
}

output "table_arn" {
  description = "ARN of the table."
  value       = aws_dynamodb_table.this.arn
}

output "index_arns" {
  description = "ARNs covering the table's indexes (table ARN + /index/*), for Query on a GSI."
  value       = ["${aws_dynamodb_table.this.arn}/index/*"]
}

output "stream_arn" {
  description = "ARN of the table's stream (new and old images)."
  value       = aws_dynamodb_table.this.stream_arn
}
