# Completeness: what repairs the store when webhooks are lost.
#
#   Scheduler ──▶ integrity-check ──gaps──▶ SQS gap queue ──▶ dispatcher ──RunTask──▶ Fargate batch-job
#                                            └─ DLQ after 5 receives
#
# The integrity check compares GitHub with the store on a schedule, asks GitHub
# to redeliver failed deliveries and queues the gaps; the dispatcher coalesces
# them and runs the resync job.

module "integrity_schedule" {
  source = "./modules/schedule"

  name                = "${var.name_prefix}-integrity-check"
  description         = "run the integrity check"
  schedule_expression = var.integrity_check_schedule
  target_function_arn = module.function["integrity_check"].function_arn
  kms_key_arn         = local.kms_key_arn
  tags                = local.tags
}

locals {
  # The integrity-check function (lambdas.tf deploys it as module.function["integrity_check"]).
  integrity_check_function = {
    description = "Scheduled: compare GitHub with the store, redeliver failures, queue gaps"

    # local.notify_environment (notify.tf): after each check the scheduled
    # rules and the check's findings are decided into NOTE# items; the late
    # window bounds which failed resync jobs are announced.
    environment = merge(local.common_environment, local.github_environment, local.notify_environment, {
      OCTOSCOPE_GAP_QUEUE_URL = module.gap_queue.queue_url
      # With enable_search the check also compares the search index with the
      # table (at most every 6 hours) and reindexes what differs; null (unset)
      # without it. The domain's endpoint is given, not its name: the check
      # is built without the resolver (aws-sdk-opensearch, for the zip's size
      # budget) and refuses OCTOSCOPE_SEARCH_DOMAIN at init.
      OCTOSCOPE_SEARCH_DOMAIN   = null
      OCTOSCOPE_SEARCH_ENDPOINT = one(module.search[*].endpoint)
      OCTOSCOPE_SEARCH_INDEX    = var.enable_search ? local.search_index : null
    })

    policy_statements = {
      store = local.store_read_write
      # The search comparison's walk of the table (with enable_search).
      store_scan = {
        enabled   = var.enable_search
        actions   = ["dynamodb:Scan"]
        resources = [module.table.table_arn]
      }
      # The index at the endpoint given: POST (`_search` for the census and
      # a scope's keys, `_bulk` for the repair).
      search_index = {
        enabled   = var.enable_search
        actions   = ["es:ESHttpPost"]
        resources = local.search_index_arns
      }
      gap_queue = {
        actions   = ["sqs:SendMessage"] # SendMessageBatch is authorised as sqs:SendMessage
        resources = [module.gap_queue.queue_arn]
      }
      github_credentials = {
        actions   = ["ssm:GetParameter"]
        resources = module.secrets.github_parameter_arns
      }
      # SSE-KMS on the queue (SendMessage needs a data key) and the SecureString.
      stack_key = {
        actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
        resources = [local.kms_key_arn]
      }
    }
  }
}

module "gap_queue" {
  source = "./modules/queue"

  queue_name               = "${var.name_prefix}-gaps"
  kms_key_arn              = local.kms_key_arn
  consumer_timeout_seconds = var.functions.dispatcher.timeout
  max_receive_count        = 5
  tags                     = local.tags
}

