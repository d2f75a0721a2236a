# What a client sees while a MIN = 0 fleet is at zero, switched by AWS's own engines (no Lambda):
#
# - aws_lb_listener_rule.at_zero answers every request with a JSON 503 that says the fleet is
#   waking and when to retry. The ALB cannot add headers to a fixed response, so the retry time
#   is in the body (retry_after), not in a Retry-After header. "On" is the condition path "/*";
#   "off" is a header no client sends. The group starts at zero, so the rule starts on.
# - EventBridge hears the group's own lifecycle events and starts the SSM Automation runbook
#   aws_ssm_document.at_zero, which reads the group's desired capacity: at 0 it turns the rule
#   on; after a launch it waits (aws:waitForAwsResourceProperty) until that instance's target
#   is healthy, reads the desired capacity again, and turns the rule off (or on, if the group
#   went back to zero meanwhile).
#
# Limits: EventBridge and the automation add seconds (typically under a minute) between the
# group's change and the rule's; in that window a request at zero gets the ALB's own 503 (no
# healthy target, HTML body). The wake alarm (fleet_scaling.tf) counts both kinds of 503.

data "aws_caller_identity" "current" {
  count = local.scale_to_zero_count
}

locals {
  at_zero_header = "X-Qwen3vl-At-Zero"
  # The runbook's step that waits for the new replica's target: the group's grace period (the
  # longest a healthy boot may take) and ten minutes for the health check's threshold.
  at_zero_wait_seconds = var.health_check_grace_seconds + 600
  at_zero_account      = one(data.aws_caller_identity.current[*].account_id)
  at_zero_roles = local.scale_to_zero_count == 0 ? {} : {
    events  = { service = "events.amazonaws.com", does = "EventBridge starts the at-zero runbook" }
    runbook = { service = "ssm.amazonaws.com", does = "the at-zero runbook reads the group and switches its listener rule" }
  }
  # The runbook's step that reads the group's desired capacity (run first, and after the wait).
  at_zero_read_group = {
    action  = "aws:executeAwsApi"
    inputs  = { Service = "autoscaling", Api = "DescribeAutoScalingGroups", AutoScalingGroupNames = [local.group_name] }
    outputs = [{ Name = "Desired", Selector = "$.AutoScalingGroups[0].DesiredCapacity", Type = "Integer" }]
  }
  at_zero_switch = {
    switchOn  = { Field = "path-pattern", PathPatternConfig = { Values = ["/*"] } }
    switchOff = { Field = "http-header", HttpHeaderConfig = { HttpHeaderName = local.at_zero_header, Values = ["off"] } }
  }
  # The group's events that may change whether it is at zero.
  at_zero_events = [
    "EC2 Instance Launch Successful",
    "EC2 Instance-terminate Lifecycle Action",
    "EC2 Instance Terminate Successful",
  ]
}

resource "aws_lb_listener_rule" "at_zero" {
  count        = local.scale_to_zero_count
  listener_arn = aws_lb_listener.https[0].arn
  priority     = 1

  action {
    type = "fixed-response"

    fixed_response {
      content_type = "application/json"
      status_code  = "503"
      message_body = jsonencode({
        error = {
          message     = "The fleet is scaled to zero and is starting a replica. Retry in about ${var.retry_after_seconds} seconds."
          type        = "server_error"
          code        = "scaled_to_zero"
          retry_after = var.retry_after_seconds
        }
      })
    }
  }

  # On: the group starts at zero. The runbook switches it from here on.
  condition {
    path_pattern {
      values = ["/*"]
    }
  }

  lifecycle {
    ignore_changes = [condition]
  }
}

