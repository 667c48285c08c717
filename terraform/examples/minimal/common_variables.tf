# The variables every example has (examples/complete/common_variables.tf is a
# link to this file).

variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "batch_image_tag" {
  description = "Tag of the batch-job image in the stack's ECR repository (scripts/deploy.sh sets it to the git revision)."
  type        = string
}

variable "lambda_zip_dir" {
  description = "Directory of the `make lambdas` zips; null means the repository's target/lambda."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Protect the table and keep non-empty buckets and the ECR repository on destroy; set false (and apply) before `terraform destroy`."
  type        = bool
  default     = true
}
