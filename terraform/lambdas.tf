# The four functions, one module call: each is deployed the same way (its
# `make lambdas` zip, its sizing from var.functions, the stack's key, logs and
# tags); what differs (description, environment, permissions) is written in
# the file of its concern as local.<key>_function: ingest.tf (webhook), api.tf
# (api), completeness.tf (integrity_check, dispatcher). The key, with `-` for
# `_`, is the crate under functions/ and the function's name after the prefix.

module "function" {
  source = "./modules/lambda-function"
  for_each = {
    webhook         = local.webhook_function
    api             = local.api_function
    integrity_check = local.integrity_check_function
    dispatcher      = local.dispatcher_function
  }

  function_name     = "${var.name_prefix}-${replace(each.key, "_", "-")}"
  description       = each.value.description
  zip_path          = "${local.lambda_zip_dir}/${replace(each.key, "_", "-")}/bootstrap.zip"
  sizing            = var.functions[each.key]
  stack             = local.function_stack
  environment       = each.value.environment
  policy_statements = each.value.policy_statements
}

# Each function had a module call of its own before.
moved {
  from = module.webhook
  to   = module.function["webhook"]
}

moved {
  from = module.api
  to   = module.function["api"]
}

moved {
  from = module.integrity_check
  to   = module.function["integrity_check"]
}

moved {
  from = module.dispatcher
  to   = module.function["dispatcher"]
}
