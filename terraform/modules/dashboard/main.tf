# The dashboard: static files in a private bucket, served by CloudFront
# through origin access control. /api/* goes to the HTTP API through the same
# distribution (uncached, every viewer header but Host forwarded, so the
# bearer token reaches the function): the dashboard calls its own origin and
# needs no CORS.

locals {
  api_domain = trimsuffix(trimprefix(var.api_endpoint, "https://"), "/")
  files      = fileexists("${var.dist_dir}/index.html") ? fileset(var.dist_dir, "**") : toset([])
  mime_types = {
    css   = "text/css; charset=utf-8"
    html  = "text/html; charset=utf-8"
    ico   = "image/x-icon"
    js    = "text/javascript; charset=utf-8"
    json  = "application/json"
    map   = "application/json"
    png   = "image/png"
    svg   = "image/svg+xml"
    txt   = "text/plain; charset=utf-8"
    webp  = "image/webp"
    woff  = "font/woff"
    woff2 = "font/woff2"
  }

  # AWS managed CloudFront policies.
  caching_optimized      = "658327ea-f89d-4fab-a63d-7e88639e58f6"
  caching_disabled       = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
  all_viewer_except_host = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
}

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:The bucket holds only the public dashboard build and is read only by CloudFront; requests are visible in CloudFront's metrics and in the API's access logs.
  #checkov:skip=CKV_AWS_144:The contents are a build artefact, re-uploaded by every deploy; replication would add nothing.
  #checkov:skip=CKV2_AWS_62:Nothing consumes object events for a static site.
  #checkov:skip=CKV_AWS_145:The files are the public dashboard build (no data); SSE-S3 encrypts them at rest without a KMS grant to CloudFront.
  bucket        = var.bucket_name
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket                  = aws_s3_bucket.this.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    id     = "expire-replaced-builds"
    status = "Enabled"
    filter {}

    noncurrent_version_expiration {
      noncurrent_days = 7
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_cloudfront_origin_access_control" "this" {
  name                              = var.bucket_name
  description                       = "Octoscope dashboard bucket"
  origin_access_control_origin_type = "s3"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

# Security headers on every response, the API's included.
resource "aws_cloudfront_response_headers_policy" "this" {
  #checkov:skip=CKV_AWS_259:HSTS is sent for two years with includeSubDomains; only the `preload` flag is off, because preloading commits the operator's whole registrable domain (hstspreload.org) and is not a module's decision.
  name    = "${var.bucket_name}-security"
  comment = "Octoscope dashboard security headers"

  security_headers_config {
    strict_transport_security {
      access_control_max_age_sec = 63072000
      include_subdomains         = true
      preload                    = false
      override                   = true
    }
    content_type_options {
      override = true
    }
    frame_options {
      frame_option = "DENY"
      override     = true
    }
    referrer_policy {
      referrer_policy = "no-referrer"
      override        = true
    }
    content_security_policy {
      content_security_policy = "default-src 'self'; img-src 'self' data: https://avatars.githubusercontent.com; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
      override                = false
    }
  }
}

resource "aws_cloudfront_distribution" "this" {
  #checkov:skip=CKV_AWS_68:WAF costs at least $5/month plus $0.60 per million requests against a stack that idles at ~$1; the API behind /api/* is throttled at API Gateway and needs a bearer token or JWT. Attach one with web_acl_id.
  #checkov:skip=CKV2_AWS_47:No WAF by default (see CKV_AWS_68; web_acl_id attaches one), so no Log4j rule set; nothing behind the distribution runs Java.
  #checkov:skip=CKV_AWS_86:CloudFront standard logs need a log bucket with ACLs enabled; the API's requests are already in its access log and the static files carry no data.
  #checkov:skip=CKV_AWS_310:Single-region stack: there is no second origin to fail over to.
  #checkov:skip=CKV_AWS_174:With no custom domain the *.cloudfront.net default certificate is used, whose TLS policy CloudFront fixes; with acm_certificate_arn set the distribution requires TLSv1.2_2021.
  #checkov:skip=CKV_AWS_374:Octoscope's users are the organisation's engineers wherever they work; a geo restriction is a policy choice left to the operator (attach a WAF or edit restrictions).
  #checkov:skip=CKV2_AWS_42:A custom domain and certificate are optional (aliases, acm_certificate_arn); the default certificate is valid for *.cloudfront.net.
  enabled             = true
  comment             = "Octoscope dashboard (${var.bucket_name})"
  default_root_object = "index.html"
  price_class         = var.distribution.price_class
  aliases             = var.distribution.aliases
  web_acl_id          = var.distribution.web_acl_id
  http_version        = "http2and3"
  is_ipv6_enabled     = true

  origin {
    origin_id                = "dashboard"
    domain_name              = aws_s3_bucket.this.bucket_regional_domain_name
    origin_access_control_id = aws_cloudfront_origin_access_control.this.id
  }

  origin {
    origin_id   = "api"
    domain_name = local.api_domain

    custom_origin_config {
      http_port              = 80
      https_port             = 443
      origin_protocol_policy = "https-only"
      origin_ssl_protocols   = ["TLSv1.2"]
    }
  }

  default_cache_behavior {
    target_origin_id           = "dashboard"
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD"]
    cached_methods             = ["GET", "HEAD"]
    compress                   = true
    cache_policy_id            = local.caching_optimized
    response_headers_policy_id = aws_cloudfront_response_headers_policy.this.id
  }

  ordered_cache_behavior {
    path_pattern           = "/api/*"
    target_origin_id       = "api"
    viewer_protocol_policy = "https-only"
    # Every method: the notification rules are written with POST, PUT and
    # DELETE (CloudFront offers no smaller set holding them); the HTTP API
    # routes only those of /api/rules, and nothing under /api is cached.
    allowed_methods            = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]
    cached_methods             = ["GET", "HEAD"]
    compress                   = true
    cache_policy_id            = local.caching_disabled
    origin_request_policy_id   = local.all_viewer_except_host
    response_headers_policy_id = aws_cloudfront_response_headers_policy.this.id
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    cloudfront_default_certificate = var.distribution.acm_certificate_arn == null
    acm_certificate_arn            = var.distribution.acm_certificate_arn
    ssl_support_method             = var.distribution.acm_certificate_arn == null ? null : "sni-only"
    minimum_protocol_version       = var.distribution.acm_certificate_arn == null ? "TLSv1" : "TLSv1.2_2021"
  }

  tags = var.tags
}

