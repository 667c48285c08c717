# The HTTP API in front of the two request-driven functions: POST /webhook ->
# webhook (ingest.tf), GET /api/{proxy+} -> api (api.tf), with throttling,
# access logs and the optional JWT authorizer.

module "http_api" {
  source = "./modules/http-api"

  name                   = var.name_prefix
  webhook_function       = { function_name = module.function["webhook"].function_name, invoke_arn = module.function["webhook"].invoke_arn }
  api_function           = { function_name = module.function["api"].function_name, invoke_arn = module.function["api"].invoke_arn }
  jwt_authorizer         = var.api_jwt_authorizer
  throttling_burst_limit = var.api_throttling.burst_limit
  throttling_rate_limit  = var.api_throttling.rate_limit
  cors_allow_origins     = var.api_cors_allow_origins
  kms_key_arn            = local.kms_key_arn
  log_retention_days     = var.log_retention_days
  tags                   = local.tags
}
