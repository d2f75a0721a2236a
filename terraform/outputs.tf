output "instance_id" {
  description = "EC2 instance id (target of the SSM command channel); null for a fleet (see autoscaling_group_name)."
  value       = one(aws_instance.this[*].id)
}

output "instance_type" {
  description = "EC2 instance type."
  value       = local.fleet ? var.instance_type : one(aws_instance.this[*].instance_type)
}

output "availability_zone" {
  description = "Availability zone the instance runs in; null for a fleet (its replicas span fleet_zones)."
  value       = one(aws_instance.this[*].availability_zone)
}

output "ami_id" {
  description = "AMI the instance was launched from."
  value       = local.fleet ? local.ami_id : one(aws_instance.this[*].ami)
}

output "public_ip" {
  description = "Elastic IP address of the endpoint; null for a fleet (clients use the load balancer's name)."
  value       = one(aws_eip.this[*].public_ip)
}

output "endpoint" {
  description = "Base URL of the OpenAI-compatible API."
  value       = "https://${var.domain != "" ? var.domain : local.fleet ? aws_lb.this[0].dns_name : aws_eip.this[0].public_ip}${var.port == 443 ? "" : ":${var.port}"}/v1"
}

output "port" {
  description = "Public TLS port of the gateway."
  value       = var.port
}

output "secret_arn" {
  description = "ARN of the Secrets Manager secret holding the API key (the value is never in Terraform)."
  value       = aws_secretsmanager_secret.this.arn
}

output "security_group_id" {
  description = "Security group guarding the endpoint."
  value       = aws_security_group.this.id
}

output "iam_role_name" {
  description = "IAM role of the instance."
  value       = aws_iam_role.this.name
}

output "instance_profile_name" {
  description = "IAM instance profile of the instance."
  value       = aws_iam_instance_profile.this.name
}

output "ssh_enabled" {
  description = "Whether port 22 is open to ssh_allowed_cidrs with ssh_key_name."
  value       = local.ssh_enabled
}

output "fleet" {
  description = "The fleet's pieces (null for a single instance): bounds, group, load balancer, listener, target group, metric namespace, lifecycle hook and the at-zero rule."
  value = local.fleet ? {
    min_size               = local.fleet_min
    max_size               = local.fleet_max
    zones                  = sort(local.fleet_zones)
    autoscaling_group_name = aws_autoscaling_group.this[0].name
    load_balancer_arn      = aws_lb.this[0].arn
    load_balancer_dns_name = aws_lb.this[0].dns_name
    listener_arn           = aws_lb_listener.https[0].arn
    certificate_arn        = aws_lb_listener.https[0].certificate_arn
    target_group_arn       = aws_lb_target_group.this[0].arn
    metric_namespace       = local.metric_namespace
    drain_hook_name        = aws_autoscaling_lifecycle_hook.drain[0].name
    at_zero_rule_arn       = one(aws_lb_listener_rule.at_zero[*].arn)
  } : null
}
