# The NVIDIA-driver Deep Learning Base AMI: from the region's public SSM parameter (default) or the
# newest image matching an owner and name filter. An explicit ami_id skips both lookups.
data "aws_ssm_parameter" "ami" {
  count = var.ami_id == null && var.ami_lookup == "ssm" ? 1 : 0
  name  = var.ami_ssm_parameter
}

data "aws_ami" "filtered" {
  count       = var.ami_id == null && var.ami_lookup == "filter" ? 1 : 0
  most_recent = true
  owners      = var.ami_owners

  filter {
    name   = "name"
    values = [var.ami_name_filter]
  }

  filter {
    name   = "architecture"
    values = ["x86_64"]
  }

  filter {
    name   = "state"
    values = ["available"]
  }
}

locals {
  ami_id = coalesce(
    var.ami_id,
    one(data.aws_ssm_parameter.ami[*].insecure_value),
    one(data.aws_ami.filtered[*].id),
  )
}
