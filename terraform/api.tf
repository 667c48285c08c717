# The API: GET /api/* (http_api.tf, and CloudFront's /api/* in
# dashboard.tf) -> the api function, read only over the store; and the
# notification rules and log (POST/PUT/DELETE /api/rules..., GET
# /api/notifications...), whose writes are the table's RULE# and NOTE# items
# only (a test of a rule is a pending NOTE# item: notify.tf).

locals {
  # The api function (lambdas.tf deploys it as module.function["api"]).
  api_function = {
    description = "/api/*: the read API over the store, notification rules and their log"

    # OCTOSCOPE_NOTIFY_ALLOW_PRIVATE (in local.notify_environment, notify.tf):
    # which targets a rule may name.
    environment = merge(local.common_environment, local.notify_environment, {
      OCTOSCOPE_API_AUTH         = var.api_jwt_authorizer == null ? "tokens" : "gateway"
      OCTOSCOPE_API_TOKENS_PARAM = module.secrets.api_tokens_parameter_name
      # /api/search (search.tf): the domain's endpoint and the index; all
      # null without enable_search, and /api/search answers 501. The
      # endpoint is given, not the domain's name: the api is built without
      # the resolver (aws-sdk-opensearch, for the zip's size budget) and
      # refuses OCTOSCOPE_SEARCH_DOMAIN at init.
      OCTOSCOPE_SEARCH_DOMAIN   = null
      OCTOSCOPE_SEARCH_ENDPOINT = one(module.search[*].endpoint)
      OCTOSCOPE_SEARCH_INDEX    = var.enable_search ? local.search_index : null
    })

    # With the JWT authorizer the function reads no token parameter.
    policy_statements = {
      store = local.store_read
      # Rules (created, replaced, disabled: UpdateItem; removed: DeleteItem)
      # and a rule's test notification (a conditional UpdateItem creating its
      # NOTE# item): the RULE# and NOTE# partitions of the table, nothing else.
      notify_items = {
        actions   = ["dynamodb:UpdateItem", "dynamodb:DeleteItem"]
        resources = [module.table.table_arn]
        conditions = [{
          test     = "ForAllValues:StringLike"
          variable = "dynamodb:LeadingKeys"
          values   = ["RULE#*", "NOTE#*"]
        }]
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
      # With enable_search: searches (POST /<index>/_search, the query in
      # the body) at the endpoint given.
      search_index = {
        enabled   = var.enable_search
        actions   = ["es:ESHttpPost"]
        resources = local.search_index_arns
      }
    }
  }
}
