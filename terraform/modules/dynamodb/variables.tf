variable "table_name" {
  description = "Name of the table."
  type        = string
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