# The runbook (schema 0.3). Parameters come from the event: the instance it is about and the
# event's detail-type.
resource "aws_ssm_document" "at_zero" {
  count           = local.scale_to_zero_count
  name            = "${var.name}-fleet-at-zero"
  document_type   = "Automation"
  document_format = "JSON"

  content = jsonencode({
    schemaVersion = "0.3"
    description   = "qwen3vl-aws ${var.name}: the at-zero 503 rule is in force only while the fleet's group is at zero."
    assumeRole    = aws_iam_role.at_zero["runbook"].arn
    parameters = {
      InstanceId = { type = "String", description = "The instance the group's event is about.", default = "" }
      Transition = { type = "String", description = "The event's detail-type.", default = "" }
    }
    mainSteps = concat(
      [
        merge(local.at_zero_read_group, { name = "readGroup" }),
        {
          name   = "atZeroOrLaunched"
          action = "aws:branch"
          inputs = {
            Choices = [
              { NextStep = "switchOn", Variable = "{{ readGroup.Desired }}", NumericEquals = 0 },
              { NextStep = "waitHealthy", Variable = "{{ Transition }}", StringEquals = "EC2 Instance Launch Successful" },
            ]
          }
          isEnd = true # neither: an instance left a group that still serves; nothing to switch
        },
        {
          name           = "waitHealthy"
          action         = "aws:waitForAwsResourceProperty"
          timeoutSeconds = local.at_zero_wait_seconds
          onFailure      = "step:readGroupAgain" # timed out (the replica never served): decide anyway
          nextStep       = "readGroupAgain"
          inputs = {
            Service          = "elbv2"
            Api              = "DescribeTargetHealth"
            TargetGroupArn   = aws_lb_target_group.this[0].arn
            Targets          = [{ Id = "{{ InstanceId }}" }]
            PropertySelector = "$.TargetHealthDescriptions[0].TargetHealth.State"
            DesiredValues    = ["healthy"]
          }
        },
        merge(local.at_zero_read_group, { name = "readGroupAgain" }),
        {
          name   = "stillAtZero"
          action = "aws:branch"
          inputs = {
            Choices = [{ NextStep = "switchOn", Variable = "{{ readGroupAgain.Desired }}", NumericEquals = 0 }]
            Default = "switchOff"
          }
        },
      ],
      # Switch: on, every request matches; off, only a header no client sends.
      [for name, condition in local.at_zero_switch : {
        name   = name
        action = "aws:executeAwsApi"
        inputs = {
          Service    = "elbv2"
          Api        = "ModifyRule"
          RuleArn    = aws_lb_listener_rule.at_zero[0].arn
          Conditions = [condition]
        }
        isEnd = true
      }],
    )
  })
}

resource "aws_cloudwatch_event_rule" "at_zero" {
  count       = local.scale_to_zero_count
  name        = "${var.name}-fleet-at-zero"
  description = "qwen3vl-aws ${var.name}: the group's launches and terminations switch the at-zero 503 rule."

  event_pattern = jsonencode({
    source        = ["aws.autoscaling"]
    "detail-type" = local.at_zero_events
    detail        = { AutoScalingGroupName = [local.group_name] }
  })
}

resource "aws_cloudwatch_event_target" "at_zero" {
  count     = local.scale_to_zero_count
  rule      = aws_cloudwatch_event_rule.at_zero[0].name
  target_id = "at-zero-runbook"
  arn       = "arn:${data.aws_partition.current.partition}:ssm:${var.region}:${local.at_zero_account}:automation-definition/${aws_ssm_document.at_zero[0].name}:$DEFAULT"
  role_arn  = aws_iam_role.at_zero["events"].arn

  # An Automation target takes the runbook's parameters, each a list of strings.
  input_transformer {
    input_paths = {
      instance   = "$.detail.EC2InstanceId"
      transition = "$.detail-type"
    }
    input_template = "{\"InstanceId\": [\"<instance>\"], \"Transition\": [\"<transition>\"]}"
  }
}

# --- roles: EventBridge may start this runbook only; the runbook may switch this rule only ---

# One role per service: EventBridge (starts the runbook) and SSM Automation (runs it).
data "aws_iam_policy_document" "at_zero_assume" {
  for_each = local.at_zero_roles

  statement {
    sid     = "AssumedBy${title(each.key)}"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = [each.value.service]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.at_zero_account]
    }
  }
}

resource "aws_iam_role" "at_zero" {
  for_each           = local.at_zero_roles
  name_prefix        = "${local.iam_name}-at-zero-${each.key}-"
  path               = local.iam_path
  description        = "qwen3vl-aws ${var.name}: ${each.value.does}"
  assume_role_policy = data.aws_iam_policy_document.at_zero_assume[each.key].json
}

data "aws_iam_policy_document" "at_zero_events" {
  count = local.scale_to_zero_count

  statement {
    sid       = "StartTheAtZeroRunbookOnly"
    actions   = ["ssm:StartAutomationExecution"]
    resources = ["arn:${data.aws_partition.current.partition}:ssm:${var.region}:${local.at_zero_account}:automation-definition/${aws_ssm_document.at_zero[0].name}:*"]
  }

  statement {
    sid       = "PassTheAutomationRoleToSsmOnly"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.at_zero["runbook"].arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ssm.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "at_zero_runbook" {
  count = local.scale_to_zero_count

  statement {
    sid       = "SwitchTheAtZeroRuleOnly"
    actions   = ["elasticloadbalancing:ModifyRule"]
    resources = [aws_lb_listener_rule.at_zero[0].arn]
  }

  statement {
    sid = "ReadTheGroupAndItsTargets"
    # Describe calls take no resource-level permissions (Resource "*" only).
    actions   = ["autoscaling:DescribeAutoScalingGroups", "elasticloadbalancing:DescribeTargetHealth"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "at_zero" {
  for_each = local.at_zero_roles
  name     = "at-zero-${each.key}"
  role     = aws_iam_role.at_zero[each.key].id
  policy = {
    events  = one(data.aws_iam_policy_document.at_zero_events[*].json)
    runbook = one(data.aws_iam_policy_document.at_zero_runbook[*].json)
  }[each.key]
}
