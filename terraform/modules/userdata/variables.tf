variable "deployment_name" {
  description = "Name of the deployment (tags, log lines)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}[a-z0-9]$", var.deployment_name))
    error_message = "deployment_name must be 2-32 lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "AWS region of the secret (the key sync script calls Secrets Manager there)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as us-east-1."
  }
}

variable "secret_arn" {
  description = "ARN of the Secrets Manager secret holding the API key. The key itself never passes through Terraform."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+$", var.secret_arn))
    error_message = "secret_arn must be a Secrets Manager secret ARN."
  }
}

variable "engine" {
  description = "Inference engine behind the gateway: \"vllm\" or \"sglang\"."
  type        = string
  default     = "vllm"

  validation {
    condition     = contains(["vllm", "sglang"], var.engine)
    error_message = "engine must be \"vllm\" or \"sglang\"."
  }
}

variable "model_id" {
  description = "Hugging Face model id the instance prefetches and serves."
  type        = string
  default     = "Qwen/Qwen3-VL-8B-Instruct"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$", var.model_id))
    error_message = "model_id must look like owner/name, e.g. Qwen/Qwen3-VL-8B-Instruct."
  }
}

variable "draft_model_id" {
  description = "Hugging Face id of a speculative-decoding draft the instance prefetches beside the model (\"\" for none); engine_args name its directory as @DRAFT_MODEL_DIR@."
  type        = string
  default     = ""

  validation {
    condition     = var.draft_model_id == "" || can(regex("^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$", var.draft_model_id))
    error_message = "draft_model_id must be empty or look like owner/name, e.g. taobao-mnn/Qwen3-VL-8B-Instruct-Eagle3."
  }
}

variable "draft_model_revision" {
  description = "Commit hash the draft is downloaded at (\"\" = versions.env's MODEL_REVISION_<NAME>; the bootstrap refuses a draft pinned nowhere)."
  type        = string
  default     = ""

  validation {
    condition     = var.draft_model_revision == "" || can(regex("^[0-9a-f]{40}$", var.draft_model_revision))
    error_message = "draft_model_revision must be empty or a 40-character commit hash."
  }
}

variable "served_model_name" {
  description = "Model name clients send in the \"model\" field."
  type        = string
  default     = "Qwen/Qwen3-VL-8B-Instruct"

  validation {
    condition     = can(regex("^[A-Za-z0-9._/:-]{1,128}$", var.served_model_name))
    error_message = "served_model_name must be 1-128 characters of A-Z a-z 0-9 . _ / : -."
  }
}

variable "engine_args" {
  description = "Engine CLI flags from the serving plan, one argument per element, without the model, host, port or served name (the bootstrap sets those)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.engine_args : can(regex("^[^\\s'\\\\$`]+$", a))])
    error_message = "Each engine_args element must be one argument without whitespace, single quotes, backslashes, $ or backticks."
  }

  validation {
    condition = alltrue([for a in var.engine_args : !contains(
      ["--model", "--model-path", "--host", "--port", "--served-model-name", "--api-key", "--allowed-media-domains"],
      split("=", a)[0]
    )])
    error_message = "engine_args must not set --model, --model-path, --host, --port, --served-model-name or --allowed-media-domains (the bootstrap renders them) nor --api-key (the gateway checks the key; it never goes on a command line)."
  }
}

variable "public_host" {
  description = "The address clients connect to, which the gateway's TLS certificate names: the Elastic IP, or for a fleet the load balancer's DNS name."
  type        = string

  validation {
    condition     = can(regex("^((25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])$", var.public_host)) || can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", lower(var.public_host)))
    error_message = "public_host must be an IPv4 address (the Elastic IP) or a DNS name (a fleet's load balancer)."
  }
}

variable "domain" {
  description = "DNS name the certificate is made for, in addition to the address; \"\" (default) = none."
  type        = string
  default     = ""

  validation {
    condition     = var.domain == "" || can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.domain))
    error_message = "domain must be a lowercase DNS name such as llm.example.com, or \"\"."
  }
}

