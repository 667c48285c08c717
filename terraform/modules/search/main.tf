# The search index's home: one Amazon OpenSearch Service domain, written by
# the indexer function (the table's stream) and read by the api, both with
# SigV4-signed HTTPS requests under their own roles.
#
# Size: one data node (default t3.small.search: 2 vCPU, 2 GiB, a 1 GiB JVM
# heap) with a 10 GiB gp3 volume. The index is derived data: every document is
# rebuilt from the table (a change of its item writes it again, under external
# versioning), so a single node with no replica, no zone awareness and no
# dedicated master is the smallest domain that serves the product; losing it
# loses no data of record. 10 GiB holds the target organisation's documents
# (pull requests, reviews, commits, repositories, teams, people: short texts)
# several times over, and is the EBS minimum of the T3 sizes and what the
# free tier covers. t3.medium.search (4 GiB, a 2 GiB heap) is the next step
# when searches with facets over a million documents get slow.
#
# Access control: IAM only. The domain's resource policy names exactly two
# roles (the indexer's: HEAD/PUT/POST on the index; the api's: POST on the
# index, a search with its query in the body), every request must be
# SigV4-signed by one of them, and the endpoint
# is HTTPS only (TLS 1.2+). Fine-grained access control (the security plugin)
# is off: it would add users, role mappings and audit logs, which need a master
# user and the security REST API outside Terraform, for a domain with one
# index and two service callers whose rights IAM already separates. It can be
# turned on later on an existing domain (then it cannot be turned off).
#
# Network: a public endpoint, not a VPC domain. The functions run outside any
# VPC (see modules/lambda-function); a VPC domain would put them in one, with
# NAT or endpoints to reach DynamoDB, SQS and GitHub. Unsigned requests or
# requests from any other principal are refused by the resource policy.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  # Written out (not the resource's attribute) so that the access and log
  # policies, which the domain's creation needs, do not depend on the domain.
  domain_arn = "arn:${data.aws_partition.current.partition}:es:${data.aws_region.current.region}:${local.account_id}:domain/${var.domain_name}"
  index_arns = ["${local.domain_arn}/${var.index_name}", "${local.domain_arn}/${var.index_name}/*"]

  # The logs the domain publishes. Slow logs are written only for requests
  # over the index's slow log thresholds (none by default: set them with
  # `PUT /<index>/_settings` while investigating); error logs always.
  log_types = {
    INDEX_SLOW_LOGS     = "index-slow"
    SEARCH_SLOW_LOGS    = "search-slow"
    ES_APPLICATION_LOGS = "error"
  }
}

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_338:Operational logs of a derived index; retention is a variable (default 30 days) and the data of record is the DynamoDB table.
  for_each = local.log_types

  name              = "/aws/opensearch/${var.domain_name}/${each.value}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

# OpenSearch Service writes its logs with its service principal: it may
# create streams and put events in these groups only, for this domain only.
data "aws_iam_policy_document" "logs" {
  statement {
    sid       = "OpenSearchPublishesLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for g in aws_cloudwatch_log_group.this : "${g.arn}:*"]
    principals {
      type        = "Service"
      identifiers = ["es.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [local.domain_arn]
    }
  }
}

resource "aws_cloudwatch_log_resource_policy" "this" {
  policy_name     = "${var.domain_name}-opensearch-logs"
  policy_document = data.aws_iam_policy_document.logs.json
}

# Who may send requests to the domain (besides what their own IAM policies
# say): the writers and the readers, on the index only.
data "aws_iam_policy_document" "access" {
  statement {
    sid       = "IndexerWritesTheIndex"
    actions   = ["es:ESHttpHead", "es:ESHttpPut", "es:ESHttpPost"]
    resources = local.index_arns
    principals {
      type        = "AWS"
      identifiers = var.writer_role_arns
    }
  }

  dynamic "statement" {
    for_each = length(var.reader_role_arns) > 0 ? [1] : []
    content {
      sid       = "ApiSearchesTheIndex"
      actions   = ["es:ESHttpPost"]
      resources = local.index_arns
      principals {
        type        = "AWS"
        identifiers = var.reader_role_arns
      }
    }
  }
}

resource "aws_opensearch_domain" "this" {
  #checkov:skip=CKV_AWS_137:Not in a VPC on purpose: the functions that call it run outside any VPC (no NAT cost); the resource policy admits only the indexer's and the api's roles, with SigV4-signed requests over HTTPS.
  #checkov:skip=CKV_AWS_248:No security group applies: the domain is not in a VPC (see CKV_AWS_137); the resource policy and SigV4 decide who reaches it.
  #checkov:skip=CKV2_AWS_52:Fine-grained access control is off on purpose: one index, two service roles whose rights the IAM resource policy already separates; see the comment at the top of this file.
  #checkov:skip=CKV_AWS_317:Audit logs exist only with fine-grained access control, which is off (see above); error and slow logs are published.
  #checkov:skip=CKV_AWS_318:One data node on purpose: the index is derived from the DynamoDB table and rebuilt from it, so three dedicated masters and zone awareness would multiply the cost for no data at risk.
  #checkov:skip=CKV2_AWS_59:No dedicated master nodes on a one-node domain (see CKV_AWS_318).
  domain_name    = var.domain_name
  engine_version = var.engine_version

  cluster_config {
    instance_type            = var.instance_type
    instance_count           = 1
    zone_awareness_enabled   = false
    dedicated_master_enabled = false
  }

  ebs_options {
    ebs_enabled = true
    volume_type = "gp3"
    volume_size = var.volume_size
    # gp3's baseline, included in the storage price.
    iops       = 3000
    throughput = 125
  }

  encrypt_at_rest {
    enabled    = true
    kms_key_id = var.kms_key_arn
  }

  node_to_node_encryption {
    enabled = true
  }

  domain_endpoint_options {
    enforce_https       = true
    tls_security_policy = "Policy-Min-TLS-1-2-PFS-2023-10"
  }

  advanced_security_options {
    enabled = false
  }

  advanced_options = {
    # `_bulk` and `_msearch` may not name another index in their bodies, so
    # the index-level resources of the access policy cannot be bypassed.
    "rest.action.multi.allow_explicit_index" = "false"
  }

  # Auto-Tune is not available on T2/T3 sizes.
  auto_tune_options {
    desired_state       = "DISABLED"
    rollback_on_disable = "NO_ROLLBACK"
  }

  software_update_options {
    auto_software_update_enabled = true
  }

  dynamic "log_publishing_options" {
    for_each = local.log_types
    content {
      log_type                 = log_publishing_options.key
      cloudwatch_log_group_arn = aws_cloudwatch_log_group.this[log_publishing_options.key].arn
      enabled                  = true
    }
  }

  access_policies = data.aws_iam_policy_document.access.json

  tags = var.tags

  depends_on = [aws_cloudwatch_log_resource_policy.this]
}
