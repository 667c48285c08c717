# Delivery listings, counts and metric rollups: the table's stream (new and
# old images) -> the ledger-stream function, in batches; its schedule settles
# the rollup cells (below). The webhook writes one ledger item
# per delivery, marked; the event source mapping passes only those records
# (filter below) and the function writes their listing pages and counts
# (one BatchWriteItem of page items and one counter UpdateItem per batch).
# Listings and /api/health counts lag by the batching window.

locals {
  # The items whose changes the metric rollup cells follow (their `entity`);
  # runs and jobs also mark where unfinished runs begin (`UNFINISHED#` items).
  rollup_entities = ["pull_request", "workflow_run", "workflow_job"]

  # The ledger-stream function (lambdas.tf deploys it as module.function["ledger_stream"]).
  ledger_stream_function = {
    description = "Table stream -> metric rollup cells, delivery listing pages and counts, in batches"

    # New NOTE# items (notifications decided anywhere) are forwarded to the
    # notification queue (notify.tf).
    environment = merge(local.common_environment, {
      OCTOSCOPE_NOTIFY_QUEUE_URL = module.notify_queue.queue_url
    })

    policy_statements = {
      # Page items (BatchWriteItem), the counter ADD and the repositories'
      # activity (UpdateItem), their current names (BatchGetItem of aliases).
      store = {
        actions   = ["dynamodb:BatchWriteItem", "dynamodb:UpdateItem", "dynamodb:BatchGetItem"]
        resources = [module.table.table_arn]
      }
      # Metric rollup cells: the batches' marks (BatchWriteItem, above);
      # the scheduled settle reads the marks, the rows of the marked days
      # (Query of the indexes, BatchGetItem of the items) and the stored
      # cells, writes the cells and deletes the marks (BatchWriteItem).
      rollup_rows = {
        actions   = ["dynamodb:Query", "dynamodb:GetItem", "dynamodb:BatchGetItem"]
        resources = local.table_arns
      }
      # The settle's lock: taken and renewed with UpdateItem (above), released with DeleteItem.
      settle_lock = {
        actions   = ["dynamodb:DeleteItem"]
        resources = [module.table.table_arn]
      }
      # Lambda's DynamoDB stream event source reads the stream with the function's role.
      table_stream = {
        actions   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"]
        resources = [module.table.stream_arn]
      }
      # A batch still failing after the retries: its stream position goes to this queue.
      failed_batches = {
        actions   = ["sqs:SendMessage"]
        resources = [aws_sqs_queue.ledger_stream_failures.arn]
      }
      # Each new notification (a NOTE# item inserted) to the notification queue.
      notify_queue = {
        actions   = ["sqs:SendMessage"] # SendMessageBatch is authorised as sqs:SendMessage
        resources = [module.notify_queue.queue_arn]
      }
      # The queues are SSE-KMS with the stack's key.
      stack_key = {
        actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
        resources = [local.kms_key_arn]
      }
    }
  }
}

resource "aws_lambda_event_source_mapping" "ledger_stream" {
  event_source_arn                   = module.table.stream_arn
  function_name                      = module.function["ledger_stream"].function_arn
  starting_position                  = "TRIM_HORIZON"
  batch_size                         = 100
  maximum_batching_window_in_seconds = var.ledger_stream_batching_window
  function_response_types            = ["ReportBatchItemFailures"]
  bisect_batch_on_function_error     = true
  maximum_retry_attempts             = 10
  maximum_record_age_in_seconds      = 86400

  # Only the webhook's marked ledger items, and the pull requests, runs and
  # jobs the metric rollups count (written, changed or removed); every other
  # write of the table, the function's own pages, counts and cells included,
  # never invokes it.
  filter_criteria {
    filter {
      pattern = jsonencode({ dynamodb = { NewImage = { derive = { S = ["stream"] } } } })
    }
    filter {
      pattern = jsonencode({ dynamodb = { NewImage = { entity = { S = local.rollup_entities } } } })
    }
    filter {
      pattern = jsonencode({ dynamodb = { OldImage = { entity = { S = local.rollup_entities } } } })
    }
    # A notification kept (its NOTE# item created; attempts are other sort keys).
    filter {
      pattern = jsonencode({ eventName = ["INSERT"], dynamodb = { Keys = { pk = { S = [{ prefix = "NOTE#" }] }, sk = { S = ["_"] } } } })
    }
  }

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.ledger_stream_failures.arn
    }
  }

  tags = local.tags
}

# The settle of the metric rollup cells: the stream's batches mark the cells
# they change; every few minutes the schedule invokes the function, which
# recomputes the marked days from their rows (one settle at a time), so a busy
# day's rows are read once a settle rather than once a stream batch. Metrics
# lag the webhooks by up to the schedule's period and a minute.
module "rollup_schedule" {
  source = "./modules/schedule"

  name                = "${var.name_prefix}-rollup-settle"
  description         = "settle the metric rollup cells"
  schedule_expression = var.rollup_settle_schedule
  target_function_arn = module.function["ledger_stream"].function_arn
  kms_key_arn         = local.kms_key_arn
  tags                = local.tags
}

# Where a batch that could not be derived after the retries is recorded (its
# shard and sequence numbers; the records stay in the stream for 24 hours).
resource "aws_sqs_queue" "ledger_stream_failures" {
  name                              = "${var.name_prefix}-ledger-stream-failures"
  message_retention_seconds         = 1209600
  kms_master_key_id                 = local.kms_key_arn
  kms_data_key_reuse_period_seconds = 3600
  tags                              = local.tags
}

# TLS only, as the other queues.
data "aws_iam_policy_document" "ledger_stream_failures" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.ledger_stream_failures.arn]
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

resource "aws_sqs_queue_policy" "ledger_stream_failures" {
  queue_url = aws_sqs_queue.ledger_stream_failures.id
  policy    = data.aws_iam_policy_document.ledger_stream_failures.json
}
