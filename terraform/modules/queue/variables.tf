variable "queue_name" {
  description = "Name of the gap queue; the dead-letter queue is <queue_name>-dlq."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for both queues."
  type        = string
}

variable "consumer_timeout_seconds" {
  description = "Timeout of the consuming function (the dispatcher); the visibility timeout is six times this, as AWS advises for Lambda event sources."
  type        = number

  validation {
    condition     = var.consumer_timeout_seconds >= 1 && var.consumer_timeout_seconds * 6 <= 43200
    error_message = "consumer_timeout_seconds must be at least 1 and at most 7200 (six times it must fit SQS's 12-hour visibility maximum)."
  }
}

variable "max_receive_count" {
  description = "Receives before a message moves to the dead-letter queue."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be between 1 and 1000."
  }
}

variable "message_retention_seconds" {
  description = "How long a gap message is kept on the queue (the next integrity check finds the gap again anyway)."
  type        = number
  default     = 345600

  validation {
    condition     = var.message_retention_seconds >= 60 && var.message_retention_seconds <= 1209600
    error_message = "message_retention_seconds must be between 60 and 1209600 (14 days)."
  }
}

variable "tags" {
  description = "Tags for both queues."
  type        = map(string)
  default     = {}
}
