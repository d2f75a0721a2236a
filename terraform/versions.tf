terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100.0, < 7.0.0"
    }
  }

  # State lives in the deployment's own directory; the CLI passes
  # -backend-config=path=<state dir>/terraform.tfstate at init.
  backend "local" {}
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, {
      Project    = "qwen3vl-aws"
      Deployment = var.name
      ManagedBy  = "terraform"
    })
  }
}
