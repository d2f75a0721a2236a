locals {
  open_cidrs     = ["0.0.0.0/0", "::/0"]
  ssh_enabled    = var.ssh_key_name != null && length(var.ssh_allowed_cidrs) > 0
  ssh_cidrs      = local.ssh_enabled ? var.ssh_allowed_cidrs : []
  endpoint_cidrs = toset(var.allowed_cidrs)
  offered_zones  = sort(data.aws_ec2_instance_type_offerings.zones.locations)
  vpc_id         = coalesce(var.vpc_id, one(data.aws_subnet.given[*].vpc_id), try(data.aws_subnet.fleet_given[var.subnet_ids[0]].vpc_id, null), one(data.aws_vpc.default[*].id))

  # Candidate subnets by zone (only zones offering the type); the first zone by name wins, so
  # the choice is stable from plan to plan.
  subnets_by_zone = { for s in data.aws_subnet.candidate : s.availability_zone => s.id... }
  first_zone      = try(sort(keys(local.subnets_by_zone))[0], null)
  subnet_id       = var.subnet_id != null ? var.subnet_id : sort(local.subnets_by_zone[local.first_zone])[0]
}

# Zones of the region that actually offer the instance type (GPU types are not in every zone).
data "aws_ec2_instance_type_offerings" "zones" {
  location_type = "availability-zone"

  filter {
    name   = "instance-type"
    values = [var.instance_type]
  }
}

data "aws_vpc" "default" {
  count   = var.vpc_id == null && var.subnet_id == null && length(var.subnet_ids) == 0 ? 1 : 0
  default = true
}

# A subnet given by the user: its VPC hosts the security group, and it must lie in a zone that
# offers the instance type (caught here, at plan time, rather than by RunInstances).
data "aws_subnet" "given" {
  count = var.subnet_id == null ? 0 : 1
  id    = var.subnet_id

  lifecycle {
    postcondition {
      condition     = contains(local.offered_zones, self.availability_zone)
      error_message = "Subnet ${var.subnet_id} is in ${self.availability_zone}, which does not offer ${var.instance_type} (zones offering it: ${join(", ", local.offered_zones)}). Choose a subnet in one of those zones."
    }

    postcondition {
      condition     = var.vpc_id == null || self.vpc_id == var.vpc_id
      error_message = "Subnet ${var.subnet_id} belongs to ${self.vpc_id}, not to vpc_id ${coalesce(var.vpc_id, "-")}."
    }
  }
}

data "aws_subnets" "candidates" {
  count = var.subnet_id == null ? 1 : 0

  filter {
    name   = "vpc-id"
    values = [local.vpc_id]
  }

  filter {
    name   = "availability-zone"
    values = local.offered_zones
  }

  lifecycle {
    postcondition {
      condition     = length(self.ids) > 0
      error_message = "No subnet of the VPC lies in a zone offering ${var.instance_type} (zones offering it: ${join(", ", local.offered_zones)}). Pass subnet_id, or choose another instance type or region."
    }
  }
}

data "aws_subnet" "candidate" {
  for_each = toset(var.subnet_id == null ? data.aws_subnets.candidates[0].ids : [])
  id       = each.value
}

resource "aws_security_group" "this" {
  name_prefix = "${var.name}-endpoint-"
  description = "qwen3vl-aws ${var.name}: TLS endpoint from allowed CIDRs only"
  vpc_id      = local.vpc_id

  tags = { Name = "${var.name}-endpoint" }

  lifecycle {
    create_before_destroy = true

    precondition {
      condition     = var.allow_open_ingress || length(setintersection(local.endpoint_cidrs, local.open_cidrs)) == 0
      error_message = "allowed_cidrs opens the endpoint to the whole internet; set allow_open_ingress = true if that is really intended."
    }
  }
}

resource "aws_vpc_security_group_ingress_rule" "endpoint" {
  # A fleet's instances admit the load balancer only (fleet.tf).
  for_each = local.fleet ? toset([]) : local.endpoint_cidrs

  security_group_id = aws_security_group.this.id
  description       = "Endpoint (TLS) from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = var.port
  to_port           = var.port
  cidr_ipv4         = strcontains(each.value, ":") ? null : each.value
  cidr_ipv6         = strcontains(each.value, ":") ? each.value : null
}

resource "aws_vpc_security_group_ingress_rule" "ssh" {
  for_each = toset(local.ssh_cidrs)

  security_group_id = aws_security_group.this.id
  description       = "SSH command channel from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = strcontains(each.value, ":") ? null : each.value
  cidr_ipv6         = strcontains(each.value, ":") ? each.value : null
}

# The instance downloads packages and model weights (PyPI, Hugging Face, their CDNs) and talks to
# the SSM and Secrets Manager endpoints over HTTPS; DNS and NTP go to the VPC resolvers.
resource "aws_vpc_security_group_egress_rule" "https" {
  for_each = toset(["0.0.0.0/0", "::/0"])

  security_group_id = aws_security_group.this.id
  description       = "HTTPS out (packages, model weights, AWS APIs)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = strcontains(each.value, ":") ? null : each.value
  cidr_ipv6         = strcontains(each.value, ":") ? each.value : null
}

resource "aws_vpc_security_group_egress_rule" "http" {
  security_group_id = aws_security_group.this.id
  description       = "HTTP out (Ubuntu package mirrors)"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_eip" "this" {
  count  = local.fleet ? 0 : 1
  domain = "vpc"
  tags   = { Name = var.name }
}
