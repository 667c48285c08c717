variable "name" {
  description = "Name of the HTTP API."
  type        = string
}

variable "webhook_function" {
  description = "The webhook function (POST /webhook)."
  type = object({
    function_name = string
    invoke_arn    = string
  })
}

variable "api_function" {
  description = "The api function (/api/*)."
  type = object({
    function_name = string
    invoke_arn    = string
  })
}

variable "api_route_keys" {
  description = "Routes served by the api function: every GET under /api, and the writes of the notification rules (create, replace, delete, test, rotate the secret)."
  type        = list(string)
  default = [
    "GET /api/{proxy+}",
    "POST /api/rules",
    "PUT /api/rules/{id}",
    "DELETE /api/rules/{id}",
    "POST /api/rules/{id}/test",
    "POST /api/rules/{id}/rotate-secret",
  ]

  validation {
    condition     = alltrue([for r in var.api_route_keys : can(regex("^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|ANY) /api(/.*)?$", r))])
    error_message = "api_route_keys must be route keys under /api, e.g. \"GET /api/{proxy+}\"."
  }
}

variable "jwt_authorizer" {
  description = "Authenticate /api/* at API Gateway with a JWT authorizer (OIDC issuer and audiences) instead of the function's bearer tokens; null leaves authentication to the function."
  type = object({
    issuer   = string
    audience = list(string)
  })
  default = null

  validation {
    condition     = var.jwt_authorizer == null || try(startswith(var.jwt_authorizer.issuer, "https://") && length(var.jwt_authorizer.audience) > 0, false)
    error_message = "jwt_authorizer.issuer must be an https:// URL and audience must name at least one audience."
  }
}

variable "throttling_burst_limit" {
  description = "Burst limit (requests) of every route."
  type        = number
  default     = 200

  validation {
    condition     = var.throttling_burst_limit >= 1
    error_message = "throttling_burst_limit must be at least 1."
  }
}

variable "throttling_rate_limit" {
  description = "Steady-state limit (requests per second) of every route."
  type        = number
  default     = 100

  validation {
    condition     = var.throttling_rate_limit >= 1
    error_message = "throttling_rate_limit must be at least 1."
  }
}

variable "cors_allow_origins" {
  description = "Origins allowed to call the API from a browser. Empty when the dashboard reaches the API through its own CloudFront distribution (same origin)."
  type        = list(string)
  default     = []
}

variable "kms_key_arn" {
  description = "Customer managed KMS key of the access log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the access log group, in days."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags for the API and its log group."
  type        = map(string)
  default     = {}
}
