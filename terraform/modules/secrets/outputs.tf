output "webhook_secret_parameter_name" {
  description = "Name of the webhook secret parameter (its value is never output)."
  value       = local.create_webhook_secret ? aws_ssm_parameter.generated["webhook_secret"].name : local.webhook_secret_name
}

output "webhook_secret_parameter_arn" {
  description = "ARN of the webhook secret parameter."
  value       = local.arn[local.webhook_secret_name]
}

output "api_tokens_parameter_name" {
  description = "Name of the API tokens parameter; null when the JWT authorizer authenticates."
  value       = local.create_api_tokens ? aws_ssm_parameter.generated["api_tokens"].name : local.api_tokens_name
}

output "api_tokens_parameter_arn" {
  description = "ARN of the API tokens parameter; null when the JWT authorizer authenticates."
  value       = local.api_tokens_name == null ? null : local.arn[local.api_tokens_name]
}

output "github_parameter_arns" {
  description = "ARNs of the GitHub credential parameters."
  value       = [for n in var.github_parameter_names : local.arn[n]]
}
