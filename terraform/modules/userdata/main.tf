locals {
  # The module sits at terraform/modules/userdata; the instance's files at userdata/ (the CLI
  # stages both directories side by side).
  source_dir = "${path.module}/../../../userdata"

  # /etc/qwen3vl/deploy.env: non-secret settings, shell KEY='value' lines (the validations above
  # keep single quotes out of every value).
  settings = {
    DEPLOYMENT_NAME       = var.deployment_name
    REGION                = var.region
    SECRET_ARN            = var.secret_arn
    ENGINE                = var.engine
    MODEL_ID              = var.model_id
    DRAFT_MODEL_ID        = var.draft_model_id
    DRAFT_MODEL_REVISION  = var.draft_model_revision
    SERVED_MODEL_NAME     = var.served_model_name
    ENGINE_ARGS           = join(" ", var.engine_args)
    PUBLIC_HOST           = var.public_host
    DOMAIN                = var.domain
    PORT                  = tostring(var.port)
    ALLOWED_MEDIA_DOMAINS = join(" ", var.allowed_media_domains)
    MODEL_CACHE           = var.model_cache
    MAX_IMAGE_PIXELS      = tostring(var.max_image_pixels)
    MODEL_CACHE_BUCKET    = var.model_cache_bucket
    MODEL_REVISION        = var.model_revision
    # Stage 0's inputs: where the bundle is, its digest, and boto3's pin (versions.env itself
    # is in the bundle, so the pin is copied here).
    BUNDLE_BUCKET        = var.bundle_bucket
    BUNDLE_KEY           = var.bundle_key
    BUNDLE_SHA256        = var.bundle_sha256
    BUNDLE_BOTO3_VERSION = regex("(?m)^BOTO3_VERSION=([0-9][0-9a-z.]*)$", file("${local.source_dir}/versions.env"))[0]
  }
  # A fleet replica also knows its group, its drain hook and its metric namespace.
  fleet_settings = var.fleet == null ? {} : {
    FLEET_GROUP            = var.fleet.group_name
    FLEET_DRAIN_HOOK       = var.fleet.drain_hook_name
    FLEET_METRIC_NAMESPACE = var.fleet.metric_namespace
  }
  # With the S3 model cache, the role the engine streams the weights with.
  reader_settings = var.model_reader_role_arn == null ? {} : {
    MODEL_READER_ROLE_ARN = var.model_reader_role_arn
  }
  all_settings = merge(local.settings, local.fleet_settings, local.reader_settings)
  deploy_env   = join("", [for k in sort(keys(local.all_settings)) : "${k}='${local.all_settings[k]}'\n"])

  # The instance contract (userdata/instance.json, also read by the Python package and the rig)
  # lists the files the instance installs verbatim (fleet_files on a fleet's replicas only).
  # They travel as one bundle in S3 (EC2 allows only 16 KB of user data; the files are more):
  # {path: {mode, content}}, as JSON.
  contract = jsondecode(file("${local.source_dir}/instance.json"))
  installed = {
    for path, spec in merge(local.contract.files, local.contract.fleet_files) :
    path => spec if var.fleet != null || contains(keys(local.contract.files), path)
  }
  bundle = jsonencode({
    for path, spec in local.installed :
    path => { mode = spec.mode, content = file("${local.source_dir}/${spec.source}") }
  })

  # The user data itself: deploy.env, the boot unit, and stage 0, which fetches the bundle
  # before every start of the boot unit (a drop-in's ExecStartPre) and verifies its sha256.
  files = merge(
    {
      for path, spec in local.contract.stage0 :
      path => { mode = spec.mode, content = file("${local.source_dir}/${spec.source}") }
    },
    {
      (local.contract.paths.deploy_env) = { mode = "0644", content = local.deploy_env }
      # The boot unit itself, with the paths of a real instance (no root prefix).
      "/etc/systemd/system/${local.contract.units.bootstrap}" = {
        mode    = "0644"
        content = replace(file("${local.source_dir}/share/${local.contract.units.bootstrap}"), "@ROOT@", "")
      }
    },
  )

  rendered = templatefile("${local.source_dir}/cloud-init.yaml.tftpl", {
    deployment_name = var.deployment_name
    files           = local.files
  })
}