locals {
  # The dispatcher function (lambdas.tf deploys it as module.function["dispatcher"]).
  dispatcher_function = {
    description = "Gap queue consumer: coalesce, lock, RunTask the resync job"

    environment = merge(local.common_environment, {
      OCTOSCOPE_ECS_CLUSTER          = module.batch.cluster_name
      OCTOSCOPE_ECS_TASK_DEFINITION  = module.batch.task_definition_family
      OCTOSCOPE_ECS_CONTAINER        = module.batch.container_name
      OCTOSCOPE_ECS_SUBNETS          = join(",", var.batch_network.subnet_ids)
      OCTOSCOPE_ECS_SECURITY_GROUPS  = module.batch.security_group_id
      OCTOSCOPE_ECS_ASSIGN_PUBLIC_IP = tostring(var.batch_network.assign_public_ip)
    })

    policy_statements = {
      store = local.store_read_write
      run_task = {
        actions   = ["ecs:RunTask"]
        resources = [module.batch.task_definition_family_arn]
        conditions = [{
          test     = "ArnEquals"
          variable = "ecs:cluster"
          values   = [module.batch.cluster_arn]
        }]
      }
      # RunTask with tags (the job id) tags the new task.
      tag_task = {
        actions   = ["ecs:TagResource"]
        resources = [module.batch.task_arn_pattern]
        conditions = [{
          test     = "StringEquals"
          variable = "ecs:CreateAction"
          values   = ["RunTask"]
        }]
      }
      # RunTask hands the task and execution roles to ECS.
      pass_roles = {
        actions   = ["iam:PassRole"]
        resources = [module.batch.task_role_arn, module.batch.execution_role_arn]
        conditions = [{
          test     = "StringEquals"
          variable = "iam:PassedToService"
          values   = ["ecs-tasks.amazonaws.com"]
        }]
      }
      # Lambda's SQS event source polls with the function's role.
      gap_queue_events = {
        actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
        resources = [module.gap_queue.queue_arn]
      }
      # The queue's SSE-KMS key (received messages are decrypted).
      stack_key = {
        actions   = ["kms:Decrypt"]
        resources = [local.kms_key_arn]
      }
    }
  }
}

resource "aws_lambda_event_source_mapping" "gaps" {
  event_source_arn                   = module.gap_queue.queue_arn
  function_name                      = module.function["dispatcher"].function_arn
  batch_size                         = 10
  maximum_batching_window_in_seconds = 5
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.dispatcher_max_concurrency
  }

  tags = local.tags
}

# The resync job (batch-job on Fargate), run by the dispatcher.

module "batch" {
  source = "./modules/batch"

  name                    = "${var.name_prefix}-resync"
  image_tag               = var.batch_image_tag
  task_size               = var.batch_task
  vpc_id                  = var.batch_network.vpc_id
  kms_key_arn             = local.kms_key_arn
  log_retention_days      = var.log_retention_days
  force_delete_repository = !var.deletion_protection
  tags                    = local.tags

  # OCTOSCOPE_JOB_ID is set per task by the dispatcher's RunTask override
  # (or `upgrade`, by hand: shared/docs/dynamodb.md, "Upgrading").
  # local.notify_environment (notify.tf): what the resync finds is decided
  # `late` into NOTE# items, within the late window.
  environment = merge(local.common_environment, local.github_environment, local.notify_environment, {
    # The reindex job (OCTOSCOPE_JOB_ID=reindex, run by hand): the search
    # domain by name and the index; null (unset) without enable_search.
    OCTOSCOPE_SEARCH_DOMAIN   = one(module.search[*].domain_name)
    OCTOSCOPE_SEARCH_ENDPOINT = null
    OCTOSCOPE_SEARCH_INDEX    = var.enable_search ? local.search_index : null
  })

  task_policy_statements = {
    store = local.store_read_write
    # The upgrade job's Scan of items written under an earlier key layout.
    # The upgrade job's and the reindex job's walks of the table.
    store_upgrade = {
      actions   = ["dynamodb:Scan"]
      resources = [module.table.table_arn]
    }
    # The reindex job (with enable_search): the domain's endpoint, then the
    # index: HEAD (does it exist), PUT (create it), POST (`_bulk`).
    search_domain = {
      enabled   = var.enable_search
      actions   = ["es:DescribeDomain"]
      resources = local.search_domain_arns
    }
    search_index = {
      enabled   = var.enable_search
      actions   = ["es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut"]
      resources = local.search_index_arns
    }
    github_credentials = {
      actions   = ["ssm:GetParameter"]
      resources = module.secrets.github_parameter_arns
    }
    # The SecureString's key (GetParameter with decryption).
    stack_key = {
      actions   = ["kms:Decrypt"]
      resources = [local.kms_key_arn]
    }
  }
}
