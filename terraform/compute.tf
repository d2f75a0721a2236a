module "userdata" {
  source = "./modules/userdata"

  deployment_name      = var.name
  region               = var.region
  secret_arn           = aws_secretsmanager_secret.this.arn
  engine               = var.engine
  model_id             = var.model_id
  draft_model_id       = var.draft_model_id
  draft_model_revision = var.draft_model_revision
  served_model_name    = var.served_model_name
  engine_args          = var.engine_args
  public_host          = local.fleet ? aws_lb.this[0].dns_name : aws_eip.this[0].public_ip
  domain               = var.domain
  port                 = var.port

  allowed_media_domains = var.allowed_media_domains
  model_cache           = var.model_cache
  max_image_pixels      = var.max_image_pixels
  model_cache_bucket    = var.model_cache_bucket
  model_revision        = var.model_revision
  model_reader_role_arn = one(aws_iam_role.model_reader[*].arn)

  fleet = local.fleet ? {
    group_name       = local.group_name
    drain_hook_name  = local.drain_hook_name
    metric_namespace = local.metric_namespace
  } : null

  bundle_bucket = aws_s3_bucket.this.id
  bundle_key    = local.bundle_key
  bundle_sha256 = module.userdata.bundle_sha256
}

resource "aws_instance" "this" {
  #checkov:skip=CKV_AWS_126:Detailed monitoring is opt-in (variable detailed_monitoring) because it is billed; health is judged by real requests through the endpoint.
  # A fleet (fleet.tf) launches the same instance from a launch template instead.
  count                  = local.fleet ? 0 : 1
  ami                    = local.ami_id
  instance_type          = var.instance_type
  subnet_id              = local.subnet_id
  vpc_security_group_ids = [aws_security_group.this.id]
  iam_instance_profile   = aws_iam_instance_profile.this.name
  key_name               = local.ssh_enabled ? var.ssh_key_name : null
  ebs_optimized          = true
  monitoring             = var.detailed_monitoring

  # cloud-init runs user-data only at an instance's first boot, so a changed engine or serving
  # plan takes effect only on a new instance: replace rather than silently keep the old setup.
  user_data_base64            = module.userdata.base64gzip
  user_data_replace_on_change = true

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = var.root_volume_size_gib
    throughput            = var.root_volume_throughput
    iops                  = var.root_volume_iops
    encrypted             = true
    kms_key_id            = var.kms_key_id
    delete_on_termination = true
    tags                  = { Name = "${var.name}-root" }
  }

  tags = { Name = var.name }

  lifecycle {
    precondition {
      condition     = var.root_volume_throughput <= var.root_volume_iops / 4
      error_message = "gp3 allows at most 0.25 MiB/s per IOPS: raise root_volume_iops to at least ${var.root_volume_throughput * 4} or lower root_volume_throughput."
    }
  }

  # The secret must hold a value before the instance boots (see secrets.tf); the bundle and the
  # role's read of it must exist before stage 0 fetches it.
  depends_on = [
    aws_iam_role_policy.read_secret,
    aws_iam_role_policy.ssm_agent,
    aws_iam_role_policy.read_instance_files,
    aws_s3_object.bundle,
  ]
}

# The Elastic IP is the endpoint's stable address (it survives stop/start and replacement). Until
# it is attached, seconds after launch, a default subnet's launch-time address serves downloads.
resource "aws_eip_association" "this" {
  count         = local.fleet ? 0 : 1
  allocation_id = aws_eip.this[0].allocation_id
  instance_id   = aws_instance.this[0].id
}

# Before the fleet shape existed these had no count: keep old states planning without changes.
moved {
  from = aws_instance.this
  to   = aws_instance.this[0]
}

moved {
  from = aws_eip_association.this
  to   = aws_eip_association.this[0]
}

moved {
  from = aws_eip.this
  to   = aws_eip.this[0]
}
