# The smallest working install: a GitHub token in SSM, the default VPC's
# public subnets for the resync tasks, every other setting at its default.

provider "aws" {
  region = var.region
}

data "aws_vpc" "default" {
  default = true
}

data "aws_subnets" "default" {
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.default.id]
  }
  filter {
    name   = "default-for-az"
    values = ["true"]
  }
}

module "octoscope" {
  source = "../.."

  batch_image_tag = var.batch_image_tag
  lambda_zip_dir  = var.lambda_zip_dir

  deletion_protection = var.deletion_protection

  github = {
    token_parameter_name = var.github_token_parameter_name
  }

  # Default subnets are public: the tasks need a public IP to reach GitHub.
  batch_network = {
    vpc_id           = data.aws_vpc.default.id
    subnet_ids       = data.aws_subnets.default.ids
    assign_public_ip = true
  }
}
