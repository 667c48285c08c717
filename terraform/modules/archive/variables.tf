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

variable "stream_name" {
  description = "Name of the Firehose delivery stream the webhook writes the archive through."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_.-]{1,64}$", var.stream_name))
    error_message = "stream_name must be 1-64 of letters, digits, '_', '.', '-'."
  }
}

variable "prefix" {
  description = "Key prefix of the batched objects (the webhook's records); Firehose adds YYYY/MM/DD/HH/. The readers' prefix (BatchedS3Archive)."
  type        = string
  default     = "batched/"

  validation {
    condition     = can(regex("^[a-z0-9-]+/$", var.prefix))
    error_message = "prefix must be lowercase letters, digits and '-', ending in '/'."
  }
}

variable "error_prefix" {
  description = "Key prefix of the records Firehose could not process (its error output), apart from the archive."
  type        = string
  default     = "firehose-errors/"

  validation {
    condition     = can(regex("^[a-z0-9-]+/$", var.error_prefix))
    error_message = "error_prefix must be lowercase letters, digits and '-', ending in '/'."
  }
}

variable "buffering_size_mb" {
  description = "Firehose writes an object when this many MiB of records have arrived (1-128)."
  type        = number
  default     = 128

  validation {
    condition     = var.buffering_size_mb >= 1 && var.buffering_size_mb <= 128
    error_message = "buffering_size_mb must be from 1 to 128."
  }
}

variable "buffering_interval_seconds" {
  description = "Firehose writes an object at the latest this long after its first record (0-900): the PUTs of a quiet month, and how long a delivery takes to reach S3."
  type        = number
  default     = 300

  validation {
    condition     = var.buffering_interval_seconds >= 0 && var.buffering_interval_seconds <= 900
    error_message = "buffering_interval_seconds must be from 0 to 900."
  }
}

variable "log_retention_days" {
  description = "Retention of the stream's delivery error log group."
  type        = number
  default     = 30
}
