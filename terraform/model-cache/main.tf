# The model cache: one versioned, encrypted, private bucket per account and region. Instances of
# every deployment read weights (and compile caches) from it; a deployment's instance role may
# create objects under its own model revision's prefix, and only objects that do not exist yet.
data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  bucket = "qwen3vl-models-${data.aws_caller_identity.current.account_id}-${var.region}"
  # Write-once prefixes: weights by model and revision, compile caches by their key.
  write_once_prefixes = ["models/*", "compile-cache/*"]
}

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:Server access logs need a second bucket; the cache holds public model weights and compile caches, and CloudTrail data events can be enabled account-wide if reads must be audited.
  #checkov:skip=CKV_AWS_144:Cross-region replication would double the storage bill for data that is re-fillable from the Hugging Face hub; each region has its own cache.
  #checkov:skip=CKV2_AWS_62:Nothing consumes object events: instances find the cache by its deterministic prefix and completion marker.
  bucket        = local.bucket
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket                  = aws_s3_bucket.this.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id

  versioning_configuration {
    status = "Enabled"
  }
}

# SSE-S3 by default: SSE-KMS would bill a KMS request per GET of every streamed load unless a
# bucket key is on (it is, whenever kms_key_id is given).
resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_id == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_id
    }
    bucket_key_enabled = var.kms_key_id != null
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    id     = "expire-noncurrent-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

module "tls_only" {
  source     = "../modules/tls-only-bucket-policy"
  bucket_arn = aws_s3_bucket.this.arn
}

data "aws_iam_policy_document" "bucket" {
  source_policy_documents = [module.tls_only.json]

  # Nobody, the account root included, overwrites a cached file: PutObject and
  # CompleteMultipartUpload must carry If-None-Match (create only if absent). The parts of a
  # multipart upload carry no conditional header, so they are exempt (s3:ObjectCreationOperation).
  statement {
    sid       = "DenyOverwritingCachedFiles"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = [for p in local.write_once_prefixes : "${aws_s3_bucket.this.arn}/${p}"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Null"
      variable = "s3:if-none-match"
      values   = ["true"]
    }

    condition {
      test     = "Bool"
      variable = "s3:ObjectCreationOperation"
      values   = ["true"]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = data.aws_iam_policy_document.bucket.json

  depends_on = [aws_s3_bucket_public_access_block.this]
}
