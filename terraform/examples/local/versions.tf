terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # >= 5.61: aws_sfn_state_machine encryption_configuration (customer KMS keys).
      # < 6: tested against 5.x (the offline mirror holds 5.100.0); 6 replaces data.aws_region
      # name with region, which main.tf and the test mocks read.
      version = ">= 5.61, < 6.0"
    }
  }
}

# Every service the modules use, at the emulator's one endpoint. Credentials come from the
# environment (s3stagger sets AWS_ACCESS_KEY_ID=testing); nothing here reaches AWS.
provider "aws" {
  region                      = var.region
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  s3_use_path_style           = true
  # An action the emulator lacks answers 500: fail after a few tries instead of retrying for minutes.
  max_retries = 3

  endpoints {
    cloudwatch = var.endpoint_url
    events     = var.endpoint_url
    iam        = var.endpoint_url
    lambda     = var.endpoint_url
    logs       = var.endpoint_url
    s3         = var.endpoint_url
    scheduler  = var.endpoint_url
    sfn        = var.endpoint_url
    sqs        = var.endpoint_url
    ssm        = var.endpoint_url
    sts        = var.endpoint_url
  }
}
