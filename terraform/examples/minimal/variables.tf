variable "github_token_parameter_name" {
  description = "SecureString parameter holding a GitHub token (create it first: see terraform/README.md)."
  type        = string
  default     = "/octoscope/github-token"

  validation {
    condition     = can(regex("^(/?[A-Za-z0-9_.-]+)+$", var.github_token_parameter_name))
    error_message = "github_token_parameter_name must be an SSM parameter name such as /octoscope/github-token."
  }
}
