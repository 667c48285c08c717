# Ingest: GitHub's webhook deliveries. POST /webhook (http_api.tf) -> the
# webhook function: verify the signature, dedupe, archive the raw body under
# local.archive_prefix, normalise, store.

locals {
  # The raw archive's key prefix (functions/webhook ARCHIVE_PREFIX).
  archive_prefix = "raw/"
}

locals {
  # The webhook function (lambdas.tf deploys it as module.function["webhook"]).
  webhook_function = {
    description = "POST /webhook: verify, dedupe, archive, normalise, store"

    environment = merge(local.common_environment, {
      OCTOSCOPE_ARCHIVE_BUCKET    = module.archive.bucket_name
      GITHUB_WEBHOOK_SECRET_PARAM = module.secrets.webhook_secret_parameter_name
      OCTOSCOPE_MAX_BODY_BYTES    = var.webhook_max_body_bytes == null ? null : tostring(var.webhook_max_body_bytes)
    })

    policy_statements = {
      store = local.store_read_write
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
}
