terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.61"
    }
  }
}

# Region and credentials from the environment (AWS_REGION, AWS_PROFILE, ...).
provider "aws" {}
