variable "region" {
  description = "AWS region of the cache; every deployment in this account and region shares it."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region code such as us-east-1."
  }
}

variable "noncurrent_version_days" {
  description = "Days an overwritten or deleted object version is kept before S3 expires it (the cache is write-once, so this only reclaims operator clean-ups)."
  type        = number
  default     = 7

  validation {
    condition     = var.noncurrent_version_days >= 1 && var.noncurrent_version_days <= 365 && floor(var.noncurrent_version_days) == var.noncurrent_version_days
    error_message = "noncurrent_version_days must be a whole number of days between 1 and 365."
  }
}

variable "kms_key_id" {
  description = "KMS key ARN for SSE-KMS (with an S3 bucket key). null (default) = SSE-S3 (AES-256), which costs nothing per request."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_id == null || can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_id))
    error_message = "kms_key_id must be a KMS key ARN."
  }
}

variable "force_destroy" {
  description = "Let destroy delete a bucket that still holds cached weights (otherwise destroy fails while the cache is not empty)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}
