# Octoscope on AWS: one `terraform apply` for the whole serverless stack.
#
#   GitHub ──POST /webhook──▶ HTTP API ──▶ webhook ──▶ DynamoDB + S3 archive
#   browser ──▶ CloudFront ──/──▶ S3 (dashboard)
#                          └─/api/*──▶ HTTP API ──▶ api ──▶ DynamoDB
#   Scheduler ──▶ integrity-check ──gaps──▶ SQS ──▶ dispatcher ──RunTask──▶ Fargate batch-job
#
# Each function's permissions are written below, next to the function, as the
# exact actions its code calls on the exact resources it touches;
# terraform/tests/agreement.py checks them (and the environment variables)
# against the Rust workspace.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region
  account_id = data.aws_caller_identity.current.account_id

  tags = merge({ Application = "octoscope", ManagedBy = "terraform" }, var.tags)

  lambda_zip_dir     = coalesce(var.lambda_zip_dir, "${path.module}/../target/lambda")
  dashboard_dist_dir = coalesce(var.dashboard_dist_dir, "${path.module}/../frontend/dist")
  kms_key_arn        = var.kms_key_arn != null ? var.kms_key_arn : module.kms[0].key_arn

  # The table and its GSIs (Query on an index needs the index ARN).
  table_arns = concat([module.table.table_arn], module.table.index_arns)

  # The Store adapter's data-plane operations (shared/src/adapters/dynamodb).
  dynamodb_read  = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"]
  dynamodb_write = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"]

  # The raw archive's key prefix (functions/webhook ARCHIVE_PREFIX).
  archive_prefix = "raw/"

  use_github_app = var.github.app_id != null
  github_parameter_names = compact([
    var.github.token_parameter_name,
    var.github.app_private_key_parameter_name,
  ])
}

################################################################################
# Encryption key, data, queue, secrets
################################################################################

module "kms" {
  source = "./modules/kms"
  count  = var.kms_key_arn == null ? 1 : 0

  name_prefix = var.name_prefix
  tags        = local.tags
}

module "table" {
  source = "./modules/dynamodb"

  table_name          = var.name_prefix
  kms_key_arn         = local.kms_key_arn
  deletion_protection = var.deletion_protection
  tags                = local.tags
}

module "archive" {
  source = "./modules/archive"

  bucket_name     = "${var.name_prefix}-archive-${local.account_id}-${local.region}"
  kms_key_arn     = local.kms_key_arn
  expiration_days = var.archive_expiration_days
  force_destroy   = !var.deletion_protection
  tags            = local.tags
}

module "gap_queue" {
  source = "./modules/queue"

  queue_name               = "${var.name_prefix}-gaps"
  kms_key_arn              = local.kms_key_arn
  consumer_timeout_seconds = var.functions.dispatcher.timeout
  max_receive_count        = 5
  tags                     = local.tags
}

module "secrets" {
  source = "./modules/secrets"

  parameter_prefix              = "/${var.name_prefix}"
  kms_key_arn                   = local.kms_key_arn
  webhook_secret_parameter_name = var.webhook_secret_parameter_name
  create_api_tokens             = var.api_jwt_authorizer == null
  api_tokens_parameter_name     = var.api_tokens_parameter_name
  github_parameter_names        = local.github_parameter_names
  generated_secrets_version     = var.generated_secrets_version
  tags                          = local.tags
}

################################################################################
# Functions
################################################################################

module "webhook" {
  source = "./modules/lambda-function"

  function_name                  = "${var.name_prefix}-webhook"
  description                    = "POST /webhook: verify, dedupe, archive, normalise, store"
  zip_path                       = "${local.lambda_zip_dir}/webhook/bootstrap.zip"
  memory_size                    = var.functions.webhook.memory_size
  timeout                        = var.functions.webhook.timeout
  reserved_concurrent_executions = var.functions.webhook.reserved_concurrent_executions
  kms_key_arn                    = local.kms_key_arn
  log_retention_days             = var.log_retention_days
  tracing_enabled                = var.tracing_enabled
  tags                           = local.tags

  environment = {
    OCTOSCOPE_TABLE             = module.table.table_name
    OCTOSCOPE_ARCHIVE_BUCKET    = module.archive.bucket_name
    GITHUB_WEBHOOK_SECRET_PARAM = module.secrets.webhook_secret_parameter_name
    OCTOSCOPE_MAX_BODY_BYTES    = var.webhook_max_body_bytes == null ? null : tostring(var.webhook_max_body_bytes)
    RUST_LOG                    = var.log_level
  }

  policy_statements = {
    store = {
      actions   = concat(local.dynamodb_read, local.dynamodb_write)
      resources = local.table_arns
    }
    archive = {
      actions   = ["s3:PutObject"]
      resources = ["${module.archive.bucket_arn}/${local.archive_prefix}*"]
    }
    webhook_secret = {
      actions   = ["ssm:GetParameter"]
      resources = [module.secrets.webhook_secret_parameter_arn]
    }
    # SSE-KMS on the archive (PutObject) and the SecureString (GetParameter).
    stack_key = {
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [local.kms_key_arn]
    }
  }
}

