# Ingest: GitHub's webhook deliveries. POST /webhook (http_api.tf) -> the
# webhook function: verify the signature, dedupe, archive the raw body under
# local.archive_prefix, normalise, store.

locals {
  # The raw archive's key prefix (functions/webhook ARCHIVE_PREFIX).
  archive_prefix = "raw/"
}

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

  environment = merge(local.common_environment, {
    OCTOSCOPE_TABLE             = module.table.table_name
    OCTOSCOPE_ARCHIVE_BUCKET    = module.archive.bucket_name
    GITHUB_WEBHOOK_SECRET_PARAM = module.secrets.webhook_secret_parameter_name
    OCTOSCOPE_MAX_BODY_BYTES    = var.webhook_max_body_bytes == null ? null : tostring(var.webhook_max_body_bytes)
  })

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
