output "url" {
  description = "URL of the dashboard."
  value       = length(var.distribution.aliases) > 0 ? "https://${var.distribution.aliases[0]}/" : "https://${aws_cloudfront_distribution.this.domain_name}/"
}

output "api_url" {
  description = "The API through the dashboard's origin (same origin, no CORS)."
  value       = length(var.distribution.aliases) > 0 ? "https://${var.distribution.aliases[0]}/api" : "https://${aws_cloudfront_distribution.this.domain_name}/api"
}

output "bucket_name" {
  description = "Name of the dashboard bucket."
  value       = aws_s3_bucket.this.id
}

output "distribution_id" {
  description = "ID of the CloudFront distribution."
  value       = aws_cloudfront_distribution.this.id
}

output "file_count" {
  description = "Number of dashboard files uploaded (0 when frontend/dist was not built)."
  value       = length(local.files)
}
