# The archive's write path: the webhook function puts each delivery as one
# record (a JSON line, body deflated; shared/src/adapters/aws/archive_record.rs)
# to this Direct PUT delivery stream, which batches records into objects under
# var.prefix, one hour per key prefix. A record Firehose has accepted is
# stored durably (across availability zones) until it is in S3, so the
# webhook acknowledges GitHub after PutRecord, not after an S3 write.
#
# Buffering: an object is written when var.buffering_size_mb of records have
# arrived or var.buffering_interval_seconds have passed since the first one,
# whichever comes first. Each object is one S3 PUT, so the interval bounds the
# PUTs of a quiet or ordinary month (300 s: at most 288 a day, $0.04 a month)
# whatever the delivery count, and the size (128 MiB, the maximum) is reached
# only above ~0.4 MB/s of records. The interval is also how long a delivery
# takes to appear in S3: `replay` should start at least that long after the
# webhook's last acknowledged delivery (docs: shared/docs/aws-adapters.md).

locals {
  stream_name = var.stream_name
  # Firehose's own log group for delivery errors (a failing S3 PutObject, a
  # key it cannot use): the stream retries them for up to 24 hours.
  firehose_log_group = "/aws/kinesisfirehose/${var.stream_name}"
}

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

resource "aws_cloudwatch_log_group" "firehose" {
  #checkov:skip=CKV_AWS_338:Delivery error logs only; retention is a variable (default 30 days) and the deliveries themselves are in the archive bucket.
  name              = local.firehose_log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_cloudwatch_log_stream" "firehose" {
  name           = "DestinationDelivery"
  log_group_name = aws_cloudwatch_log_group.firehose.name
}

data "aws_iam_policy_document" "firehose_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["firehose.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "firehose" {
  name_prefix        = "${substr(var.stream_name, 0, 30)}-"
  description        = "Firehose delivery of the raw archive stream ${var.stream_name} to S3"
  assume_role_policy = data.aws_iam_policy_document.firehose_assume.json
  tags               = var.tags
}

# What Firehose's S3 destination calls, and nothing more: the object writes
# (multipart for large objects) under the stream's two prefixes, the bucket
# reads it makes before writing, the stack key through S3 only, and its error
# log stream.
data "aws_iam_policy_document" "firehose" {
  statement {
    sid       = "WriteObjects"
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
    resources = ["${aws_s3_bucket.this.arn}/${var.prefix}*", "${aws_s3_bucket.this.arn}/${var.error_prefix}*"]
  }
  statement {
    sid       = "Bucket"
    actions   = ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"]
    resources = [aws_s3_bucket.this.arn]
  }
  statement {
    sid       = "BucketKeyThroughS3"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${data.aws_region.current.region}.amazonaws.com"]
    }
    condition {
      test     = "StringLike"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values   = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]
    }
  }
  statement {
    sid       = "ErrorLog"
    actions   = ["logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.firehose.arn}:log-stream:${aws_cloudwatch_log_stream.firehose.name}"]
  }
}

resource "aws_iam_role_policy" "firehose" {
  name   = "deliver-to-archive"
  role   = aws_iam_role.firehose.id
  policy = data.aws_iam_policy_document.firehose.json
}

resource "aws_kinesis_firehose_delivery_stream" "this" {
  name        = local.stream_name
  destination = "extended_s3"
  tags        = var.tags

  # Records at rest in Firehose (up to 24 hours while S3 is retried) are
  # encrypted with the stack's key; Firehose makes its own grant on it.
  server_side_encryption {
    enabled  = true
    key_type = "CUSTOMER_MANAGED_CMK"
    key_arn  = var.kms_key_arn
  }

  extended_s3_configuration {
    role_arn   = aws_iam_role.firehose.arn
    bucket_arn = aws_s3_bucket.this.arn
    # Firehose's own hourly layout, written out: <prefix>YYYY/MM/DD/HH/ (UTC,
    # the time Firehose received the records); `replay` lists it in order.
    prefix              = "${var.prefix}!{timestamp:yyyy/MM/dd/HH}/"
    error_output_prefix = "${var.error_prefix}!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/"
    buffering_size      = var.buffering_size_mb
    buffering_interval  = var.buffering_interval_seconds
    # gzip over the whole object: the bodies are already deflated, so this
    # takes off the JSON and base64 around them (about a quarter); the
    # reader takes gzip or plain objects.
    compression_format = "GZIP"
    kms_key_arn        = var.kms_key_arn

    cloudwatch_logging_options {
      enabled         = true
      log_group_name  = aws_cloudwatch_log_group.firehose.name
      log_stream_name = aws_cloudwatch_log_stream.firehose.name
    }
  }

  depends_on = [aws_iam_role_policy.firehose]
}
