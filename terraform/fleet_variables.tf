# Inputs of the fleet shape (fleet*.tf). With replicas = null (the default) none of them is used
# and the deployment is the single instance of compute.tf.

variable "replicas" {
  description = "Fleet bounds \"MIN:MAX\" (e.g. \"2:4\", or \"0:3\" to scale to zero when idle): an Auto Scaling group behind an Application Load Balancer. null (default) = one instance with an Elastic IP."
  type        = string
  default     = null

  validation {
    condition     = var.replicas == null || can(regex("^[0-9]{1,3}:[0-9]{1,3}$", var.replicas))
    error_message = "replicas must be \"MIN:MAX\" with two whole numbers, e.g. \"2:4\" or \"0:3\"."
  }

  validation {
    condition = var.replicas == null || (
      can(regex("^[0-9]{1,3}:[0-9]{1,3}$", var.replicas)) &&
      try(tonumber(split(":", var.replicas)[0]) <= tonumber(split(":", var.replicas)[1]), false) &&
      try(tonumber(split(":", var.replicas)[1]) >= 1 && tonumber(split(":", var.replicas)[1]) <= 100, false)
    )
    error_message = "replicas MIN must not exceed MAX, and MAX must be between 1 and 100."
  }
}

variable "subnet_ids" {
  description = "Fleet only: subnets for the load balancer and the group, in at least two zones offering instance_type. [] (default) = one default-VPC subnet per such zone."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for s in var.subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", s))])
    error_message = "Every subnet_ids entry must look like subnet-0123456789abcdef0."
  }
}

variable "certificate_arn" {
  description = "Fleet only: ACM certificate for the load balancer's HTTPS listener (the CLI imports one it made for the load balancer's DNS name). null = an ACM certificate for domain, DNS-validated in route53_zone_id."
  type        = string
  default     = null

  validation {
    condition     = var.certificate_arn == null || can(regex("^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[0-9a-f-]+$", var.certificate_arn))
    error_message = "certificate_arn must be an ACM certificate ARN."
  }
}

variable "route53_zone_id" {
  description = "Fleet only: public Route 53 hosted zone of domain; with it the listener gets an ACM-issued, DNS-validated certificate and domain an alias record to the load balancer."
  type        = string
  default     = null

  validation {
    condition     = var.route53_zone_id == null || can(regex("^Z[0-9A-Z]{4,32}$", var.route53_zone_id))
    error_message = "route53_zone_id must be a hosted zone id such as Z0123456789ABCDEFGHIJ."
  }
}

variable "target_load" {
  description = "Fleet only: the load per instance (vLLM's running plus waiting requests) that target tracking keeps the group at."
  type        = number
  default     = 8

  validation {
    condition     = var.target_load > 0 && var.target_load <= 1024
    error_message = "target_load must be above 0 and at most 1024."
  }
}

variable "idle_minutes" {
  description = "Fleet with MIN = 0 only: minutes without a request after which the group scales to zero."
  type        = number
  default     = 30

  validation {
    condition     = var.idle_minutes >= 5 && var.idle_minutes <= 1440 && floor(var.idle_minutes) == var.idle_minutes
    error_message = "idle_minutes must be a whole number of minutes between 5 and 1440 (one day, CloudWatch's longest alarm window)."
  }
}

variable "retry_after_seconds" {
  description = "Fleet with MIN = 0 only: the wait a client is told (in the 503 JSON body) while the group wakes from zero."
  type        = number
  default     = 300

  validation {
    condition     = var.retry_after_seconds >= 10 && var.retry_after_seconds <= 3600
    error_message = "retry_after_seconds must be between 10 and 3600."
  }
}

variable "deregistration_delay_seconds" {
  description = "Fleet only: how long the load balancer lets a leaving instance finish its in-flight requests (long streamed answers) before it cuts them."
  type        = number
  default     = 900

  validation {
    condition     = var.deregistration_delay_seconds >= 30 && var.deregistration_delay_seconds <= 3600
    error_message = "deregistration_delay_seconds must be between 30 and 3600 (the load balancer's limit)."
  }
}

variable "idle_timeout_seconds" {
  description = "Fleet only: the load balancer's idle timeout; an answer that sends nothing for longer (a long non-streamed generation) is cut."
  type        = number
  default     = 900

  validation {
    condition     = var.idle_timeout_seconds >= 60 && var.idle_timeout_seconds <= 4000
    error_message = "idle_timeout_seconds must be between 60 and 4000 (the load balancer's limit)."
  }
}

variable "health_check_grace_seconds" {
  description = "Fleet only: how long a new instance may take (packages, model download and load) before a failing health check replaces it."
  type        = number
  default     = 2400

  validation {
    condition     = var.health_check_grace_seconds >= 300 && var.health_check_grace_seconds <= 7200
    error_message = "health_check_grace_seconds must be between 300 and 7200."
  }
}

variable "spot" {
  description = "Fleet only: run replicas above on_demand_base on spot capacity (capacity-optimized, capacity rebalancing on)."
  type        = bool
  default     = false
}

variable "on_demand_base" {
  description = "Fleet with spot only: how many replicas always run on-demand."
  type        = number
  default     = 0

  validation {
    condition     = var.on_demand_base >= 0 && var.on_demand_base <= 100 && floor(var.on_demand_base) == var.on_demand_base
    error_message = "on_demand_base must be a whole number between 0 and 100."
  }
}

variable "alternative_instance_types" {
  description = "Fleet with spot only: other sizes of instance_type's GPU class with the same GPU count (the serving plan is made for instance_type), so a shortage of one size does not stall the fleet."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for t in var.alternative_instance_types : can(regex("^(g5|g6|g6e)\\.[0-9]*x?large$", t))])
    error_message = "Every alternative_instance_types entry must be a g5, g6 or g6e type."
  }
}
