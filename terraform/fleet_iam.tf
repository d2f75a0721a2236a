# What a fleet instance may do beyond a single instance (iam.tf): publish its engine's queue in
# the deployment's own metric namespace, and complete the termination lifecycle action of its
# own group once it has drained.

data "aws_iam_policy_document" "fleet" {
  count = local.fleet_count

  statement {
    sid       = "PublishEngineQueueInOwnNamespace"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"] # PutMetricData has no resource type; the namespace condition scopes it.

    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [local.metric_namespace]
    }
  }

  statement {
    sid       = "CompleteOwnGroupsLifecycleAction"
    actions   = ["autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"]
    resources = [aws_autoscaling_group.this[0].arn]
  }
}

resource "aws_iam_role_policy" "fleet" {
  count  = local.fleet_count
  name   = "fleet-metrics-and-drain"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.fleet[0].json
}
