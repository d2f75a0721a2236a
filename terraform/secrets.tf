# The API key's secret, created EMPTY: Terraform never sees the key. The CLI writes the value with
# boto3 (put_secret_value) between a targeted apply of this resource and the full apply, so the
# instance finds a current version at first boot. The key therefore never reaches Terraform's
# variables, state, plan files or outputs.
resource "aws_secretsmanager_secret" "this" {
  #checkov:skip=CKV2_AWS_57:Rotation is driven by the CLI (`qwen3vl-aws rotate-key`), which stages AWSPENDING, syncs the gateway over the command channel and then promotes it; a Lambda rotator cannot reload the gateway.
  name_prefix             = "qwen3vl/${var.name}/api-key-"
  description             = "API key of the qwen3vl-aws endpoint ${var.name} (value written by the CLI, never by Terraform)."
  kms_key_id              = var.kms_key_id
  recovery_window_in_days = var.secret_recovery_window_days
}
