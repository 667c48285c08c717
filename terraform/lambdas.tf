# The functions, one module call: each is deployed the same way (its
# `make lambdas` zip, its sizing from var.functions, the stack's key, logs,
# tracing and tags); what differs (description, environment, permissions) is
# written in the file of its concern as local.<key>_function: ingest.tf (webhook), api.tf
# (api), completeness.tf (integrity_check, dispatcher), ledger_stream.tf (ledger_stream),
# notify.tf (notifier), search.tf (indexer, only with var.enable_search). The key, with `-` for
# `_`, is the crate under functions/ and the function's name after the prefix.

module "function" {
  source = "./modules/lambda-function"
  # The keys are written out (not keys(local.functions)) so that checkov,
  # which cannot evaluate the settings, still sees every instance's values;
  # for the same reason the indexer's switch is one conditional over two
  # written-out lists (checkov leaves concat() of a conditional unexpanded).
  for_each = toset(var.enable_search ? ["webhook", "api", "integrity_check", "dispatcher", "ledger_stream", "notifier", "indexer"] : ["webhook", "api", "integrity_check", "dispatcher", "ledger_stream", "notifier"])

  function_name     = "${var.name_prefix}-${replace(each.key, "_", "-")}"
  description       = local.functions[each.key].description
  zip_path          = "${local.lambda_zip_dir}/${replace(each.key, "_", "-")}/bootstrap.zip"
  environment       = local.functions[each.key].environment
  policy_statements = local.functions[each.key].policy_statements

  sizing             = var.functions[each.key]
  kms_key_arn        = local.kms_key_arn
  log_retention_days = var.log_retention_days
  tracing_enabled    = var.tracing_enabled
  tags               = local.tags
}

locals {
  functions = {
    webhook         = local.webhook_function
    api             = local.api_function
    integrity_check = local.integrity_check_function
    dispatcher      = local.dispatcher_function
    ledger_stream   = local.ledger_stream_function
    notifier        = local.notifier_function
    indexer         = local.indexer_function
  }
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
