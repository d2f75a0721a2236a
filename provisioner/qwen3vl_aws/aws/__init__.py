"""AWS: boto3 clients, pre-flight checks, prices, the Terraform runner, stop/start."""
