# Everything: a GitHub App, tracked organisations and repositories, resync
# tasks in private subnets, tuned functions and throttling, long log
# retention, archive expiry, full-text search (an OpenSearch domain), optional
# JWT authentication and custom domain, and an alarm on the dead-letter queues.

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Environment = "production"
    }
  }
}

module "octoscope" {
  source = "../.."

  name_prefix     = var.name_prefix
  batch_image_tag = var.batch_image_tag
  lambda_zip_dir  = var.lambda_zip_dir

  github = {
    app_id                         = var.github_app.id
    app_installation_id            = var.github_app.installation_id
    app_private_key_parameter_name = var.github_app.private_key_parameter
    api_url                        = var.github_app.enterprise_server_api_url
  }
  tracked_orgs  = var.tracked_orgs
  tracked_repos = var.tracked_repos

  api_jwt_authorizer = var.api_jwt_authorizer
  api_throttling = {
    burst_limit = 500
    rate_limit  = 200
  }

  functions = {
    webhook         = { memory_size = 256, timeout = 10, reserved_concurrent_executions = 50 }
    api             = { memory_size = 1024, timeout = 15, reserved_concurrent_executions = 20 }
    integrity_check = { memory_size = 512, timeout = 600, reserved_concurrent_executions = 1 }
    dispatcher      = { memory_size = 256, timeout = 60, reserved_concurrent_executions = 5 }
  }
  dispatcher_max_concurrency = 5
  integrity_check_schedule   = "rate(15 minutes)"
  tracing_enabled            = true
  log_level                  = "info,octoscope=debug"
  log_retention_days         = 90

  batch_network = {
    vpc_id           = var.vpc_id
    subnet_ids       = var.private_subnet_ids
    assign_public_ip = false
  }
  batch_task = {
    cpu    = 1024
    memory = 2048
  }

  # Full-text search: an OpenSearch Service domain, billed by the hour
  # (t3.medium.search with 20 GB gp3: about $55.70 a month at us-east-1 list
  # prices), and the indexer function on the table's stream.
  enable_search = true
  search = {
    instance_type = "t3.medium.search"
    volume_size   = 20
  }

  archive_expiration_days = 1096
  deletion_protection     = var.deletion_protection

  dashboard = {
    price_class         = "PriceClass_100"
    aliases             = var.dashboard_domain == null ? [] : [var.dashboard_domain.name]
    acm_certificate_arn = var.dashboard_domain == null ? null : var.dashboard_domain.acm_certificate_arn
  }

  tags = {
    Team = "platform"
  }
}

# Messages in a dead-letter queue mean a resync or a scheduled check failed
# repeatedly: tell someone.
resource "aws_sns_topic" "alarms" {
  count             = var.alarm_email == null ? 0 : 1
  name              = "${var.name_prefix}-alarms"
  kms_master_key_id = module.octoscope.data.kms_key_arn
}

resource "aws_sns_topic_subscription" "email" {
  count     = var.alarm_email == null ? 0 : 1
  topic_arn = aws_sns_topic.alarms[0].arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

resource "aws_cloudwatch_metric_alarm" "dlq" {
  for_each = var.alarm_email == null ? {} : {
    gaps     = module.octoscope.data.gap_dlq_url
    schedule = module.octoscope.data.schedule_dlq_url
  }

  alarm_name          = "${var.name_prefix}-${each.key}-dlq-not-empty"
  alarm_description   = "Messages in ${each.value}: inspect them, fix the cause, then redrive."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = element(split("/", each.value), 4) }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms[0].arn]
}

# Besides the outputs every example has (outputs.tf, a link to examples/minimal/outputs.tf).
output "functions" {
  description = "Name, role and log group of each function."
  value       = module.octoscope.functions
}

output "search" {
  description = "The search domain, its endpoint, index, log groups and the indexer's failed-batches queue."
  value       = module.octoscope.search
}
