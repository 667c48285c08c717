variable "parameter_prefix" {
  description = "Path prefix of the parameters this module creates, e.g. /octoscope."
  type        = string

  validation {
    condition     = can(regex("^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$", var.parameter_prefix))
    error_message = "parameter_prefix must be an SSM path such as /octoscope (no trailing slash)."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for the SecureString parameters."
  type        = string
}

variable "webhook_secret_parameter_name" {
  description = "An existing SecureString parameter holding the webhook secret(s); null creates <parameter_prefix>/webhook-secret with a generated secret."
  type        = string
  default     = null
}

variable "create_api_tokens" {
  description = "Whether the api function authenticates with bearer tokens (false when API Gateway's JWT authorizer does)."
  type        = bool
  default     = true
}

variable "api_tokens_parameter_name" {
  description = "An existing SecureString parameter holding the API bearer token(s); null creates <parameter_prefix>/api-tokens with a generated token."
  type        = string
  default     = null
}

variable "github_parameter_names" {
  description = "Names of the existing SecureString parameters holding the GitHub credentials (the token, or the app's private key). Terraform never reads their values."
  type        = list(string)

  validation {
    condition     = length(var.github_parameter_names) >= 1
    error_message = "At least one GitHub credential parameter is needed."
  }
}

variable "generated_secrets_version" {
  description = "Bump to have Terraform write freshly generated values into the parameters it created (this replaces the secrets: update GitHub's webhook secret and API clients afterwards)."
  type        = number
  default     = 1
}

variable "tags" {
  description = "Tags for the parameters."
  type        = map(string)
  default     = {}
}
