# The read API: GET /api/* (http_api.tf, and CloudFront's /api/* in
# dashboard.tf) -> the api function, read only over the store.

locals {
  # The api function (lambdas.tf deploys it as module.function["api"]).
  api_function = {
    description = "GET /api/*: the read API over the store"

    environment = merge(local.common_environment, {
      OCTOSCOPE_API_AUTH         = var.api_jwt_authorizer == null ? "tokens" : "gateway"
      OCTOSCOPE_API_TOKENS_PARAM = module.secrets.api_tokens_parameter_name
    })

    # With the JWT authorizer the function reads no token parameter.
    policy_statements = {
      store = local.store_read
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
}
