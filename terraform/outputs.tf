output "instance_id" {
  description = "EC2 instance id (target of the SSM command channel)."
  value       = aws_instance.this.id
}

output "instance_type" {
  description = "EC2 instance type."
  value       = aws_instance.this.instance_type
}

output "availability_zone" {
  description = "Availability zone the instance runs in."
  value       = aws_instance.this.availability_zone
}

output "ami_id" {
  description = "AMI the instance was launched from."
  value       = aws_instance.this.ami
}

output "public_ip" {
  description = "Elastic IP address of the endpoint."
  value       = aws_eip.this.public_ip
}

output "endpoint" {
  description = "Base URL of the OpenAI-compatible API."
  value       = "https://${var.domain != "" ? var.domain : aws_eip.this.public_ip}${var.port == 443 ? "" : ":${var.port}"}/v1"
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