data "aws_iam_policy_document" "bucket" {
  statement {
    sid       = "CloudFrontReadsThroughOac"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.this.arn}/*"]
    principals {
      type        = "Service"
      identifiers = ["cloudfront.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "AWS:SourceArn"
      values   = [aws_cloudfront_distribution.this.arn]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]
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

resource "aws_s3_bucket_policy" "this" {
  bucket     = aws_s3_bucket.this.id
  policy     = data.aws_iam_policy_document.bucket.json
  depends_on = [aws_s3_bucket_public_access_block.this]
}

# The build: Vite's content-hashed assets/ are cached for a year, everything
# else (index.html) is revalidated on every load, so a deploy needs no invalidation.
resource "aws_s3_object" "file" {
  #checkov:skip=CKV_AWS_186:Public dashboard files (no data), encrypted with the bucket's SSE-S3 default; see CKV_AWS_145 on the bucket.
  for_each = local.files

  bucket        = aws_s3_bucket.this.id
  key           = each.value
  source        = "${var.dist_dir}/${each.value}"
  etag          = filemd5("${var.dist_dir}/${each.value}")
  content_type  = lookup(local.mime_types, lower(element(split(".", each.value), length(split(".", each.value)) - 1)), "application/octet-stream")
  cache_control = startswith(each.value, "assets/") ? "public, max-age=31536000, immutable" : "no-cache"
}
