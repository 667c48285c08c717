# The read API: GET /api/* (http_api.tf, and CloudFront's /api/* in
# dashboard.tf) -> the api function, read only over the store.

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

  environment = merge(local.common_environment, {
    OCTOSCOPE_TABLE            = module.table.table_name
    OCTOSCOPE_API_AUTH         = var.api_jwt_authorizer == null ? "tokens" : "gateway"
    OCTOSCOPE_API_TOKENS_PARAM = module.secrets.api_tokens_parameter_name
  })

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
