variable "name" {
  description = "Name of the cluster, task definition family, ECR repository and log group."
  type        = string
}

variable "container_name" {
  description = "Name of the container in the task definition (the dispatcher overrides its environment)."
  type        = string
  default     = "batch-job"
}

variable "image_tag" {
  description = "Tag of the batch-job image in the ECR repository (tags are immutable: use a git revision)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag))
    error_message = "image_tag must be a valid image tag."
  }
}

variable "task_size" {
  description = "Task CPU units (a Fargate size: 256, 512, 1024, 2048, 4096, 8192 or 16384) and memory in MiB (512-122880, valid for the chosen cpu)."
  type = object({
    cpu    = optional(number, 512)
    memory = optional(number, 1024)
  })
  default = {}

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.task_size.cpu) && var.task_size.memory >= 512 && var.task_size.memory <= 122880
    error_message = "task_size: cpu must be a Fargate CPU size (256, 512, 1024, 2048, 4096, 8192 or 16384), memory between 512 and 122880 MiB."
  }
}

variable "environment" {
  description = "Environment of the batch-job container; null values are left out. OCTOSCOPE_JOB_ID is set per run by the dispatcher."
  type        = map(string)
  default     = {}
}

variable "task_policy_statements" {
  description = "The task role's permissions (what the batch-job binary calls), in the same shape as the Lambda module's policy_statements."
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

  validation {
    condition     = alltrue([for s in values(var.task_policy_statements) : !contains(s.actions, "*") && alltrue([for a in s.actions : !endswith(a, ":*")])])
    error_message = "task_policy_statements must name actions one by one: no '*' or 'service:*'."
  }
}

variable "vpc_id" {
  description = "VPC of the tasks' security group."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer managed KMS key of the ECR repository and the log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the task log group, in days."
  type        = number
  default     = 30
}

variable "image_retention_count" {
  description = "How many images the ECR repository keeps."
  type        = number
  default     = 10

  validation {
    condition     = var.image_retention_count >= 1
    error_message = "image_retention_count must be at least 1."
  }
}

variable "force_delete_repository" {
  description = "Let `terraform destroy` delete the ECR repository with its images."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for every resource of the batch job."
  type        = map(string)
  default     = {}
}
