# The bucket policy every bucket of the toolkit starts from: no request over plain HTTP, to the
# bucket or any object in it. Roots add their own statements with source_policy_documents.
locals {
  policy = {
    Version = "2012-10-17"
    Statement = [{
      Sid       = "DenyInsecureTransport"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [var.bucket_arn, "${var.bucket_arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  }
}
