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
    SERVED_MODEL_NAME     = var.served_model_name
    ENGINE_ARGS           = join(" ", var.engine_args)
    PUBLIC_HOST           = var.public_host
    DOMAIN                = var.domain
    PORT                  = tostring(var.port)
    ALLOWED_MEDIA_DOMAINS = join(" ", var.allowed_media_domains)
    MODEL_CACHE           = var.model_cache
  }
  # A fleet replica also knows its group, its drain hook and its metric namespace.
  fleet_settings = var.fleet == null ? {} : {
    FLEET_GROUP            = var.fleet.group_name
    FLEET_DRAIN_HOOK       = var.fleet.drain_hook_name
    FLEET_METRIC_NAMESPACE = var.fleet.metric_namespace
  }
  all_settings = merge(local.settings, local.fleet_settings)
  deploy_env   = join("", [for k in sort(keys(local.all_settings)) : "${k}='${local.all_settings[k]}'\n"])

  base_files = {
    "/etc/qwen3vl/deploy.env"                      = { mode = "0644", content = local.deploy_env }
    "/opt/qwen3vl/share/versions.env"              = { mode = "0644", content = file("${local.source_dir}/versions.env") }
    "/opt/qwen3vl/share/gateway.conf"              = { mode = "0644", content = file("${local.source_dir}/share/gateway.conf") }
    "/opt/qwen3vl/share/qwen3vl-engine.service"    = { mode = "0644", content = file("${local.source_dir}/share/qwen3vl-engine.service") }
    "/opt/qwen3vl/share/qwen3vl-gateway.service"   = { mode = "0644", content = file("${local.source_dir}/share/qwen3vl-gateway.service") }
    "/opt/qwen3vl/share/qwen3vl-bootstrap.service" = { mode = "0644", content = file("${local.source_dir}/share/qwen3vl-bootstrap.service") }
    # The boot unit itself, with the paths of a real instance (no root prefix).
    "/etc/systemd/system/qwen3vl-bootstrap.service" = { mode = "0644", content = replace(file("${local.source_dir}/share/qwen3vl-bootstrap.service"), "@ROOT@", "") }
    "/opt/qwen3vl/bin/qwen3vl-bootstrap"            = { mode = "0755", content = file("${local.source_dir}/bin/qwen3vl-bootstrap") }
    "/opt/qwen3vl/bin/qwen3vl-keysync"              = { mode = "0755", content = file("${local.source_dir}/bin/qwen3vl-keysync") }
    "/opt/qwen3vl/bin/qwen3vl-engine"               = { mode = "0755", content = file("${local.source_dir}/bin/qwen3vl-engine") }
  }

  # The fleet agent (queue metrics, drain on scale-in) and its units, on replicas only.
  fleet_files = var.fleet == null ? {} : {
    "/opt/qwen3vl/bin/qwen3vl-fleet"                   = { mode = "0755", content = file("${local.source_dir}/bin/qwen3vl-fleet") }
    "/opt/qwen3vl/share/qwen3vl-fleet-publish.service" = { mode = "0644", content = file("${local.source_dir}/share/qwen3vl-fleet-publish.service") }
    "/opt/qwen3vl/share/qwen3vl-fleet-publish.timer"   = { mode = "0644", content = file("${local.source_dir}/share/qwen3vl-fleet-publish.timer") }
    "/opt/qwen3vl/share/qwen3vl-fleet-drain.service"   = { mode = "0644", content = file("${local.source_dir}/share/qwen3vl-fleet-drain.service") }
    "/opt/qwen3vl/share/qwen3vl-fleet-drain.timer"     = { mode = "0644", content = file("${local.source_dir}/share/qwen3vl-fleet-drain.timer") }
  }
  files = merge(local.base_files, local.fleet_files)

  rendered = templatefile("${local.source_dir}/cloud-init.yaml.tftpl", {
    deployment_name = var.deployment_name
    files           = local.files
  })
}
