################################################################################
# Naming, tags, encryption
################################################################################

variable "name_prefix" {
  description = "Prefix of every resource name (table, buckets, functions, queue, cluster, parameters)."
  type        = string
  default     = "octoscope"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-20 lowercase letters, digits or '-', starting with a letter (it is part of S3 bucket names)."
  }
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}

variable "kms_key_arn" {
  description = "An existing customer managed KMS key for data at rest, secrets and logs; null creates one for the stack ($1/month). Its policy must let CloudWatch Logs use it."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be null or a KMS key ARN."
  }
}

################################################################################
# Artefacts
################################################################################

variable "lambda_zip_dir" {
  description = "Directory holding <function>/bootstrap.zip as built by `make lambdas`; null means the repository's target/lambda (set it when CARGO_TARGET_DIR points elsewhere)."
  type        = string
  default     = null
}

variable "batch_image_tag" {
  description = "Tag of the batch-job image pushed to the stack's ECR repository (tags are immutable; scripts/deploy.sh uses the git revision)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.batch_image_tag))
    error_message = "batch_image_tag must be a valid image tag."
  }
}

variable "dashboard_dist_dir" {
  description = "The built dashboard (`make dashboard`); null means the repository's frontend/dist. Nothing is uploaded while it has no index.html."
  type        = string
  default     = null
}

################################################################################
# GitHub and what to track
################################################################################

variable "github" {
  description = <<-EOT
    GitHub credentials, by SSM SecureString parameter NAME (create them first with
    `aws ssm put-parameter --type SecureString`; Terraform never reads the values):
    either token_parameter_name, or app_id + app_private_key_parameter_name (PEM)
    with an optional app_installation_id. api_url is for GitHub Enterprise Server.
  EOT
  type = object({
    token_parameter_name           = optional(string)
    app_id                         = optional(string)
    app_installation_id            = optional(string)
    app_private_key_parameter_name = optional(string)
    api_url                        = optional(string)
  })

  validation {
    condition     = (var.github.token_parameter_name != null) != (var.github.app_id != null && var.github.app_private_key_parameter_name != null)
    error_message = "Set either github.token_parameter_name, or github.app_id with github.app_private_key_parameter_name (not both)."
  }

  validation {
    condition     = var.github.app_id == null || can(regex("^[0-9]+$", var.github.app_id))
    error_message = "github.app_id must be the app's numeric id."
  }

  validation {
    condition     = var.github.api_url == null || can(regex("^https://", var.github.api_url))
    error_message = "github.api_url must be an https:// URL (e.g. https://HOST/api/v3)."
  }
}

variable "tracked_orgs" {
  description = "Organisation logins the integrity check covers besides every one that has delivered a webhook."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for o in var.tracked_orgs : can(regex("^[A-Za-z0-9][A-Za-z0-9-]{0,38}$", o))])
    error_message = "tracked_orgs must be GitHub organisation logins."
  }
}

variable "tracked_repos" {
  description = "Repositories (OWNER/NAME) the integrity check covers besides every one that has delivered a webhook."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for r in var.tracked_repos : can(regex("^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+$", r))])
    error_message = "tracked_repos must be OWNER/NAME."
  }
}

################################################################################
# Webhook and API
################################################################################

variable "webhook_secret_parameter_name" {
  description = "An existing SecureString parameter with the webhook secret(s); null creates <prefix>/webhook-secret holding a generated secret (read it with `aws ssm get-parameter --with-decryption`)."
  type        = string
  default     = null
}

variable "generated_secrets_version" {
  description = "Bump to make Terraform write a freshly generated webhook secret and API token into the parameters it created (this replaces them: update GitHub and API clients). Rotating by hand with `aws ssm put-parameter` needs no bump."
  type        = number
  default     = 1

  validation {
    condition     = var.generated_secrets_version >= 1 && floor(var.generated_secrets_version) == var.generated_secrets_version
    error_message = "generated_secrets_version must be a whole number >= 1."
  }
}

variable "webhook_max_body_bytes" {
  description = "Largest webhook body accepted (413 above); null means Lambda's 6 MB request limit."
  type        = number
  default     = null

  validation {
    condition     = var.webhook_max_body_bytes == null || try(var.webhook_max_body_bytes >= 1024 && var.webhook_max_body_bytes <= 6291456, false)
    error_message = "webhook_max_body_bytes must be null or between 1024 and 6291456 (Lambda's synchronous request limit)."
  }
}

variable "api_tokens_parameter_name" {
  description = "An existing SecureString parameter with the API bearer token(s); null creates <prefix>/api-tokens holding a generated token. Unused with api_jwt_authorizer."
  type        = string
  default     = null
}

variable "api_jwt_authorizer" {
  description = "Authenticate /api/* with API Gateway's JWT authorizer (your OIDC provider's issuer and audiences) instead of bearer tokens."
  type = object({
    issuer   = string
    audience = list(string)
  })
  default = null
}

