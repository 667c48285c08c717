# Secrets, by SSM parameter name: the webhook secret and the API tokens are
# generated here without entering the state; the GitHub credentials are
# parameters the operator creates, named in var.github.

locals {
  github_parameter_names = compact([
    var.github.token_parameter_name,
    var.github.app_private_key_parameter_name,
  ])
}

module "secrets" {
  source = "./modules/secrets"

  parameter_prefix              = "/${var.name_prefix}"
  kms_key_arn                   = local.kms_key_arn
  webhook_secret_parameter_name = var.webhook_secret_parameter_name
  create_api_tokens             = var.api_jwt_authorizer == null
  api_tokens_parameter_name     = var.api_tokens_parameter_name
  github_parameter_names        = local.github_parameter_names
  generated_secrets_version     = var.generated_secrets_version
  tags                          = local.tags
}
