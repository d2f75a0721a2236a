# The instance role's access to the account's S3 model cache (terraform/model-cache creates the
# bucket once per account and region). Read: this model revision's files and the compile caches.
# Write: create-only (If-None-Match), so the one instance that fills the cache cannot overwrite
# anything, and nothing it writes is ever replaced. The engine unit cannot reach the metadata
# service (IPAddressDeny), so only root-run steps hold these credentials. The engine streams the
# weights with the reader role's (below): read-only, this revision's files only, one hour.
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

  # The engine unit's privileged ExecStartPre hands the engine a session of the reader role.
  dynamic "statement" {
    for_each = aws_iam_role.model_reader[*].arn
    content {
      sid       = "HandTheEngineTheReaderRole"
      actions   = ["sts:AssumeRole"]
      resources = [statement.value]
    }
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

# The engine's own credentials: it streams this revision's weights, config and tokenizer straight
# from S3 (vLLM's Run:ai streamer) and may do nothing else, so an engine that a request subverts
# holds no key to the API secret, no write and no other model. Sessions last one hour: the engine
# reads S3 only while it loads, and each (re)start of the unit takes a fresh session.
data "aws_iam_policy_document" "model_reader_trust" {
  statement {
    sid     = "TheInstanceRoleAssumesIt"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.this.arn]
    }
  }
}

data "aws_iam_policy_document" "model_reader" {
  statement {
    sid       = "ListThisModelRevision"
    actions   = ["s3:ListBucket"]
    resources = [local.model_cache_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.model_cache_prefix}*"]
    }
  }

  statement {
    sid       = "ReadThisModelRevision"
    actions   = ["s3:GetObject"]
    resources = ["${local.model_cache_arn}/${local.model_cache_prefix}*"]
  }
}

resource "aws_iam_role" "model_reader" {
  count = local.model_cache_enabled ? 1 : 0

  name_prefix          = "${local.iam_name}-reader-"
  path                 = local.iam_path
  description          = "qwen3vl-aws ${var.name}: the engine's read-only access to its model revision in the S3 model cache"
  assume_role_policy   = data.aws_iam_policy_document.model_reader_trust.json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "model_reader" {
  count = local.model_cache_enabled ? 1 : 0

  name   = "model-reader"
  role   = aws_iam_role.model_reader[0].id
  policy = data.aws_iam_policy_document.model_reader.json
}
