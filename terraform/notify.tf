# Notifications (shared/docs/notifications.md, "On AWS").
#
#   webhook λ / api λ / integrity-check λ / batch job ──decide──▶ table NOTE# items (the outbox)
#   table stream ──▶ ledger-stream λ ──NOTE# inserts──▶ SQS notification queue ──▶ notifier λ ──▶ targets
#                                                          └─ DLQ: what was never delivered
#
# Deciding happens where the transitions are seen (webhook, resync, the
# integrity check's findings and scheduled rules) and is kept as NOTE# items
# of the table; ledger-stream forwards each new one to the queue; the notifier
# sends it, records the attempt, and on a retryable failure leaves the
# message to come back after the backoff delay (ChangeMessageVisibility).
#
# Egress: the functions run outside any VPC, so the notifier reaches targets
# over Lambda's own internet egress (no NAT gateway, no VPC endpoint). What
# it may connect to is the code's address check (public addresses only,
# https only, unless var.notify_allow_private), done in its HTTP client's own
# resolver: the address connected is the address checked.

locals {
  # The notification settings every function that loads them reads (the
  # NotifyConfig of shared/src/config/mod.rs): the api (allow_private: which
  # targets a rule may name), the integrity check and the batch job (the
  # late window), the notifier (attempts, horizon, allow_private, the
  # dashboard's address for links). One set, so they all agree.
  notify_environment = {
    OCTOSCOPE_NOTIFY_ALLOW_PRIVATE     = var.notify_allow_private ? "1" : "0"
    OCTOSCOPE_NOTIFY_ATTEMPTS          = tostring(var.notify_attempts)
    OCTOSCOPE_NOTIFY_HORIZON_SECONDS   = tostring(var.notify_horizon_seconds)
    OCTOSCOPE_NOTIFY_LATE_WINDOW_HOURS = tostring(var.notify_late_window_hours)
    OCTOSCOPE_PUBLIC_URL               = var.notify_public_url
  }

  # The notifier function (lambdas.tf deploys it as module.function["notifier"]).
  notifier_function = {
    description = "Notification queue consumer: send each notification (Standard Webhooks, Slack, repository_dispatch), retry with backoff"

    # local.github_environment (locals.tf): repository_dispatch targets post
    # with the integrity check's GitHub credential (a token, or the GitHub
    # App's installation tokens; the app's installations are found by the
    # tracked organisations and repositories) to the configured API.
    environment = merge(local.common_environment, local.notify_environment, local.github_environment, {
      OCTOSCOPE_NOTIFY_QUEUE_URL = module.notify_queue.queue_url
    })

    policy_statements = {
      # The notification and its rule (GetItem), the attempt and what
      # follows it (conditional UpdateItems), a rule's target disabled on
      # 410 Gone (UpdateItem): the notification (NOTE#) and rule (RULE#)
      # partitions of the table itself, no index, nothing else.
      notes = {
        actions   = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
        resources = [module.table.table_arn]
        conditions = [{
          test     = "ForAllValues:StringLike"
          variable = "dynamodb:LeadingKeys"
          values   = ["NOTE#*", "RULE#*"]
        }]
      }
      # A retry: the message's visibility set to the backoff delay.
      notify_queue = {
        actions   = ["sqs:ChangeMessageVisibility"]
        resources = [module.notify_queue.queue_arn]
      }
      # Lambda's SQS event source polls with the function's role.
      notify_queue_events = {
        actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
        resources = [module.notify_queue.queue_arn]
      }
      # repository_dispatch targets: the GitHub credential (read at init).
      github_credentials = {
        actions   = ["ssm:GetParameter"]
        resources = module.secrets.github_parameter_arns
      }
      # The queue's SSE-KMS key (received messages are decrypted) and the SecureString.
      stack_key = {
        actions   = ["kms:Decrypt"]
        resources = [local.kms_key_arn]
      }
    }
  }
}

# The notification queue (ledger-stream -> notifier) and its dead-letter
# queue: SSE-KMS with the stack's key, TLS only. A receive is an attempt;
# the DLQ takes the message of every notification never delivered: given up
# (the notifier hands its message back at once until its receives are spent)
# or never settled (a crash or a timeout every time; that notification stays
# pending in the table). Two receives beyond the attempts leave room for
# receives spent on errors, so they do not cost a notification its last
# attempts. The visibility timeout is six times the notifier's
# timeout (modules/queue), so a message is never received again while an
# invocation is still sending it.
module "notify_queue" {
  source = "./modules/queue"

  queue_name               = "${var.name_prefix}-notifications"
  kms_key_arn              = local.kms_key_arn
  consumer_timeout_seconds = var.functions.notifier.timeout
  max_receive_count        = var.notify_attempts + 2
  # SQS's maximum (14 days): longer than the attempts can spread over
  # (var.notify_horizon_seconds, at most 7 days), so no message expires
  # while its notification may still be retried.
  message_retention_seconds = 1209600
  tags                      = local.tags
}

resource "aws_lambda_event_source_mapping" "notifications" {
  event_source_arn                   = module.notify_queue.queue_arn
  function_name                      = module.function["notifier"].function_arn
  batch_size                         = 10
  maximum_batching_window_in_seconds = 1
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.notifier_max_concurrency
  }

  tags = local.tags
}
