output "json" {
  description = "The policy document (JSON): deny every S3 action on the bucket and its objects without TLS."
  value       = jsonencode(local.policy)
}
