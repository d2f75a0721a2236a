output "rendered" {
  description = "The cloud-config document (plain text), for review and tests."
  value       = local.rendered
}

output "base64gzip" {
  description = "The cloud-config gzip-compressed and base64-encoded, for aws_instance.user_data_base64."
  value       = base64gzip(local.rendered)

  precondition {
    # EC2 limits user data to 16 KB before base64 encoding.
    condition     = length(base64gzip(local.rendered)) * 3 / 4 <= 16384
    error_message = "The compressed user data exceeds EC2's 16 KB limit."
  }
}

output "bundle" {
  description = "The instance's files (userdata/instance.json) as JSON {path: {mode, content}}: the object stage 0 fetches from S3."
  value       = local.bundle
}

output "bundle_sha256" {
  description = "Hex sha256 of the bundle, which stage 0 verifies before installing anything."
  value       = sha256(local.bundle)
}
