output "domain_name" {
  description = "Name of the OpenSearch Service domain (OCTOSCOPE_SEARCH_DOMAIN: the indexer and the batch job resolve its endpoint with DescribeDomain)."
  value       = aws_opensearch_domain.this.domain_name
}

output "endpoint" {
  description = "The domain's HTTPS endpoint (https://search-...es.amazonaws.com; OCTOSCOPE_SEARCH_ENDPOINT of the api and integrity-check, built without the resolver)."
  value       = "https://${aws_opensearch_domain.this.endpoint}"
}

output "domain_arn" {
  description = "ARN of the domain (IAM resources: the ARN for control-plane actions, <arn>/<index> and <arn>/<index>/* for HTTP requests)."
  value       = aws_opensearch_domain.this.arn
}

output "log_group_names" {
  description = "The domain's CloudWatch log groups, by log type."
  value       = { for k, g in aws_cloudwatch_log_group.this : k => g.name }
}
