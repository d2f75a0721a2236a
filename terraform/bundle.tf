# The instance's files (userdata/instance.json) travel as one JSON object in a private bucket of
# this deployment: EC2 allows 16 KB of user data and the files are more. The user data names the
# object and its sha256; the instance's stage 0 fetches it with the instance role and installs
# nothing unless the digest matches. The key holds the digest, so a changed file is a new object
# (and, through the user data, a new instance).
locals {
  bundle_key = "bundle/${module.userdata.bundle_sha256}.json"
}

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:Access logs need a second bucket; this one holds a few tens of KB of the toolkit's own scripts, read once per instance boot.
  #checkov:skip=CKV_AWS_144:Cross-region replication: the bundle is rebuilt from the repository by every apply.
  #checkov:skip=CKV2_AWS_62:Nothing consumes object events: the instance reads the one key its user data names.
  #checkov:skip=CKV_AWS_21:Versioning keeps nothing of value: each bundle is a new key named by its sha256, and apply rewrites it.
  #checkov:skip=CKV2_AWS_61:A lifecycle rule has nothing to expire: the bucket holds the current bundle only.
  #checkov:skip=CKV_AWS_145:SSE-S3: the instance role then needs no KMS grant; the bundle holds no secret (see DESIGN.md).
  bucket_prefix = "qwen3vl-${substr(var.name, 0, 28)}-"
  force_destroy = true
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket                  = aws_s3_bucket.this.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

module "bucket_policy" {
  source     = "./modules/tls-only-bucket-policy"
  bucket_arn = aws_s3_bucket.this.arn
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = module.bucket_policy.json

  depends_on = [aws_s3_bucket_public_access_block.this]
}

resource "aws_s3_object" "bundle" {
  bucket       = aws_s3_bucket.this.id
  key          = local.bundle_key
  content      = module.userdata.bundle
  content_type = "application/json"

  # Encrypted by the bucket's default from the first write.
  depends_on = [aws_s3_bucket_server_side_encryption_configuration.this]
}
