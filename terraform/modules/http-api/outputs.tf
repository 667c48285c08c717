output "api_id" {
  description = "ID of the HTTP API."
  value       = aws_apigatewayv2_api.this.id
}

output "api_endpoint" {
  description = "Base URL of the HTTP API (https://<id>.execute-api.<region>.amazonaws.com)."
  value       = aws_apigatewayv2_api.this.api_endpoint
}

output "webhook_url" {
  description = "The URL to register as GitHub's webhook payload URL."
  value       = "${aws_apigatewayv2_api.this.api_endpoint}/webhook"
}

output "api_url" {
  description = "Base URL of the JSON API."
  value       = "${aws_apigatewayv2_api.this.api_endpoint}/api"
}

output "access_log_group_name" {
  description = "CloudWatch log group of the access logs."
  value       = aws_cloudwatch_log_group.access.name
}
