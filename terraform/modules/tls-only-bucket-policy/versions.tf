terraform {
  # Pure rendering: no providers.
  required_version = ">= 1.5.0"
}
