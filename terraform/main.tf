# Octoscope on AWS: one `terraform apply` for the whole serverless stack.
#
#   GitHub ──POST /webhook──▶ HTTP API ──▶ webhook ──▶ DynamoDB + Firehose ──▶ S3 archive
#   browser ──▶ CloudFront ──/──▶ S3 (dashboard)
#                          └─/api/*──▶ HTTP API ──▶ api ──▶ DynamoDB
#   Scheduler ──▶ integrity-check ──gaps──▶ SQS ──▶ dispatcher ──RunTask──▶ Fargate batch-job
#   DynamoDB stream ──▶ ledger-stream (listings, counts, rollups)
#                   └─▶ indexer ──_bulk──▶ OpenSearch Service (only with enable_search)
#
# The root module has one file per concern:
#
#   locals.tf        names, tags, the stack's key, the IAM action lists and the
#                    environment every function shares
#   storage.tf       the KMS key, the DynamoDB table, the raw archive bucket
#   secrets.tf       the SSM parameters (webhook secret, API tokens, GitHub credentials)
#   ingest.tf        the webhook function's settings (POST /webhook)
#   api.tf           the api function's settings (GET /api/*)
#   http_api.tf      the HTTP API in front of both
#   completeness.tf  integrity check, its schedule, the gap queue, the dispatcher
#                    and the Fargate resync job
#   ledger_stream.tf the ledger-stream function's settings and its stream event source
#   search.tf        with enable_search: the OpenSearch domain, the indexer
#                    function's settings and its stream event source
#   lambdas.tf       the functions, one module call over those settings
#   dashboard.tf     the dashboard bucket and CloudFront
#
# Each function's permissions are written in its file, next to the function, as
# the exact actions its code calls on the exact resources it touches;
# terraform/tests/test_agreement.py checks them (and the environment variables)
# against the Rust workspace.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
