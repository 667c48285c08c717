# Full-text search (var.enable_search, off by default: the domain is billed
# by the hour). The table's stream (new and old images) -> the indexer
# function -> the search index on an Amazon OpenSearch Service domain
# (modules/search). The indexer reads each record's images back as the
# changes that wrote them and writes their documents with `_bulk` under
# external versions, so a replayed or reordered record never regresses a
# document (shared/docs/search.md).
#
# The table's stream now has two consumers: the ledger-stream function and
# the indexer. DynamoDB Streams serves up to two concurrent readers per shard
# without throttling; a third consumer (another mapping, a Kinesis adapter)
# would be throttled, so one should go through a fan-out instead.

locals {
  # The index the functions write and read (the code's default, written out
  # so that the domain's access policy can name it).
  search_index = "octoscope-search"

  # The items that have search documents (their `entity`): the filter below
  # passes only their changes; searchable_change (shared/src/adapters/aws/
  # dynamodb/search.rs) reads exactly these.
  search_entities = ["repository", "pull_request", "review", "commit", "team", "org_member"]

  # Empty (or null) without enable_search.
  search_domain_arns = module.search[*].domain_arn
  search_index_arns = flatten([
    for arn in local.search_domain_arns : ["${arn}/${local.search_index}", "${arn}/${local.search_index}/*"]
  ])

  # The indexer function (lambdas.tf deploys it as module.function["indexer"]
  # with enable_search).
  indexer_function = {
    description = "Table stream -> the search index on OpenSearch Service"

    environment = merge(local.common_environment, {
      OCTOSCOPE_SEARCH_DOMAIN = one(module.search[*].domain_name)
      # The endpoint is resolved from the domain's name (DescribeDomain) at init.
      OCTOSCOPE_SEARCH_ENDPOINT = null
      OCTOSCOPE_SEARCH_INDEX    = local.search_index
    })

    policy_statements = {
      # A review's document carries its pull request's title (GetItem of the
      # pull request, its repository's current name by BatchGetItem of the
      # aliases); a person's, their other organisations (Query of the
      # registry partition, GetItem of each membership). All on the table
      # itself, no index.
      lookups = {
        actions   = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"]
        resources = [module.table.table_arn]
      }
      # Lambda's DynamoDB stream event source reads the stream with the function's role.
      table_stream = {
        actions   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"]
        resources = [module.table.stream_arn]
      }
      # At init: the domain's endpoint from its name.
      search_domain = {
        actions   = ["es:DescribeDomain"]
        resources = local.search_domain_arns
      }
      # The index: HEAD (does it exist), PUT (create it), POST (`_bulk`).
      search_index = {
        actions   = ["es:ESHttpHead", "es:ESHttpPut", "es:ESHttpPost"]
        resources = local.search_index_arns
      }
      # A batch still failing after the retries: its stream position goes to this queue.
      failed_batches = {
        actions   = ["sqs:SendMessage"]
        resources = aws_sqs_queue.indexer_failures[*].arn
      }
      # The queue is SSE-KMS with the stack's key.
      stack_key = {
        actions   = ["kms:GenerateDataKey"]
        resources = [local.kms_key_arn]
      }
    }
  }
}

module "search" {
  source = "./modules/search"
  count  = var.enable_search ? 1 : 0

  domain_name        = "${var.name_prefix}-search"
  index_name         = local.search_index
  instance_type      = var.search.instance_type
  volume_size        = var.search.volume_size
  writer_role_arns   = [module.function["indexer"].role_arn, module.batch.task_role_arn]
  reader_role_arns   = [module.function["api"].role_arn]
  kms_key_arn        = local.kms_key_arn
  log_retention_days = var.log_retention_days
  tags               = local.tags
}

resource "aws_lambda_event_source_mapping" "indexer" {
  count = var.enable_search ? 1 : 0

  event_source_arn = module.table.stream_arn
  function_name    = module.function["indexer"].function_arn
  # TRIM_HORIZON: the mapping starts at the oldest record the stream still
  # holds (24 hours), so the changes written while the domain was being
  # created, and those of the last day, are indexed too; a record indexed
  # twice is harmless (external versions). LATEST would skip whatever was
  # written between the table's last change and the mapping's first poll.
  # Items older than the stream are indexed when they next change.
  starting_position                  = "TRIM_HORIZON"
  batch_size                         = 100
  maximum_batching_window_in_seconds = var.search.batching_window
  function_response_types            = ["ReportBatchItemFailures"]
  bisect_batch_on_function_error     = true
  maximum_retry_attempts             = 10
  maximum_record_age_in_seconds      = 86400

  # Only the items that have search documents, written, changed or removed
  # (a removal has an OldImage only); the ledger, listings, rollup cells,
  # branches, runs and jobs never invoke the indexer.
  filter_criteria {
    filter {
      pattern = jsonencode({ dynamodb = { NewImage = { entity = { S = local.search_entities } } } })
    }
    filter {
      pattern = jsonencode({ dynamodb = { OldImage = { entity = { S = local.search_entities } } } })
    }
  }

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.indexer_failures[0].arn
    }
  }

  tags = local.tags
}

# Where a batch that could not be indexed after the retries is recorded (its
# shard and sequence numbers; the records stay in the stream for 24 hours).
resource "aws_sqs_queue" "indexer_failures" {
  count = var.enable_search ? 1 : 0

  name                              = "${var.name_prefix}-indexer-failures"
  message_retention_seconds         = 1209600
  kms_master_key_id                 = local.kms_key_arn
  kms_data_key_reuse_period_seconds = 3600
  tags                              = local.tags
}

# TLS only, as the other queues.
data "aws_iam_policy_document" "indexer_failures" {
  count = var.enable_search ? 1 : 0

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.indexer_failures[0].arn]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "indexer_failures" {
  count = var.enable_search ? 1 : 0

  queue_url = aws_sqs_queue.indexer_failures[0].id
  policy    = data.aws_iam_policy_document.indexer_failures[0].json
}
