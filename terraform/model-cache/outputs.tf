output "bucket" {
  description = "Name of the model cache bucket (pass it to a deployment as model_cache_bucket)."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the model cache bucket."
  value       = aws_s3_bucket.this.arn
}

output "region" {
  description = "Region of the bucket."
  value       = var.region
}
