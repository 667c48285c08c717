variable "bucket_name" {
  description = "Name of the dashboard bucket (globally unique)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name (3-63 lowercase letters, digits, '.', '-')."
  }
}

variable "dist_dir" {
  description = "The built dashboard (frontend/dist from `make dashboard`); every file under it is uploaded. A missing or empty directory uploads nothing."
  type        = string
}

variable "api_endpoint" {
  description = "Base URL of the HTTP API (https://<id>.execute-api.<region>.amazonaws.com); CloudFront routes /api/* there, so the dashboard calls its own origin."
  type        = string

  validation {
    condition     = startswith(var.api_endpoint, "https://")
    error_message = "api_endpoint must be an https:// URL."
  }
}

variable "distribution" {
  description = "CloudFront settings: the price class (PriceClass_100, PriceClass_200 or PriceClass_All), custom domain names (aliases, which need acm_certificate_arn: a certificate in us-east-1; none serves on the *.cloudfront.net name) and the ARN of a WAFv2 web ACL (scope CLOUDFRONT) to attach, or none."
  type = object({
    price_class         = optional(string, "PriceClass_100")
    aliases             = optional(list(string), [])
    acm_certificate_arn = optional(string)
    web_acl_id          = optional(string)
  })
  default = {}

  validation {
    condition     = contains(["PriceClass_100", "PriceClass_200", "PriceClass_All"], var.distribution.price_class)
    error_message = "distribution.price_class must be PriceClass_100, PriceClass_200 or PriceClass_All."
  }

  validation {
    condition     = var.distribution.acm_certificate_arn == null || can(regex("^arn:aws[a-z-]*:acm:us-east-1:", var.distribution.acm_certificate_arn))
    error_message = "distribution.acm_certificate_arn must be an ACM certificate in us-east-1 (CloudFront's requirement)."
  }
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the bucket with its files."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for the bucket and the distribution."
  type        = map(string)
  default     = {}
}
