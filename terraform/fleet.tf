# The fleet shape (replicas = "MIN:MAX"): the instance of compute.tf becomes a launch template
# in an Auto Scaling group over two or more zones, behind an internet-facing Application Load
# Balancer with an HTTPS listener. Every instance still runs its own gateway that checks the
# key, so a request that bypasses the load balancer is refused. Scaling and draining are in
# fleet_scaling.tf, the instance role's additions in fleet_iam.tf.

locals {
  fleet        = var.replicas != null
  fleet_count  = local.fleet ? 1 : 0
  fleet_bounds = local.fleet ? [for n in split(":", var.replicas) : tonumber(n)] : [0, 0]
  fleet_min    = local.fleet_bounds[0]
  fleet_max    = local.fleet_bounds[1]
  # The group's and the hook's names are fixed so the instances' user-data can name them.
  group_name        = "${var.name}-fleet"
  drain_hook_name   = "drain"
  metric_namespace  = "qwen3vl-aws/${var.name}"
  fleet_domain_cert = local.fleet && var.certificate_arn == null && var.domain != "" && var.route53_zone_id != null

  # One subnet per zone that offers the type (the first by id), or the subnets given.
  fleet_given_zones = { for s in data.aws_subnet.fleet_given : s.id => s.availability_zone }
  fleet_subnet_ids = length(var.subnet_ids) > 0 ? var.subnet_ids : [
    for zone in sort(keys(local.subnets_by_zone)) : sort(local.subnets_by_zone[zone])[0]
  ]
  fleet_zones = distinct(length(var.subnet_ids) > 0 ? values(local.fleet_given_zones) : keys(local.subnets_by_zone))
  fleet_types = distinct(concat([var.instance_type], var.alternative_instance_types))
}

data "aws_subnet" "fleet_given" {
  for_each = toset(local.fleet ? var.subnet_ids : [])
  id       = each.value

  lifecycle {
    postcondition {
      condition     = contains(local.offered_zones, self.availability_zone)
      error_message = "Subnet ${self.id} is in ${self.availability_zone}, which does not offer ${var.instance_type} (zones offering it: ${join(", ", local.offered_zones)})."
    }
  }
}

# The root device name of the image, for the launch template's encrypted gp3 root volume.
data "aws_ami" "fleet" {
  count = local.fleet_count

  filter {
    name   = "image-id"
    values = [local.ami_id]
  }
}

# --- load balancer ------------------------------------------------------------------------

resource "aws_security_group" "alb" {
  count       = local.fleet_count
  name_prefix = "${var.name}-alb-"
  description = "qwen3vl-aws ${var.name}: load balancer, TLS from allowed CIDRs only"
  vpc_id      = local.vpc_id

  tags = { Name = "${var.name}-alb" }

  lifecycle {
    create_before_destroy = true

    precondition {
      condition     = var.allow_open_ingress || length(setintersection(local.endpoint_cidrs, local.open_cidrs)) == 0
      error_message = "allowed_cidrs opens the endpoint to the whole internet; set allow_open_ingress = true if that is really intended."
    }

    precondition {
      condition     = var.subnet_id == null
      error_message = "A fleet spans several zones: pass subnet_ids (two or more, in different zones) instead of subnet_id."
    }

    precondition {
      condition     = length(local.fleet_zones) >= 2
      error_message = "A fleet needs subnets in at least two zones offering ${var.instance_type}; found ${length(local.fleet_zones)} (${join(", ", local.fleet_zones)})."
    }
  }
}

resource "aws_vpc_security_group_ingress_rule" "alb" {
  for_each = local.fleet ? local.endpoint_cidrs : toset([])

  security_group_id = aws_security_group.alb[0].id
  description       = "Endpoint (TLS) from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = var.port
  to_port           = var.port
  cidr_ipv4         = strcontains(each.value, ":") ? null : each.value
  cidr_ipv6         = strcontains(each.value, ":") ? each.value : null
}

resource "aws_vpc_security_group_egress_rule" "alb_to_gateways" {
  count = local.fleet_count

  security_group_id            = aws_security_group.alb[0].id
  description                  = "Requests and health checks to the instances' gateways"
  ip_protocol                  = "tcp"
  from_port                    = var.port
  to_port                      = var.port
  referenced_security_group_id = aws_security_group.this.id
}

