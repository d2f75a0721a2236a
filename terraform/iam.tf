data "aws_iam_policy_document" "assume_ec2" {
  statement {
    sid     = "EC2AssumeRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

# Every IAM object of the toolkit lives under this path, so the operator's policy
# (docs/iam-policy.json) can scope its IAM permissions to arn:aws:iam::*:role/qwen3vl/*.
locals {
  iam_path = "/qwen3vl/"
  # IAM names take 64 characters, so a name_prefix 38 (the provider appends 26): the deployment's
  # name is cut to what the longest suffix ("-at-zero-runbook-") leaves. The unique suffix keeps
  # cut names apart; descriptions and tags carry the whole name.
  iam_name = substr(var.name, 0, 38 - length("-at-zero-runbook-"))
}

resource "aws_iam_role" "this" {
  name_prefix        = "${local.iam_name}-instance-"
  path               = local.iam_path
  description        = "qwen3vl-aws ${var.name}: SSM managed instance and read access to its own API-key secret"
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json
}

# The command channel (SSM Run Command) needs the SSM Agent to register the instance and take
# commands: what the agent itself calls, and nothing of AmazonSSMManagedInstanceCore's extras
# (ssm:GetParameter(s) on every parameter, documents, associations, inventory, patching).
# These APIs have no resource-level permissions; the agent authenticates as this instance.
data "aws_iam_policy_document" "ssm_agent" {
  #checkov:skip=CKV_AWS_111:The SSM Agent acts only for the instance whose credentials it holds; ec2messages and ssmmessages list no resource types to narrow, and UpdateInstanceInformation registers this instance only.
  #checkov:skip=CKV_AWS_356:Same: ec2messages and ssmmessages accept only Resource "*"; the role belongs to this one instance, so "*" reaches nothing beyond it.
  statement {
    sid       = "RegisterWithSystemsManager"
    actions   = ["ssm:UpdateInstanceInformation"]
    resources = ["*"]
  }

  statement {
    sid = "ReceiveRunCommandMessages"
    actions = [
      "ec2messages:AcknowledgeMessage",
      "ec2messages:DeleteMessage",
      "ec2messages:FailMessage",
      "ec2messages:GetEndpoint",
      "ec2messages:GetMessages",
      "ec2messages:SendReply",
      "ssmmessages:CreateControlChannel",
      "ssmmessages:CreateDataChannel",
      "ssmmessages:OpenControlChannel",
      "ssmmessages:OpenDataChannel",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "ssm_agent" {
  name   = "ssm-agent"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.ssm_agent.json
}

data "aws_iam_policy_document" "read_secret" {
  statement {
    sid = "ReadThisDeploymentsApiKey"
    # qwen3vl-keysync: DescribeSecret for the staging labels, GetSecretValue by version id.
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [aws_secretsmanager_secret.this.arn]
  }

  dynamic "statement" {
    for_each = var.kms_key_id == null ? [] : [var.kms_key_id]
    content {
      sid       = "DecryptThisDeploymentsApiKey"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${var.region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role_policy" "read_secret" {
  name   = "read-api-key-secret"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.read_secret.json
}

# Stage 0 (userdata/stage0) fetches the instance's files: this deployment's one bundle object.
data "aws_iam_policy_document" "read_instance_files" {
  statement {
    sid       = "ReadThisDeploymentsInstanceFiles"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.this.arn}/${aws_s3_object.bundle.key}"]
  }
}

resource "aws_iam_role_policy" "read_instance_files" {
  name   = "read-instance-files"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.read_instance_files.json
}

resource "aws_iam_instance_profile" "this" {
  name_prefix = "${local.iam_name}-instance-"
  path        = local.iam_path
  role        = aws_iam_role.this.name
}
