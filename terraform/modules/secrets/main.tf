# Secrets live in SSM Parameter Store as SecureString (the stack's key); the
# functions get parameter NAMES and read the values themselves.
#
# Values never enter Terraform state, plan or outputs: generated secrets come
# from ephemeral random_password resources and are written through the
# write-only `value_wo` argument, and GitHub credentials are parameters the
# operator creates (`aws ssm put-parameter`), referenced by name only.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  create_webhook_secret = var.webhook_secret_parameter_name == null
  create_api_tokens     = var.create_api_tokens && var.api_tokens_parameter_name == null

  webhook_secret_name = local.create_webhook_secret ? "${var.parameter_prefix}/webhook-secret" : var.webhook_secret_parameter_name
  api_tokens_name     = var.create_api_tokens ? (local.create_api_tokens ? "${var.parameter_prefix}/api-tokens" : var.api_tokens_parameter_name) : null

  arn_prefix = "arn:${data.aws_partition.current.partition}:ssm:${data.aws_region.current.region}:${data.aws_caller_identity.current.account_id}:parameter"
  # A parameter's ARN: names with a path keep their leading slash after "parameter".
  arn = { for n in compact(concat([local.webhook_secret_name, local.api_tokens_name], var.github_parameter_names)) :
    n => startswith(n, "arn:") ? n : (startswith(n, "/") ? "${local.arn_prefix}${n}" : "${local.arn_prefix}/${n}")
  }
}

# The parameters this module generates, by key: each a random 48-character value.
locals {
  generated = merge(
    local.create_webhook_secret ? { webhook_secret = {
      name        = local.webhook_secret_name
      description = "GitHub webhook secret(s), comma-separated during a rotation (new,old)."
    } } : {},
    local.create_api_tokens ? { api_tokens = {
      name        = local.api_tokens_name
      description = "Bearer tokens for /api/* (comma-separated, 16+ characters each)."
    } } : {},
  )
}

ephemeral "random_password" "generated" {
  for_each = local.generated
  length   = 48
  special  = false
}

resource "aws_ssm_parameter" "generated" {
  for_each         = local.generated
  name             = each.value.name
  description      = each.value.description
  type             = "SecureString"
  key_id           = var.kms_key_arn
  value_wo         = ephemeral.random_password.generated[each.key].result
  value_wo_version = var.generated_secrets_version
  tags             = var.tags
}

# Each generated parameter had a resource of its own before.
moved {
  from = aws_ssm_parameter.webhook_secret[0]
  to   = aws_ssm_parameter.generated["webhook_secret"]
}

moved {
  from = aws_ssm_parameter.api_tokens[0]
  to   = aws_ssm_parameter.generated["api_tokens"]
}
