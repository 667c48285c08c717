# Values every concern uses. Concern-specific locals live in their own file.

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region
  account_id = data.aws_caller_identity.current.account_id

  tags = merge({ Application = "octoscope", ManagedBy = "terraform" }, var.tags)

  lambda_zip_dir = coalesce(var.lambda_zip_dir, "${path.module}/../target/lambda")
  kms_key_arn    = var.kms_key_arn != null ? var.kms_key_arn : module.kms[0].key_arn

  # The table and its GSIs (Query on an index needs the index ARN).
  table_arns = concat([module.table.table_arn], module.table.index_arns)

  # The Store adapter's data-plane operations (shared/src/adapters/dynamodb).
  dynamodb_read  = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"]
  dynamodb_write = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"]
}
