variable "name" {
  description = "Deployment name; prefixes every resource name and tags everything."
  type        = string
  default     = "qwen3vl"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}[a-z0-9]$", var.name))
    error_message = "name must be 2-32 lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "AWS region to deploy into."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region code such as us-east-1."
  }
}

variable "instance_type" {
  description = "GPU instance type; only the g5 (A10G), g6 (L4) and g6e (L40S) families are supported."
  type        = string
  default     = "g5.xlarge"

  validation {
    condition     = can(regex("^(g5|g6|g6e)\\.[0-9]*x?large$", var.instance_type))
    error_message = "instance_type must be a g5, g6 or g6e type, e.g. g5.xlarge, g6.2xlarge, g6e.xlarge."
  }
}

variable "allowed_cidrs" {
  description = "CIDR blocks (IPv4 or IPv6) allowed to reach the endpoint port. Nothing else is admitted."
  type        = list(string)

  validation {
    condition     = length(var.allowed_cidrs) > 0
    error_message = "allowed_cidrs must name at least one CIDR, e.g. your own public IP as 203.0.113.7/32."
  }

  validation {
    condition     = alltrue([for c in var.allowed_cidrs : can(cidrhost(c, 0)) && cidrhost(c, 0) == split("/", c)[0]])
    error_message = "Every allowed_cidrs entry must be a network in CIDR notation without host bits, e.g. 203.0.113.7/32 or 10.0.0.0/16."
  }
}

variable "allow_open_ingress" {
  description = "Must be true for allowed_cidrs to contain 0.0.0.0/0 or ::/0 (the whole internet)."
  type        = bool
  default     = false
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

variable "ssh_key_name" {
  description = "Existing EC2 key pair for the SSH command channel. null (default) = no key, SSM only."
  type        = string
  default     = null
}

variable "ssh_allowed_cidrs" {
  description = "CIDR blocks admitted to port 22; only used with ssh_key_name. Empty = no SSH ingress."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.ssh_allowed_cidrs : can(cidrhost(c, 0)) && cidrhost(c, 0) == split("/", c)[0] && !contains(["0.0.0.0/0", "::/0"], c)])
    error_message = "Every ssh_allowed_cidrs entry must be a CIDR without host bits, and not the whole internet."
  }
}

variable "ami_id" {
  description = "AMI to launch. null (default) = look up the NVIDIA-driver Deep Learning AMI (see ami_lookup)."
  type        = string
  default     = null

  validation {
    condition     = var.ami_id == null || can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "ami_id must look like ami-0123456789abcdef0."
  }
}

variable "ami_lookup" {
  description = "How to find the AMI when ami_id is null: \"ssm\" (the region's public parameter) or \"filter\" (newest image by owner and name)."
  type        = string
  default     = "ssm"

  validation {
    condition     = contains(["ssm", "filter"], var.ami_lookup)
    error_message = "ami_lookup must be \"ssm\" or \"filter\"."
  }
}

variable "ami_ssm_parameter" {
  description = "Public SSM parameter holding the Deep Learning Base OSS NVIDIA driver GPU AMI id (ami_lookup = \"ssm\")."
  type        = string
  default     = "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-24.04/latest/ami-id"
}

variable "ami_owners" {
  description = "Owners whose images the \"filter\" lookup considers (\"amazon\" publishes the Deep Learning AMIs)."
  type        = list(string)
  default     = ["amazon"]
}

variable "ami_name_filter" {
  description = "Image name pattern for the \"filter\" lookup; the newest match wins."
  type        = string
  default     = "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 24.04) *"
}

variable "vpc_id" {
  description = "VPC to deploy into. null (default) = the region's default VPC."
  type        = string
  default     = null
}

variable "subnet_id" {
  description = "Subnet (with a route to the internet) for the instance; its VPC is used unless vpc_id is given. null (default) = a default-VPC subnet in a zone that offers instance_type."
  type        = string
  default     = null

  validation {
    condition     = var.subnet_id == null || can(regex("^subnet-[0-9a-f]{8,17}$", var.subnet_id))
    error_message = "subnet_id must look like subnet-0123456789abcdef0."
  }
}

variable "root_volume_size_gib" {
  description = "Root volume size: the AMI (~75 GiB with CUDA), the engine's Python environment and the model weights (~17 GiB for the 8B model in BF16)."
  type        = number
  default     = 150

  validation {
    condition     = var.root_volume_size_gib >= 100 && var.root_volume_size_gib <= 16384
    error_message = "root_volume_size_gib must be between 100 and 16384 (the AMI, engine and weights need at least 100)."
  }
}

variable "root_volume_throughput" {
  description = "gp3 throughput in MiB/s; above the 125 MiB/s baseline so model weights load faster."
  type        = number
  default     = 500

  validation {
    condition     = var.root_volume_throughput > 125 && var.root_volume_throughput <= 1000
    error_message = "root_volume_throughput must be above the 125 MiB/s baseline and at most 1000."
  }
}

