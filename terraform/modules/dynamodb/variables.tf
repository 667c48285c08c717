variable "table_name" {
  description = "Name of the table."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{3,255}$", var.table_name))
    error_message = "table_name must be 3-255 of A-Z a-z 0-9 _ - . (DynamoDB's rule)."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for encryption at rest."
  type        = string
}

variable "deletion_protection" {
  description = "Refuse to delete the table (turn off before `terraform destroy`)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for the table."
  type        = map(string)
  default     = {}
}