module "api" {
  source = "./modules/lambda-function"

  function_name                  = "${var.name_prefix}-api"
  description                    = "GET /api/*: the read API over the store"
  zip_path                       = "${local.lambda_zip_dir}/api/bootstrap.zip"
  memory_size                    = var.functions.api.memory_size
  timeout                        = var.functions.api.timeout
  reserved_concurrent_executions = var.functions.api.reserved_concurrent_executions
  kms_key_arn                    = local.kms_key_arn
  log_retention_days             = var.log_retention_days
  tracing_enabled                = var.tracing_enabled
  tags                           = local.tags

  environment = {
    OCTOSCOPE_TABLE            = module.table.table_name
    OCTOSCOPE_API_AUTH         = var.api_jwt_authorizer == null ? "tokens" : "gateway"
    OCTOSCOPE_API_TOKENS_PARAM = module.secrets.api_tokens_parameter_name
    RUST_LOG                   = var.log_level
  }

  # With the JWT authorizer the function reads no token parameter.
  policy_statements = {
    store = {
      actions   = local.dynamodb_read
      resources = local.table_arns
    }
    api_tokens = {
      enabled   = var.api_jwt_authorizer == null
      actions   = ["ssm:GetParameter"]
      resources = compact([module.secrets.api_tokens_parameter_arn])
    }
    # The SecureString's key (GetParameter with decryption).
    stack_key = {
      enabled   = var.api_jwt_authorizer == null
      actions   = ["kms:Decrypt"]
      resources = [local.kms_key_arn]
    }
  }
}

module "integrity_check" {
  source = "./modules/lambda-function"

  function_name                  = "${var.name_prefix}-integrity-check"
  description                    = "Scheduled: compare GitHub with the store, redeliver failures, queue gaps"
  zip_path                       = "${local.lambda_zip_dir}/integrity-check/bootstrap.zip"
  memory_size                    = var.functions.integrity_check.memory_size
  timeout                        = var.functions.integrity_check.timeout
  reserved_concurrent_executions = var.functions.integrity_check.reserved_concurrent_executions
  kms_key_arn                    = local.kms_key_arn
  log_retention_days             = var.log_retention_days
  tracing_enabled                = var.tracing_enabled
  tags                           = local.tags

  environment = {
    OCTOSCOPE_TABLE              = module.table.table_name
    OCTOSCOPE_GAP_QUEUE_URL      = module.gap_queue.queue_url
    GITHUB_TOKEN_PARAM           = var.github.token_parameter_name
    GITHUB_APP_ID                = var.github.app_id
    GITHUB_APP_INSTALLATION_ID   = var.github.app_installation_id
    GITHUB_APP_PRIVATE_KEY_PARAM = var.github.app_private_key_parameter_name
    GITHUB_API_URL               = var.github.api_url
    OCTOSCOPE_ORGS               = length(var.tracked_orgs) > 0 ? join(",", var.tracked_orgs) : null
    OCTOSCOPE_REPOS              = length(var.tracked_repos) > 0 ? join(",", var.tracked_repos) : null
    RUST_LOG                     = var.log_level
  }

  policy_statements = {
    store = {
      actions   = concat(local.dynamodb_read, local.dynamodb_write)
      resources = local.table_arns
    }
    gap_queue = {
      actions   = ["sqs:SendMessage"] # SendMessageBatch is authorised as sqs:SendMessage
      resources = [module.gap_queue.queue_arn]
    }
    github_credentials = {
      actions   = ["ssm:GetParameter"]
      resources = module.secrets.github_parameter_arns
    }
    # SSE-KMS on the queue (SendMessage needs a data key) and the SecureString.
    stack_key = {
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [local.kms_key_arn]
    }
  }
}

module "dispatcher" {
  source = "./modules/lambda-function"

  function_name                  = "${var.name_prefix}-dispatcher"
  description                    = "Gap queue consumer: coalesce, lock, RunTask the resync job"
  zip_path                       = "${local.lambda_zip_dir}/dispatcher/bootstrap.zip"
  memory_size                    = var.functions.dispatcher.memory_size
  timeout                        = var.functions.dispatcher.timeout
  reserved_concurrent_executions = var.functions.dispatcher.reserved_concurrent_executions
  kms_key_arn                    = local.kms_key_arn
  log_retention_days             = var.log_retention_days
  tracing_enabled                = var.tracing_enabled
  tags                           = local.tags

  environment = {
    OCTOSCOPE_TABLE                = module.table.table_name
    OCTOSCOPE_ECS_CLUSTER          = module.batch.cluster_name
    OCTOSCOPE_ECS_TASK_DEFINITION  = module.batch.task_definition_family
    OCTOSCOPE_ECS_CONTAINER        = module.batch.container_name
    OCTOSCOPE_ECS_SUBNETS          = join(",", var.batch_network.subnet_ids)
    OCTOSCOPE_ECS_SECURITY_GROUPS  = module.batch.security_group_id
    OCTOSCOPE_ECS_ASSIGN_PUBLIC_IP = tostring(var.batch_network.assign_public_ip)
    RUST_LOG                       = var.log_level
  }