# The instances admit the gateway port from the load balancer only.
resource "aws_vpc_security_group_ingress_rule" "gateway_from_alb" {
  count = local.fleet_count

  security_group_id            = aws_security_group.this.id
  description                  = "Gateway (TLS) from the load balancer only"
  ip_protocol                  = "tcp"
  from_port                    = var.port
  to_port                      = var.port
  referenced_security_group_id = aws_security_group.alb[0].id
}

resource "aws_lb" "this" {
  #checkov:skip=CKV_AWS_91:Access logs need an S3 bucket with a bucket policy for the region's ELB account; the gateways log every request on the instances instead.
  #checkov:skip=CKV_AWS_150:Deletion protection would make `qwen3vl-aws destroy` fail; destroy asks for confirmation instead.
  #checkov:skip=CKV2_AWS_28:A WAF web ACL is billed per rule and request; the listener admits only allowed_cidrs and every gateway checks the key.
  #checkov:skip=CKV2_AWS_20:There is no HTTP listener to redirect: the load balancer listens with HTTPS only.
  count              = local.fleet_count
  name               = var.name
  internal           = false
  load_balancer_type = "application"
  security_groups    = [aws_security_group.alb[0].id]
  subnets            = local.fleet_subnet_ids
  idle_timeout       = var.idle_timeout_seconds

  drop_invalid_header_fields = true
  enable_deletion_protection = false

  tags = { Name = var.name }
}

resource "aws_lb_target_group" "this" {
  count       = local.fleet_count
  name_prefix = "q3vl-"
  port        = var.port
  protocol    = "HTTPS"
  vpc_id      = local.vpc_id
  target_type = "instance"

  load_balancing_algorithm_type = "least_outstanding_requests"
  deregistration_delay          = var.deregistration_delay_seconds

  health_check {
    enabled             = true
    protocol            = "HTTPS"
    port                = "traffic-port"
    path                = "/health"
    matcher             = "200"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }

  tags = { Name = "${var.name}-gateways" }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_lb_listener" "https" {
  count             = local.fleet_count
  load_balancer_arn = aws_lb.this[0].arn
  port              = var.port
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = local.fleet_domain_cert ? aws_acm_certificate_validation.this[0].certificate_arn : var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this[0].arn
  }

  lifecycle {
    precondition {
      condition     = var.certificate_arn != null || (var.domain != "" && var.route53_zone_id != null)
      error_message = "The fleet's HTTPS listener needs certificate_arn, or domain with route53_zone_id for an ACM-issued certificate."
    }
  }
}

# --- certificate for a domain (ACM-issued, DNS-validated in the user's Route 53 zone) -----

resource "aws_acm_certificate" "this" {
  count             = local.fleet_domain_cert ? 1 : 0
  domain_name       = var.domain
  validation_method = "DNS"

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_route53_record" "validation" {
  for_each = {
    for o in(local.fleet_domain_cert ? aws_acm_certificate.this[0].domain_validation_options : []) : o.domain_name => o
  }
  zone_id         = var.route53_zone_id
  name            = each.value.resource_record_name
  type            = each.value.resource_record_type
  records         = [each.value.resource_record_value]
  ttl             = 300
  allow_overwrite = true
}

resource "aws_acm_certificate_validation" "this" {
  count                   = local.fleet_domain_cert ? 1 : 0
  certificate_arn         = aws_acm_certificate.this[0].arn
  validation_record_fqdns = [for r in aws_route53_record.validation : r.fqdn]
}

resource "aws_route53_record" "endpoint" {
  count   = local.fleet_domain_cert ? 1 : 0
  zone_id = var.route53_zone_id
  name    = var.domain
  type    = "A"

  alias {
    name                   = aws_lb.this[0].dns_name
    zone_id                = aws_lb.this[0].zone_id
    evaluate_target_health = true
  }
}

# --- instances ----------------------------------------------------------------------------

