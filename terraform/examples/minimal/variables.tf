variable "downstream_url" {
  type        = string
  description = "Full URL the processor POSTs rows to, for example `https://api.example.com/v1/rows`."
}

variable "package_path" {
  type        = string
  description = "Path of the arm64 Lambda zip built by `make package` in the repository root."
  default     = "../../../dist/s3stagger-lambda-arm64.zip"
}
