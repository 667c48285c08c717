# Ingest: GitHub's webhook deliveries. POST /webhook (http_api.tf) -> the
# webhook function: verify the signature, dedupe, archive the raw body (a
# record put to the archive's Firehose stream, which batches records into the
# archive bucket), normalise, store.

locals {
  # The webhook function (lambdas.tf deploys it as module.function["webhook"]).
  webhook_function = {
    description = "POST /webhook: verify, dedupe, archive, normalise, store"

    environment = merge(local.common_environment, {
      OCTOSCOPE_ARCHIVE_STREAM    = module.archive.stream_name
      GITHUB_WEBHOOK_SECRET_PARAM = module.secrets.webhook_secret_parameter_name
      OCTOSCOPE_MAX_BODY_BYTES    = var.webhook_max_body_bytes == null ? null : tostring(var.webhook_max_body_bytes)
    })

    policy_statements = {
      store = local.store_read_write
      # One PutRecord per delivery; PutRecordBatch for the parts of a body
      # over Firehose's record limit. Firehose encrypts with its own grant on
      # the key: the caller needs no KMS action.
      archive = {
        actions   = ["firehose:PutRecord", "firehose:PutRecordBatch"]
        resources = [module.archive.stream_arn]
      }
      webhook_secret = {
        actions   = ["ssm:GetParameter"]
        resources = [module.secrets.webhook_secret_parameter_arn]
      }
      # The SecureString (GetParameter) and the environment.
      stack_key = {
        actions   = ["kms:Decrypt"]
        resources = [local.kms_key_arn]
      }
    }
  }
}