resource "aws_launch_template" "this" {
  count                  = local.fleet_count
  name_prefix            = "${var.name}-"
  description            = "qwen3vl-aws ${var.name}: one replica (engine and gateway)"
  image_id               = local.ami_id
  instance_type          = var.instance_type
  vpc_security_group_ids = [aws_security_group.this.id]
  key_name               = local.ssh_enabled ? var.ssh_key_name : null
  ebs_optimized          = true
  user_data              = module.userdata.base64gzip
  update_default_version = true

  iam_instance_profile {
    name = aws_iam_instance_profile.this.name
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  monitoring {
    enabled = var.detailed_monitoring
  }

  block_device_mappings {
    device_name = data.aws_ami.fleet[0].root_device_name

    ebs {
      volume_type           = "gp3"
      volume_size           = var.root_volume_size_gib
      throughput            = var.root_volume_throughput
      iops                  = var.root_volume_iops
      encrypted             = true
      kms_key_id            = var.kms_key_id
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(var.tags, { Name = var.name, Project = "qwen3vl-aws", Deployment = var.name })
  }

  tag_specifications {
    resource_type = "volume"
    tags          = merge(var.tags, { Name = "${var.name}-root", Project = "qwen3vl-aws", Deployment = var.name })
  }

  lifecycle {
    precondition {
      condition     = var.root_volume_throughput <= var.root_volume_iops / 4
      error_message = "gp3 allows at most 0.25 MiB/s per IOPS: raise root_volume_iops to at least ${var.root_volume_throughput * 4} or lower root_volume_throughput."
    }
  }
}

resource "aws_autoscaling_group" "this" {
  count               = local.fleet_count
  name                = local.group_name
  min_size            = local.fleet_min
  max_size            = local.fleet_max
  vpc_zone_identifier = local.fleet_subnet_ids
  target_group_arns   = [aws_lb_target_group.this[0].arn]

  # The load balancer's health check (a real answer from /health) decides replacement, once a
  # new instance has had time to install, download and load the model.
  health_check_type         = "ELB"
  health_check_grace_period = var.health_check_grace_seconds
  capacity_rebalance        = var.spot
  # apply returns once the group exists; `qwen3vl-aws wait` follows the replicas with progress.
  wait_for_capacity_timeout = "0"
  # GroupDesiredCapacity and GroupInServiceInstances feed the wake alarm and the load expression.
  enabled_metrics     = ["GroupDesiredCapacity", "GroupInServiceInstances"]
  metrics_granularity = "1Minute"

  dynamic "launch_template" {
    for_each = var.spot ? [] : [aws_launch_template.this[0]]
    content {
      id      = launch_template.value.id
      version = launch_template.value.latest_version
    }
  }

  dynamic "mixed_instances_policy" {
    for_each = var.spot ? [aws_launch_template.this[0]] : []
    content {
      instances_distribution {
        on_demand_base_capacity                  = var.on_demand_base
        on_demand_percentage_above_base_capacity = 0
        spot_allocation_strategy                 = "capacity-optimized"
      }

      launch_template {
        launch_template_specification {
          launch_template_id = mixed_instances_policy.value.id
          version            = mixed_instances_policy.value.latest_version
        }

        dynamic "override" {
          for_each = local.fleet_types
          content {
            instance_type = override.value
          }
        }
      }
    }
  }

  # A new launch template version (serving plan, AMI, user-data) rolls through the group a few
  # instances at a time; the termination hook drains each one it replaces.
  instance_refresh {
    strategy = "Rolling"

    preferences {
      min_healthy_percentage = 100
      max_healthy_percentage = 200
    }
  }

  dynamic "tag" {
    for_each = { Name = var.name, Project = "qwen3vl-aws", Deployment = var.name }
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = false
    }
  }

  lifecycle {
    # Scaling policies, alarms, `scale`, `stop` and `start` move the desired capacity.
    ignore_changes = [desired_capacity]
  }

  # A replica's stage 0 fetches the bundle at boot: it and the role's read of it come first.
  depends_on = [
    aws_iam_role_policy.read_secret,
    aws_iam_role_policy.ssm_agent,
    aws_iam_role_policy.read_instance_files,
    aws_s3_object.bundle,
  ]
}
