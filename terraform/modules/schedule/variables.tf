variable "name" {
  description = "Name of the schedule (and prefix of its role and dead-letter queue)."
  type        = string
}

variable "description" {
  description = "What the schedule does, for its and its role's descriptions (\"run the integrity check\")."
  type        = string
}

variable "schedule_expression" {
  description = "When the schedule fires: rate(...) or cron(...) in EventBridge Scheduler syntax."
  type        = string
  default     = "rate(15 minutes)"

  validation {
    condition     = can(regex("^(rate\\(\\d+ (minute|minutes|hour|hours|day|days)\\)|cron\\(.+\\))$", var.schedule_expression))
    error_message = "schedule_expression must be rate(N minutes|hours|days) or cron(...)."
  }
}

variable "target_function_arn" {
  description = "ARN of the function the schedule invokes."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer managed KMS key of the schedule."
  type        = string
}

variable "enabled" {
  description = "Whether the schedule fires."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for the schedule's resources."
  type        = map(string)
  default     = {}
}
