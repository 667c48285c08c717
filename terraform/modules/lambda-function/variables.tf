variable "function_name" {
  description = "Name of the Lambda function (also names its role and log group)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,64}$", var.function_name))
    error_message = "function_name must be 1-64 characters of letters, digits, '-' or '_'."
  }
}

variable "description" {
  description = "What the function does (shown in the console)."
  type        = string
  default     = ""
}

variable "zip_path" {
  description = "Path to the function's bootstrap.zip as built by `make lambdas` (cargo lambda build --release --arm64 --output-format zip)."
  type        = string

  validation {
    condition     = endswith(var.zip_path, ".zip")
    error_message = "zip_path must point at a .zip artefact (target/lambda/<name>/bootstrap.zip)."
  }
}

variable "sizing" {
  description = "Memory in MB (128-10240; CPU scales with it), timeout in seconds (1-900) and reserved concurrency (reserving also caps; -1 leaves it unreserved, which new accounts with a 10-execution quota need)."
  type = object({
    memory_size                    = optional(number, 256)
    timeout                        = optional(number, 30)
    reserved_concurrent_executions = optional(number, -1)
  })
  default = {}

  validation {
    condition     = var.sizing.memory_size >= 128 && var.sizing.memory_size <= 10240 && var.sizing.timeout >= 1 && var.sizing.timeout <= 900 && var.sizing.reserved_concurrent_executions >= -1
    error_message = "sizing: memory_size must be 128-10240 MB, timeout 1-900 seconds, reserved_concurrent_executions -1 (unreserved) or more."
  }
}

variable "environment" {
  description = "Environment variables; entries whose value is null are left out, so optional settings can be passed as null."
  type        = map(string)
  default     = {}
}

variable "policy_statements" {
  description = "The function's own IAM permissions: one entry per statement, each exactly the actions its code calls on exactly the resources it touches. Logging (and X-Ray when enabled) is added by the module."
  type = map(object({
    actions   = list(string)
    resources = list(string)
    enabled   = optional(bool, true)
    conditions = optional(list(object({
      test     = string
      variable = string
      values   = list(string)
    })), [])
  }))
  default = {}

  validation {
    condition     = alltrue([for s in values(var.policy_statements) : !contains(s.actions, "*") && alltrue([for a in s.actions : !endswith(a, ":*")])])
    error_message = "policy_statements must name actions one by one: no '*' or 'service:*'."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key encrypting the environment variables and the log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the function's CloudWatch log group, in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)."
  }
}

variable "tracing_enabled" {
  description = "Active X-Ray tracing (sampled); when false the function passes through an upstream trace header only."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for every resource of the function."
  type        = map(string)
  default     = {}
}
