# The outputs every example has (examples/complete/outputs.tf is a link to this
# file).

output "webhook_url" {
  description = "Payload URL to register on GitHub."
  value       = module.octoscope.webhook.url
}

output "webhook_secret_parameter_name" {
  description = "SSM parameter holding the webhook secret."
  value       = module.octoscope.webhook.secret_parameter_name
}

output "api_url" {
  description = "The JSON API (same origin as the dashboard)."
  value       = module.octoscope.api.url
}

output "api_tokens_parameter_name" {
  description = "SSM parameter holding the API bearer token."
  value       = module.octoscope.api.tokens_parameter_name
}

output "dashboard_url" {
  description = "The dashboard."
  value       = module.octoscope.dashboard.url
}

output "batch" {
  description = "Where to push the batch-job image, and the cluster."
  value       = module.octoscope.batch
}

output "data" {
  description = "Table, buckets, queues and key."
  value       = module.octoscope.data
}