variable "port" {
  description = "Public TLS port of the gateway."
  type        = number
  default     = 443

  validation {
    condition     = var.port >= 1 && var.port <= 65535 && floor(var.port) == var.port && var.port != 8000
    error_message = "port must be an integer between 1 and 65535 other than 8000 (the engine's loopback port)."
  }
}

variable "allowed_media_domains" {
  description = "Domains image URLs may be fetched from (vLLM --allowed-media-domains). [] (default) = no domain restriction; the engine unit still cannot reach private or link-local addresses such as the metadata service, and redirects are not followed."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for d in var.allowed_media_domains : can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", d))])
    error_message = "Each allowed_media_domains entry must be a lowercase DNS name such as upload.wikimedia.org."
  }
}

variable "model_cache" {
  description = "Where the model weights are cached: \"ebs\" (default) on the root volume, so a stop/start brings the model back without a download; \"instance-store\" on the NVMe instance store, faster to read but wiped at every stop, so the weights download again after each start."
  type        = string
  default     = "ebs"

  validation {
    condition     = contains(["ebs", "instance-store"], var.model_cache)
    error_message = "model_cache must be \"ebs\" or \"instance-store\"."
  }
}

variable "max_image_pixels" {
  description = "Images that decode to more pixels than this are refused before they are decoded (vLLM's VLLM_MAX_IMAGE_PIXELS), so a small compressed image cannot take the engine's memory. qwen3vl-aws apply passes the serving plan's cap; the default is the largest cap any plan uses (8192x8192)."
  type        = number
  default     = 67108864

  validation {
    condition     = var.max_image_pixels >= 1048576 && var.max_image_pixels <= 178956970 && floor(var.max_image_pixels) == var.max_image_pixels
    error_message = "max_image_pixels must be a whole number between 1048576 (1024x1024) and 178956970 (vLLM's own default cap)."
  }
}

variable "model_cache_bucket" {
  description = "S3 model cache bucket (\"\" = none): the bootstrap streams the weights from it, or fills it once."
  type        = string
  default     = ""
}

variable "model_revision" {
  description = "Pinned commit hash of the model (\"\" = the hub's main branch, no S3 cache)."
  type        = string
  default     = ""
}

variable "model_reader_role_arn" {
  description = "The role the engine streams the weights from the S3 model cache with (null = none: the engine reads them from local disk). The engine unit's privileged ExecStartPre assumes it with the instance role."
  type        = string
  default     = null

  validation {
    condition     = var.model_reader_role_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\\w+=,.@/-]+$", var.model_reader_role_arn))
    error_message = "model_reader_role_arn must be an IAM role ARN."
  }
}

variable "fleet" {
  description = "For a replica of a fleet: its Auto Scaling group, the termination hook it completes after draining, and the CloudWatch namespace it publishes the engine's queue to. null (default) = a single instance (no fleet files, deploy.env unchanged)."
  type = object({
    group_name       = string
    drain_hook_name  = string
    metric_namespace = string
  })
  default = null

  validation {
    condition     = var.fleet == null ? true : alltrue([for v in values(var.fleet) : can(regex("^[A-Za-z0-9/_.:-]{1,255}$", v))])
    error_message = "fleet's names must be 1-255 characters of A-Z a-z 0-9 / _ . : -."
  }
}

variable "bundle_bucket" {
  description = "S3 bucket holding the bundle of the instance's files (the module's bundle output)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bundle_bucket))
    error_message = "bundle_bucket must be an S3 bucket name."
  }
}

variable "bundle_key" {
  description = "Object key of the bundle in bundle_bucket."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9/_.-]+$", var.bundle_key)) && length(var.bundle_key) <= 1024
    error_message = "bundle_key must be an S3 key of letters, digits, / _ . and -."
  }
}

variable "bundle_sha256" {
  description = "Hex sha256 the fetched bundle must have; stage 0 refuses anything else."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.bundle_sha256))
    error_message = "bundle_sha256 must be 64 lowercase hex digits."
  }
}