variable "root_volume_iops" {
  description = "gp3 IOPS (3000 is included in the gp3 price; throughput may be at most IOPS / 4)."
  type        = number
  default     = 3000

  validation {
    condition     = var.root_volume_iops >= 3000 && var.root_volume_iops <= 16000
    error_message = "root_volume_iops must be between 3000 and 16000."
  }
}

variable "kms_key_id" {
  description = "KMS key (ARN) for the root volume and the secret. null (default) = the AWS managed keys."
  type        = string
  default     = null
}

variable "secret_recovery_window_days" {
  description = "Days Secrets Manager keeps the deleted API-key secret recoverable after destroy; 0 deletes it at once (the key is useless without the endpoint, and the name can be reused)."
  type        = number
  default     = 0

  validation {
    condition     = var.secret_recovery_window_days == 0 || (var.secret_recovery_window_days >= 7 && var.secret_recovery_window_days <= 30)
    error_message = "secret_recovery_window_days must be 0 or between 7 and 30."
  }
}

variable "detailed_monitoring" {
  description = "Enable 1-minute CloudWatch metrics on the instance (extra cost)."
  type        = bool
  default     = false
}

variable "engine" {
  description = "Serving engine on the instance."
  type        = string
  default     = "vllm"

  validation {
    condition     = contains(["vllm", "sglang"], var.engine)
    error_message = "engine must be \"vllm\" or \"sglang\"."
  }
}

variable "model_id" {
  description = "Hugging Face model id the engine serves."
  type        = string
  default     = "Qwen/Qwen3-VL-8B-Instruct"
}

variable "draft_model_id" {
  description = "Hugging Face id of the speculative-decoding draft prefetched beside the model (qwen3vl-aws apply --speculative eagle3 sets it); \"\" for none."
  type        = string
  default     = ""

  validation {
    condition     = var.draft_model_id == "" || can(regex("^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$", var.draft_model_id))
    error_message = "draft_model_id must be empty or look like owner/name."
  }
}

variable "draft_model_revision" {
  description = "Commit hash of draft_model_id on the Hugging Face hub, downloaded and served (qwen3vl-aws apply --draft-revision sets it). \"\" (default) = the pin in userdata/versions.env; the bootstrap refuses a draft pinned nowhere."
  type        = string
  default     = ""

  validation {
    condition     = var.draft_model_revision == "" || can(regex("^[0-9a-f]{40}$", var.draft_model_revision))
    error_message = "draft_model_revision must be empty or a 40-character commit hash from the draft's commit history on the hub."
  }
}

variable "served_model_name" {
  description = "Model name clients send in requests."
  type        = string
  default     = "Qwen/Qwen3-VL-8B-Instruct"
}

variable "engine_args" {
  description = "Engine CLI flags from the serving plan (qwen3vl-aws plan-serving), without the model id."
  type        = list(string)
  default     = []
}

variable "max_image_pixels" {
  description = "Images that decode to more pixels than this are refused before decoding (from the serving plan: qwen3vl-aws plan-serving); the default is the largest cap any plan uses."
  type        = number
  default     = 67108864

  validation {
    condition     = var.max_image_pixels >= 1048576 && var.max_image_pixels <= 178956970 && floor(var.max_image_pixels) == var.max_image_pixels
    error_message = "max_image_pixels must be a whole number between 1048576 (1024x1024) and 178956970 (vLLM's own default cap)."
  }
}

variable "allowed_media_domains" {
  description = "Domains image URLs may be fetched from; [] (default) = any public domain (private and link-local addresses stay unreachable)."
  type        = list(string)
  default     = []
}

variable "model_cache" {
  description = "Where the instance keeps the model weights: \"ebs\" (default) on the root volume, so a stop/start needs no download; \"instance-store\" on the NVMe instance store, faster to read but wiped at every stop, so the weights download again after each start."
  type        = string
  default     = "ebs"

  validation {
    condition     = contains(["ebs", "instance-store"], var.model_cache)
    error_message = "model_cache must be \"ebs\" or \"instance-store\"."
  }
}

variable "domain" {
  description = "DNS name for the endpoint's certificate; \"\" (default) = the Elastic IP address."
  type        = string
  default     = ""
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

variable "model_cache_bucket" {
  description = "S3 model cache bucket of this account and region (created once by terraform/model-cache). \"\" (default) = no S3 cache: every instance downloads from the Hugging Face hub."
  type        = string
  default     = ""

  validation {
    condition     = var.model_cache_bucket == "" || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.model_cache_bucket))
    error_message = "model_cache_bucket must be an S3 bucket name (3-63 lowercase letters, digits, dots and hyphens)."
  }
}

variable "model_revision" {
  description = "Commit hash of model_id on the Hugging Face hub: the revision downloaded, cached in S3 and served. \"\" (default) = the hub's main branch (no S3 cache)."
  type        = string
  default     = ""

  validation {
    condition     = var.model_revision == "" || can(regex("^[0-9a-f]{40}$", var.model_revision))
    error_message = "model_revision must be a 40-character commit hash, e.g. from `hf download --help` or the model page's commit history."
  }
}