variable "api_throttling" {
  description = "API Gateway throttling for every route: burst (requests) and rate (requests per second)."
  type = object({
    burst_limit = optional(number, 200)
    rate_limit  = optional(number, 100)
  })
  default = {}
}

variable "api_cors_allow_origins" {
  description = "Extra browser origins allowed to call the API directly (the dashboard itself goes through its CloudFront origin and needs none)."
  type        = list(string)
  default     = []
}

################################################################################
# Functions
################################################################################

variable "functions" {
  description = "Per-function memory (MB), timeout (s) and reserved concurrency (-1: unreserved)."
  type = object({
    # 160 MB: the cheapest size with room for the largest body Lambda takes
    # (6 MiB: 89 MB peak RSS measured; shared/docs/aws.md, "Duration and memory").
    webhook = optional(object({
      memory_size                    = optional(number, 160)
      timeout                        = optional(number, 10)
      reserved_concurrent_executions = optional(number, -1)
    }), {})
    api = optional(object({
      memory_size                    = optional(number, 512)
      timeout                        = optional(number, 15)
      reserved_concurrent_executions = optional(number, -1)
    }), {})
    integrity_check = optional(object({
      memory_size                    = optional(number, 256)
      timeout                        = optional(number, 300)
      reserved_concurrent_executions = optional(number, -1)
    }), {})
    dispatcher = optional(object({
      memory_size                    = optional(number, 256)
      timeout                        = optional(number, 60)
      reserved_concurrent_executions = optional(number, -1)
    }), {})
    ledger_stream = optional(object({
      memory_size                    = optional(number, 128)
      timeout                        = optional(number, 30)
      reserved_concurrent_executions = optional(number, -1)
    }), {})
    # Sends notifications from the notification queue (notify.tf): each
    # target gets 10 s, sent concurrently within a batch.
    notifier = optional(object({
      memory_size                    = optional(number, 256)
      timeout                        = optional(number, 30)
      reserved_concurrent_executions = optional(number, -1)
    }), {})
    # Deployed only with enable_search.
    indexer = optional(object({
      memory_size                    = optional(number, 256)
      timeout                        = optional(number, 60)
      reserved_concurrent_executions = optional(number, -1)
    }), {})
  })
  default = {}

  validation {
    condition     = var.functions.dispatcher.timeout * 6 <= 43200
    error_message = "functions.dispatcher.timeout must be at most 7200: the gap queue's visibility timeout is six times it."
  }

  validation {
    condition     = var.functions.notifier.timeout >= 15 && var.functions.notifier.timeout <= 900
    error_message = "functions.notifier.timeout must be between 15 (a send may take 10 s) and 900 (Lambda's maximum); the notification queue's visibility timeout is six times it."
  }
}

variable "ledger_stream_batching_window" {
  description = "Seconds the table stream's event source gathers marked ledger changes before invoking the ledger-stream function (0-300): how long delivery listings and counts may lag, and how many deliveries share one batch's writes."
  type        = number
  default     = 10
  validation {
    condition     = var.ledger_stream_batching_window >= 0 && var.ledger_stream_batching_window <= 300
    error_message = "ledger_stream_batching_window must be between 0 and 300 seconds."
  }
}

variable "rollup_settle_schedule" {
  description = "When the ledger-stream function settles the metric rollup cells its stream batches marked (EventBridge Scheduler expression): how long metrics may lag the webhooks, and how often a busy day's rows are read (shared/docs/metrics.md, \"Rollups\")."
  type        = string
  default     = "rate(15 minutes)"
}

variable "dispatcher_max_concurrency" {
  description = "Most dispatcher invocations the gap queue's event source runs at once (2-1000)."
  type        = number
  default     = 2

  validation {
    condition     = var.dispatcher_max_concurrency >= 2 && var.dispatcher_max_concurrency <= 1000
    error_message = "dispatcher_max_concurrency must be between 2 and 1000 (SQS event source limits)."
  }
}

variable "log_level" {
  description = "RUST_LOG of every function and the batch job."
  type        = string
  default     = "info"
}

variable "log_retention_days" {
  description = "Retention of every log group, in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)."
  }
}

variable "tracing_enabled" {
  description = "Active X-Ray tracing on the functions ($5 per million traces recorded after the free tier)."
  type        = bool
  default     = true
}

variable "integrity_check_schedule" {
  description = "When the integrity check runs (EventBridge Scheduler expression)."
  type        = string
  default     = "rate(15 minutes)"
}

################################################################################
# Notifications (notify.tf; shared/docs/notifications.md)
################################################################################

variable "notify_attempts" {
  description = "Attempts per notification (OCTOSCOPE_NOTIFY_ATTEMPTS). The notification queue's maxReceiveCount is two more: the dead-letter queue takes the messages of notifications never delivered."
  type        = number
  default     = 6

  validation {
    condition     = var.notify_attempts >= 1 && var.notify_attempts <= 20 && floor(var.notify_attempts) == var.notify_attempts
    error_message = "notify_attempts must be a whole number from 1 to 20."
  }
}

