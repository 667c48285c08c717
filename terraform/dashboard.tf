# The dashboard: a private bucket behind CloudFront, which also routes /api/* to
# the HTTP API so the dashboard and the API share an origin.

locals {
  dashboard_dist_dir = coalesce(var.dashboard_dist_dir, "${path.module}/../frontend/dist")
}

module "dashboard" {
  source = "./modules/dashboard"

  bucket_name  = "${var.name_prefix}-dashboard-${local.account_id}-${local.region}"
  dist_dir     = local.dashboard_dist_dir
  api_endpoint = module.http_api.api_endpoint
  distribution = var.dashboard
  tags         = local.tags
}
