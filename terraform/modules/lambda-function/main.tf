# One Octoscope function: a provided.al2023 arm64 Lambda running the Rust
# `bootstrap` from `make lambdas`, its log group, and a role whose inline policy
# is exactly the statements the caller passes (plus logging and optional X-Ray).

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  log_group_name = "/aws/lambda/${var.function_name}"
  log_group_arn  = "arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.region}:${data.aws_caller_identity.current.account_id}:log-group:${local.log_group_name}"
  environment    = { for k, v in var.environment : k => v if v != null }
}

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_338:Operational logs only; retention is a variable (default 30 days) and the raw deliveries are kept in the S3 archive, which is the durable record.
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = "${var.function_name}-lambda"
  description          = "Execution role of the ${var.function_name} function."
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  max_session_duration = 3600
  tags                 = var.tags
}

data "aws_iam_policy_document" "this" {
  # Logging to its own log group (created above, so no logs:CreateLogGroup).
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${local.log_group_arn}:*"]
  }

  # The environment variables are encrypted with the stack's key; Lambda
  # decrypts them with the execution role at cold start.
  statement {
    sid       = "EnvironmentDecrypt"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }

  # X-Ray's trace APIs have no resource-level permissions: AWS requires "*".
  dynamic "statement" {
    for_each = var.tracing_enabled ? [1] : []
    content {
      sid       = "XRay"
      actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      resources = ["*"]
    }
  }

  dynamic "statement" {
    for_each = { for k, v in var.policy_statements : k => v if v.enabled }
    content {
      sid       = replace(title(replace(statement.key, "_", " ")), " ", "")
      actions   = statement.value.actions
      resources = statement.value.resources

      dynamic "condition" {
        for_each = statement.value.conditions
        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "${var.function_name}-permissions"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_117:Not in a VPC on purpose: the functions call only AWS APIs and GitHub over TLS and reach no private resources; a VPC would add NAT cost (~$32/month) to a stack that idles at ~$1.
  #checkov:skip=CKV_AWS_116:No function is invoked through Lambda's asynchronous queue except integrity-check, whose EventBridge Scheduler target has its own retry policy and dead-letter queue; API Gateway invokes synchronously and SQS failures go to the gap queue's DLQ.
  #checkov:skip=CKV_AWS_272:The artefact is the operator's own `make lambdas` build deployed by the same pipeline; code signing needs an AWS Signer profile the operator may add with aws_lambda_code_signing_config.
  function_name = var.function_name
  description   = var.description
  role          = aws_iam_role.this.arn

  filename         = var.zip_path
  source_code_hash = filebase64sha256(var.zip_path)
  handler          = "bootstrap"
  runtime          = "provided.al2023"
  architectures    = ["arm64"]

  memory_size                    = var.sizing.memory_size
  timeout                        = var.sizing.timeout
  reserved_concurrent_executions = var.sizing.reserved_concurrent_executions
  kms_key_arn                    = var.kms_key_arn

  dynamic "environment" {
    for_each = length(local.environment) > 0 ? [1] : []
    content {
      variables = local.environment
    }
  }

  tracing_config {
    mode = var.tracing_enabled ? "Active" : "PassThrough"
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.this.name
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.this]
}