  policy_statements = {
    store = {
      actions   = concat(local.dynamodb_read, local.dynamodb_write)
      resources = local.table_arns
    }
    run_task = {
      actions   = ["ecs:RunTask"]
      resources = [module.batch.task_definition_family_arn]
      conditions = [{
        test     = "ArnEquals"
        variable = "ecs:cluster"
        values   = [module.batch.cluster_arn]
      }]
    }
    # RunTask with tags (the job id) tags the new task.
    tag_task = {
      actions   = ["ecs:TagResource"]
      resources = [module.batch.task_arn_pattern]
      conditions = [{
        test     = "StringEquals"
        variable = "ecs:CreateAction"
        values   = ["RunTask"]
      }]
    }
    # RunTask hands the task and execution roles to ECS.
    pass_roles = {
      actions   = ["iam:PassRole"]
      resources = [module.batch.task_role_arn, module.batch.execution_role_arn]
      conditions = [{
        test     = "StringEquals"
        variable = "iam:PassedToService"
        values   = ["ecs-tasks.amazonaws.com"]
      }]
    }
    # Lambda's SQS event source polls with the function's role.
    gap_queue_events = {
      actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
      resources = [module.gap_queue.queue_arn]
    }
    # The queue's SSE-KMS key (received messages are decrypted).
    stack_key = {
      actions   = ["kms:Decrypt"]
      resources = [local.kms_key_arn]
    }
  }
}

resource "aws_lambda_event_source_mapping" "gaps" {
  event_source_arn                   = module.gap_queue.queue_arn
  function_name                      = module.dispatcher.function_arn
  batch_size                         = 10
  maximum_batching_window_in_seconds = 5
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.dispatcher_max_concurrency
  }

  tags = local.tags
}

################################################################################
# Batch job (resync on Fargate)
################################################################################

module "batch" {
  source = "./modules/batch"

  name                    = "${var.name_prefix}-resync"
  image_tag               = var.batch_image_tag
  cpu                     = var.batch_task.cpu
  memory                  = var.batch_task.memory
  vpc_id                  = var.batch_network.vpc_id
  kms_key_arn             = local.kms_key_arn
  log_retention_days      = var.log_retention_days
  force_delete_repository = !var.deletion_protection
  tags                    = local.tags

  # OCTOSCOPE_JOB_ID is set per task by the dispatcher's RunTask override.
  environment = {
    OCTOSCOPE_TABLE              = module.table.table_name
    GITHUB_TOKEN_PARAM           = var.github.token_parameter_name
    GITHUB_APP_ID                = var.github.app_id
    GITHUB_APP_INSTALLATION_ID   = var.github.app_installation_id
    GITHUB_APP_PRIVATE_KEY_PARAM = var.github.app_private_key_parameter_name
    GITHUB_API_URL               = var.github.api_url
    OCTOSCOPE_ORGS               = length(var.tracked_orgs) > 0 ? join(",", var.tracked_orgs) : null
    OCTOSCOPE_REPOS              = length(var.tracked_repos) > 0 ? join(",", var.tracked_repos) : null
    RUST_LOG                     = var.log_level
  }

  task_policy_statements = {
    store = {
      actions   = concat(local.dynamodb_read, local.dynamodb_write)
      resources = local.table_arns
    }
    github_credentials = {
      actions   = ["ssm:GetParameter"]
      resources = module.secrets.github_parameter_arns
    }
    # The SecureString's key (GetParameter with decryption).
    stack_key = {
      actions   = ["kms:Decrypt"]
      resources = [local.kms_key_arn]
    }
  }
}

################################################################################
# Entry points: HTTP API, schedule, dashboard
################################################################################

module "http_api" {
  source = "./modules/http-api"

  name                   = var.name_prefix
  webhook_function       = { function_name = module.webhook.function_name, invoke_arn = module.webhook.invoke_arn }
  api_function           = { function_name = module.api.function_name, invoke_arn = module.api.invoke_arn }
  jwt_authorizer         = var.api_jwt_authorizer
  throttling_burst_limit = var.api_throttling.burst_limit
  throttling_rate_limit  = var.api_throttling.rate_limit
  cors_allow_origins     = var.api_cors_allow_origins
  kms_key_arn            = local.kms_key_arn
  log_retention_days     = var.log_retention_days
  tags                   = local.tags
}

module "integrity_schedule" {
  source = "./modules/schedule"

  name                = "${var.name_prefix}-integrity-check"
  schedule_expression = var.integrity_check_schedule
  target_function_arn = module.integrity_check.function_arn
  kms_key_arn         = local.kms_key_arn
  tags                = local.tags
}

module "dashboard" {
  source = "./modules/dashboard"

  bucket_name         = "${var.name_prefix}-dashboard-${local.account_id}-${local.region}"
  dist_dir            = local.dashboard_dist_dir
  api_endpoint        = module.http_api.api_endpoint
  price_class         = var.dashboard.price_class
  aliases             = var.dashboard.aliases
  acm_certificate_arn = var.dashboard.acm_certificate_arn
  web_acl_id          = var.dashboard.web_acl_id
  tags                = local.tags
}
