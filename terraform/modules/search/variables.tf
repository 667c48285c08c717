variable "domain_name" {
  description = "Name of the OpenSearch Service domain (3-28 of a-z 0-9 -, starting with a letter)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,27}$", var.domain_name))
    error_message = "domain_name must be 3-28 lowercase letters, digits or '-', starting with a letter."
  }
}

variable "index_name" {
  description = "The search index the functions use (OCTOSCOPE_SEARCH_INDEX): the access policy admits requests on this index only."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9_.-]{0,254}$", var.index_name))
    error_message = "index_name must be an OpenSearch index name: lowercase letters, digits, '-', '_' or '.', not starting with '-', '_' or '.'."
  }
}

variable "engine_version" {
  description = "OpenSearch engine version of the domain."
  type        = string
  default     = "OpenSearch_2.19"

  validation {
    condition     = can(regex("^OpenSearch_[0-9]+\\.[0-9]+$", var.engine_version))
    error_message = "engine_version must be OpenSearch_X.Y."
  }
}

variable "instance_type" {
  description = "Instance type of the one data node (t3.small.search: 2 GiB; t3.medium.search: 4 GiB)."
  type        = string
  default     = "t3.small.search"

  validation {
    condition     = endswith(var.instance_type, ".search")
    error_message = "instance_type must be an OpenSearch Service instance type (*.search)."
  }
}

variable "volume_size" {
  description = "Size of the data node's gp3 EBS volume, in GiB (10 is the smallest the T3 sizes take)."
  type        = number
  default     = 10

  validation {
    condition     = var.volume_size >= 10 && floor(var.volume_size) == var.volume_size
    error_message = "volume_size must be a whole number of GiB, at least 10."
  }
}

variable "writer_role_arns" {
  description = "IAM roles that write the index (the indexer function's): HEAD, PUT and POST on the index."
  type        = list(string)

  validation {
    condition     = length(var.writer_role_arns) > 0
    error_message = "writer_role_arns must name at least one role (the indexer's)."
  }
}

variable "reader_role_arns" {
  description = "IAM roles that search the index (the api function's): POST on the index (`_search` with the query in the body)."
  type        = list(string)
  default     = []
}

variable "kms_key_arn" {
  description = "Customer managed KMS key encrypting the domain's data at rest and its log groups."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the domain's log groups (error, index and search slow logs), in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)."
  }
}

variable "tags" {
  description = "Tags for the domain and its log groups."
  type        = map(string)
  default     = {}
}
