variable "bucket_name" {
  description = "Name of the raw archive bucket (globally unique)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name (3-63 lowercase letters, digits, '.', '-')."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for objects (with an S3 bucket key, so KMS is called once per bucket key, not per object)."
  type        = string
}

variable "transition_to_ia_days" {
  description = "Days after which archived deliveries move to S3 Standard-IA."
  type        = number
  default     = 30

  validation {
    condition     = var.transition_to_ia_days >= 30
    error_message = "S3 requires at least 30 days before a transition to Standard-IA."
  }
}

variable "transition_to_glacier_ir_days" {
  description = "Days after which archived deliveries move to S3 Glacier Instant Retrieval (still readable at once by `replay`)."
  type        = number
  default     = 90

  validation {
    condition     = var.transition_to_glacier_ir_days >= 60
    error_message = "transition_to_glacier_ir_days must be at least 60 (30 days after the Standard-IA transition)."
  }
}

variable "expiration_days" {
  description = "Days after which archived deliveries are deleted; null keeps them for ever."
  type        = number
  default     = null

  validation {
    condition     = var.expiration_days == null || try(var.expiration_days >= 1, false)
    error_message = "expiration_days must be null or at least 1."
  }
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete a non-empty bucket (every archived delivery)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for the bucket."
  type        = map(string)
  default     = {}
}
