# The fleet's scaling and draining, all on AWS's own engines:
# - each instance publishes vLLM's running and waiting request counts (qwen3vl-fleet publish)
#   to the namespace local.metric_namespace; a target-tracking policy keeps the load per
#   in-service instance at target_load;
# - with MIN = 0, an alarm scales the group to zero after idle_minutes without requests, and a
#   wake alarm (requests knocking while the group is at zero) sets it back to one; while it is
#   at zero a listener rule answers a JSON 503, switched by the group's own events
#   (fleet_at_zero.tf);
# - a termination lifecycle hook holds a leaving instance while it drains (qwen3vl-fleet drain).

locals {
  scale_to_zero_count = local.fleet && local.fleet_min == 0 ? 1 : 0
  group_dimension     = { AutoScalingGroupName = local.group_name }
  # The load balancer's CloudWatch dimension ("app/<name>/<id>").
  lb_dimension = { LoadBalancer = one(aws_lb.this[*].arn_suffix) }
}

resource "aws_autoscaling_lifecycle_hook" "drain" {
  count                  = local.fleet_count
  name                   = local.drain_hook_name
  autoscaling_group_name = aws_autoscaling_group.this[0].name
  lifecycle_transition   = "autoscaling:EC2_INSTANCE_TERMINATING"
  # Longer than the target's deregistration delay, so the instance finishes its streams and
  # completes the action itself; CONTINUE if it never does (the instance is gone anyway).
  heartbeat_timeout = var.deregistration_delay_seconds + 300
  default_result    = "CONTINUE"
}

# Load per instance = (running + waiting requests, summed over the group) / in-service instances.
resource "aws_autoscaling_policy" "load" {
  count                  = local.fleet_count
  name                   = "load-per-instance"
  autoscaling_group_name = aws_autoscaling_group.this[0].name
  policy_type            = "TargetTrackingScaling"

  target_tracking_configuration {
    target_value = var.target_load

    customized_metric_specification {
      metrics {
        id          = "load"
        label       = "vLLM running + waiting requests per in-service instance"
        expression  = "(FILL(running, 0) + FILL(waiting, 0)) / IF(in_service > 0, in_service, 1)"
        return_data = true
      }

      dynamic "metrics" {
        for_each = { running = "RunningRequests", waiting = "WaitingRequests" }
        content {
          id          = metrics.key
          return_data = false

          metric_stat {
            stat = "Average"

            metric {
              namespace   = local.metric_namespace
              metric_name = metrics.value

              dimensions {
                name  = "AutoScalingGroupName"
                value = local.group_name
              }
            }
          }
        }
      }

      metrics {
        id          = "in_service"
        return_data = false

        metric_stat {
          stat = "Average"

          metric {
            namespace   = "AWS/AutoScaling"
            metric_name = "GroupInServiceInstances"

            dimensions {
              name  = "AutoScalingGroupName"
              value = local.group_name
            }
          }
        }
      }
    }
  }
}

# --- scale to zero (MIN = 0) --------------------------------------------------------------

resource "aws_autoscaling_policy" "to_zero" {
  count                  = local.scale_to_zero_count
  name                   = "idle-to-zero"
  autoscaling_group_name = aws_autoscaling_group.this[0].name
  policy_type            = "StepScaling"
  adjustment_type        = "ExactCapacity"

  step_adjustment {
    scaling_adjustment          = 0
    metric_interval_upper_bound = 0
  }
}

resource "aws_autoscaling_policy" "wake" {
  count                  = local.scale_to_zero_count
  name                   = "wake-from-zero"
  autoscaling_group_name = aws_autoscaling_group.this[0].name
  policy_type            = "StepScaling"
  adjustment_type        = "ExactCapacity"

  step_adjustment {
    scaling_adjustment          = 1
    metric_interval_lower_bound = 0
  }
}

# Idle: no request reached the load balancer and no engine had work, for idle_minutes.
resource "aws_cloudwatch_metric_alarm" "idle" {
  count               = local.scale_to_zero_count
  alarm_name          = "${var.name}-fleet-idle"
  alarm_description   = "qwen3vl-aws ${var.name}: no requests for ${var.idle_minutes} minutes; scale the fleet to zero."
  comparison_operator = "LessThanThreshold"
  threshold           = 0.5
  evaluation_periods  = var.idle_minutes
  datapoints_to_alarm = var.idle_minutes
  treat_missing_data  = "breaching"
  alarm_actions       = [aws_autoscaling_policy.to_zero[0].arn]

  metric_query {
    id          = "busy"
    label       = "requests at the load balancer + engine work"
    expression  = "FILL(requests, 0) + FILL(running, 0) + FILL(waiting, 0)"
    return_data = true
  }

  metric_query {
    id = "requests"

    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "RequestCount"
      dimensions  = local.lb_dimension
      period      = 60
      stat        = "Sum"
    }
  }

  dynamic "metric_query" {
    for_each = { running = "RunningRequests", waiting = "WaitingRequests" }
    content {
      id = metric_query.key

      metric {
        namespace   = local.metric_namespace
        metric_name = metric_query.value
        dimensions  = local.group_dimension
        period      = 60
        stat        = "Maximum"
      }
    }
  }
}

# Wake: while the group's desired capacity is 0, any request that reaches the load balancer is
# answered by it (the at-zero 503 rule, or its own 503 when the group has no targets) and counted;
# one such minute sets the group to one instance.
resource "aws_cloudwatch_metric_alarm" "wake" {
  count               = local.scale_to_zero_count
  alarm_name          = "${var.name}-fleet-wake"
  alarm_description   = "qwen3vl-aws ${var.name}: a request arrived while the fleet is at zero; start one replica."
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_autoscaling_policy.wake[0].arn]

  metric_query {
    id          = "knocking"
    label       = "requests answered by the load balancer while the group is at zero"
    expression  = "IF(FILL(desired, 1) < 1 AND (FILL(fixed, 0) + FILL(elb503, 0)) > 0, 1, 0)"
    return_data = true
  }

  metric_query {
    id = "desired"

    metric {
      namespace   = "AWS/AutoScaling"
      metric_name = "GroupDesiredCapacity"
      dimensions  = local.group_dimension
      period      = 60
      stat        = "Minimum"
    }
  }

  dynamic "metric_query" {
    for_each = { fixed = "HTTP_Fixed_Response_Count", elb503 = "HTTPCode_ELB_503_Count" }
    content {
      id = metric_query.key

      metric {
        namespace   = "AWS/ApplicationELB"
        metric_name = metric_query.value
        dimensions  = local.lb_dimension
        period      = 60
        stat        = "Sum"
      }
    }
  }
}