variable "notify_horizon_seconds" {
  description = "About how long a notification's attempts spread over, in seconds (OCTOSCOPE_NOTIFY_HORIZON_SECONDS; default 2 hours: retries about 4, 8, 15, 31 and 62 minutes after the first failure)."
  type        = number
  default     = 7200

  validation {
    condition     = var.notify_horizon_seconds >= 60 && var.notify_horizon_seconds <= 604800 && floor(var.notify_horizon_seconds) == var.notify_horizon_seconds
    error_message = "notify_horizon_seconds must be a whole number from 60 to 604800 (7 days)."
  }
}

variable "notify_late_window_hours" {
  description = "How old a transition found late (by the resync, whose webhook was lost) may be and still fire, in hours (OCTOSCOPE_NOTIFY_LATE_WINDOW_HOURS); also how far back the integrity check announces failed resync jobs."
  type        = number
  default     = 24

  validation {
    condition     = var.notify_late_window_hours >= 1 && var.notify_late_window_hours <= 720 && floor(var.notify_late_window_hours) == var.notify_late_window_hours
    error_message = "notify_late_window_hours must be a whole number from 1 to 720 (30 days)."
  }
}

variable "notify_allow_private" {
  description = "Let rules name http:// targets and targets on private or loopback addresses (OCTOSCOPE_NOTIFY_ALLOW_PRIVATE). The functions run outside any VPC, so a private address reaches nothing of yours; leave false unless you know why. Link-local and cloud metadata addresses stay refused either way."
  type        = bool
  default     = false
}

variable "notify_public_url" {
  description = "The dashboard's address for links in notification messages (OCTOSCOPE_PUBLIC_URL), e.g. the dashboard output's url or your custom domain; null: messages link to GitHub only."
  type        = string
  default     = null

  validation {
    condition     = var.notify_public_url == null || can(regex("^https?://[^\\s]+$", var.notify_public_url))
    error_message = "notify_public_url must be an http(s):// address."
  }
}

variable "notifier_max_concurrency" {
  description = "Most notifier invocations the notification queue's event source runs at once (2-1000): a burst of notifications is sent this many batches at a time."
  type        = number
  default     = 5

  validation {
    condition     = var.notifier_max_concurrency >= 2 && var.notifier_max_concurrency <= 1000
    error_message = "notifier_max_concurrency must be between 2 and 1000 (SQS event source limits)."
  }
}

################################################################################
# Search
################################################################################

variable "enable_search" {
  description = "Full-text search on AWS: an Amazon OpenSearch Service domain and the indexer function fed from the table's stream. Off by default because a domain is billed by the hour whether used or not (one t3.small.search with 10 GB gp3: about $27.50 a month at us-east-1 list prices)."
  type        = bool
  default     = false
}

variable "search" {
  description = "With enable_search: the domain's one data node (instance type, gp3 volume in GiB) and the seconds the table stream's event source gathers changes before invoking the indexer (0-300: how long a change may take to become searchable)."
  type = object({
    instance_type   = optional(string, "t3.small.search")
    volume_size     = optional(number, 10)
    batching_window = optional(number, 5)
  })
  default = {}

  validation {
    condition     = var.search.batching_window >= 0 && var.search.batching_window <= 300
    error_message = "search.batching_window must be between 0 and 300 seconds."
  }
}

################################################################################
# Batch job
################################################################################

variable "batch_network" {
  description = "Where resync tasks run: a VPC and subnets with a route to the internet (NAT, or public subnets with assign_public_ip = true) for GitHub and AWS APIs."
  type = object({
    vpc_id           = string
    subnet_ids       = list(string)
    assign_public_ip = optional(bool, false)
  })

  validation {
    condition     = length(var.batch_network.subnet_ids) > 0
    error_message = "batch_network.subnet_ids must name at least one subnet."
  }
}

variable "batch_task" {
  description = "Fargate size of a resync task (arm64)."
  type = object({
    cpu    = optional(number, 512)
    memory = optional(number, 1024)
  })
  default = {}
}

################################################################################
# Data and dashboard
################################################################################

variable "archive_expiration_days" {
  description = "Delete archived raw deliveries after this many days; null keeps them (they move to Standard-IA after 30 days and Glacier Instant Retrieval after 90)."
  type        = number
  default     = null
}

variable "deletion_protection" {
  description = "Protect the table from deletion and keep non-empty buckets and the ECR repository on `terraform destroy`. Turn off (and apply) before tearing down."
  type        = bool
  default     = true
}

variable "dashboard" {
  description = "CloudFront settings of the dashboard: price class, optional custom domain (aliases + an ACM certificate in us-east-1) and optional WAF web ACL."
  type = object({
    price_class         = optional(string, "PriceClass_100")
    aliases             = optional(list(string), [])
    acm_certificate_arn = optional(string)
    web_acl_id          = optional(string)
  })
  default = {}

  validation {
    condition     = length(var.dashboard.aliases) == 0 || var.dashboard.acm_certificate_arn != null
    error_message = "dashboard.aliases needs dashboard.acm_certificate_arn."
  }
}
