variable "name_prefix" {
  description = "Prefix of every resource name."
  type        = string
  default     = "octoscope"
}

variable "github_app" {
  description = "The GitHub App Octoscope authenticates as: its id, installation id, and the SecureString parameter holding its PEM private key."
  type = object({
    id                        = string
    installation_id           = string
    private_key_parameter     = string
    enterprise_server_api_url = optional(string)
  })

  validation {
    condition     = can(regex("^[0-9]+$", var.github_app.id)) && can(regex("^[0-9]+$", var.github_app.installation_id))
    error_message = "github_app.id and github_app.installation_id must be numbers."
  }
}

variable "tracked_orgs" {
  description = "Organisations the integrity check always covers."
  type        = list(string)
  default     = []
}

variable "tracked_repos" {
  description = "Repositories (OWNER/NAME) the integrity check always covers."
  type        = list(string)
  default     = []
}

variable "vpc_id" {
  description = "VPC of the resync tasks."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets (with a NAT route) for the resync tasks."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) > 0 && alltrue([for s in var.private_subnet_ids : startswith(s, "subnet-")])
    error_message = "private_subnet_ids must name at least one subnet (subnet-...)."
  }
}

variable "api_jwt_authorizer" {
  description = "Your OIDC provider, to authenticate /api/* with JWTs at API Gateway instead of bearer tokens; null keeps bearer tokens."
  type = object({
    issuer   = string
    audience = list(string)
  })
  default = null
}

variable "dashboard_domain" {
  description = "Custom domain of the dashboard and its ACM certificate (us-east-1); null serves on *.cloudfront.net."
  type = object({
    name                = string
    acm_certificate_arn = string
  })
  default = null
}

variable "alarm_email" {
  description = "Email address told when resync messages land in a dead-letter queue; null creates no alarm."
  type        = string
  default     = null
}
