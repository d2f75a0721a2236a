terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100.0, < 7.0.0"
    }
  }

  # One state per account and region, kept by the CLI under its state home
  # (-backend-config=path=...); deployments only read the bucket's name.
  backend "local" {}
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, {
      Project   = "qwen3vl-aws"
      Component = "model-cache"
      ManagedBy = "terraform"
    })
  }
}
