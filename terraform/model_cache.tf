# The instance role's access to the account's S3 model cache (terraform/model-cache creates the
# bucket once per account and region). Read: this model revision's files and the compile caches.
# Write: create-only (If-None-Match), so the one instance that fills the cache cannot overwrite
# anything, and nothing it writes is ever replaced. The engine unit cannot reach the metadata
# service (IPAddressDeny), so only root-run bootstrap steps hold these credentials.
data "aws_partition" "current" {}

locals {
  model_cache_enabled  = var.model_cache_bucket != ""
  model_cache_arn      = "arn:${data.aws_partition.current.partition}:s3:::${var.model_cache_bucket}"
  model_cache_prefix   = "models/${var.model_id}/${var.model_revision}/"
  compile_cache_prefix = "compile-cache/"
}

data "aws_iam_policy_document" "model_cache" {
  statement {
    sid       = "ListThisModelRevisionAndCompileCaches"
    actions   = ["s3:ListBucket"]
    resources = [local.model_cache_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.model_cache_prefix}*", "${local.compile_cache_prefix}*"]
    }
  }

  statement {
    sid     = "ReadThisModelRevisionAndCompileCaches"
    actions = ["s3:GetObject"]
    resources = [
      "${local.model_cache_arn}/${local.model_cache_prefix}*",
      "${local.model_cache_arn}/${local.compile_cache_prefix}*",
    ]
  }

  statement {
    sid     = "CreateCacheFilesOnlyIfAbsent"
    actions = ["s3:PutObject"]
    resources = [
      "${local.model_cache_arn}/${local.model_cache_prefix}*",
      "${local.model_cache_arn}/${local.compile_cache_prefix}*",
    ]

    condition {
      test     = "Null"
      variable = "s3:if-none-match"
      values   = ["false"]
    }
  }

  # The parts of a multipart upload (files over 5 GB) carry no conditional header; the upload
  # only takes effect with CompleteMultipartUpload, which the statement above conditions.
  statement {
    sid       = "UploadPartsOfLargeCacheFiles"
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
    resources = ["${local.model_cache_arn}/${local.model_cache_prefix}*"]

    condition {
      test     = "Bool"
      variable = "s3:ObjectCreationOperation"
      values   = ["false"]
    }
  }
}

resource "aws_iam_role_policy" "model_cache" {
  count = local.model_cache_enabled ? 1 : 0

  name   = "model-cache"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.model_cache.json

  lifecycle {
    precondition {
      condition     = can(regex("^[0-9a-f]{40}$", var.model_revision))
      error_message = "model_cache_bucket needs model_revision pinned to a 40-character commit hash of ${var.model_id}, so that every instance reads the same files."
    }
  }
}
