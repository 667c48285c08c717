# Data at rest: the stack's KMS key, the DynamoDB table (ledger and store) and
# the raw archive (its bucket and the Firehose stream that batches into it).

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

  bucket_name        = "${var.name_prefix}-archive-${local.account_id}-${local.region}"
  stream_name        = "${var.name_prefix}-archive"
  kms_key_arn        = local.kms_key_arn
  expiration_days    = var.archive_expiration_days
  force_destroy      = !var.deletion_protection
  log_retention_days = var.log_retention_days
  tags               = local.tags
}
