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

  # The Store adapter's data-plane operations (shared/src/adapters/aws/dynamodb).
  dynamodb_read  = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"]
  dynamodb_write = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"]

  # The policy statements on the store: the API reads, everything else reads and writes.
  store_read       = { actions = local.dynamodb_read, resources = local.table_arns }
  store_read_write = { actions = concat(local.dynamodb_read, local.dynamodb_write), resources = local.table_arns }

  # The environment every function and the resync job start from (each uses
  # the store); each merges its own settings over it.
  common_environment = {
    RUST_LOG        = var.log_level
    OCTOSCOPE_TABLE = module.table.table_name
  }

  # The GitHub client's settings, for the integrity check and the resync job:
  # the credential by SSM parameter name (a token, or a GitHub App's key), the
  # API base (GitHub Enterprise Server), and the organisations and repositories
  # covered besides whatever has sent a webhook.
  github_environment = {
    GITHUB_TOKEN_PARAM           = var.github.token_parameter_name
    GITHUB_APP_ID                = var.github.app_id
    GITHUB_APP_INSTALLATION_ID   = var.github.app_installation_id
    GITHUB_APP_PRIVATE_KEY_PARAM = var.github.app_private_key_parameter_name
    GITHUB_API_URL               = var.github.api_url
    OCTOSCOPE_ORGS               = length(var.tracked_orgs) > 0 ? join(",", var.tracked_orgs) : null
    OCTOSCOPE_REPOS              = length(var.tracked_repos) > 0 ? join(",", var.tracked_repos) : null
  }
}
