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
