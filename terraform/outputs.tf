output "webhook" {
  description = "What to enter on GitHub (Settings -> Webhooks): the payload URL, the content type, and the SSM parameter holding the secret (read it with `aws ssm get-parameter --with-decryption --name <secret_parameter_name>`)."
  value = {
    url                   = module.http_api.webhook_url
    content_type          = "application/json"
    secret_parameter_name = module.secrets.webhook_secret_parameter_name
  }
}

output "api" {
  description = "The JSON API: through the dashboard's origin (url) or API Gateway directly (direct_url); bearer tokens are in tokens_parameter_name (null with the JWT authorizer)."
  value = {
    url                   = module.dashboard.api_url
    direct_url            = module.http_api.api_url
    tokens_parameter_name = module.secrets.api_tokens_parameter_name
    access_log_group      = module.http_api.access_log_group_name
  }
}

output "dashboard" {
  description = "The dashboard: its URL, bucket, CloudFront distribution and how many files were uploaded."
  value = {
    url             = module.dashboard.url
    bucket          = module.dashboard.bucket_name
    distribution_id = module.dashboard.distribution_id
    file_count      = module.dashboard.file_count
  }
}

output "functions" {
  description = "The Lambda functions: name, role and log group of each."
  value = {
    for k, m in module.function : k => {
      name      = m.function_name
      role_arn  = m.role_arn
      log_group = m.log_group_name
    }
  }
}

output "batch" {
  description = "The resync job: ECR repository to push batch-job images to, cluster, task definition family and log group."
  value = {
    repository_url         = module.batch.repository_url
    cluster                = module.batch.cluster_name
    task_definition_family = module.batch.task_definition_family
    log_group              = module.batch.log_group_name
  }
}

output "data" {
  description = "Where the data lives: table, raw archive bucket and stream, gap queue and dead-letter queues, and the KMS key."
  value = {
    table_name       = module.table.table_name
    archive_bucket   = module.archive.bucket_name
    archive_stream   = module.archive.stream_name
    archive_prefix   = module.archive.prefix
    gap_queue_url    = module.gap_queue.queue_url
    gap_dlq_url      = module.gap_queue.dlq_url
    schedule_dlq_url = module.integrity_schedule.dlq_url
    settle_dlq_url   = module.rollup_schedule.dlq_url
    kms_key_arn      = local.kms_key_arn
  }
}

output "search" {
  description = "Full-text search (null without enable_search): the OpenSearch Service domain, its endpoint and ARN, the index, the domain's log groups, and the queue recording stream batches the indexer could not index."
  value = var.enable_search ? {
    domain_name           = module.search[0].domain_name
    endpoint              = module.search[0].endpoint
    domain_arn            = module.search[0].domain_arn
    index                 = local.search_index
    log_groups            = module.search[0].log_group_names
    failed_batches_queue  = aws_sqs_queue.indexer_failures[0].url
    indexer_function_name = module.function["indexer"].function_name
  } : null
}

output "notifications" {
  description = "Notifications (notify.tf): the queue ledger-stream forwards new notifications to, its dead-letter queue (the messages of notifications never delivered), and the notifier function that sends them."
  value = {
    queue_url          = module.notify_queue.queue_url
    dlq_url            = module.notify_queue.dlq_url
    function_name      = module.function["notifier"].function_name
    function_log_group = module.function["notifier"].log_group_name
  }
}
