# The downstream API's authentication, TLS, request mapping and breaker (var.downstream_api):
# settings become S3STAGGER_* variables (secret ARNs only, never a value), and the processor role may
# read exactly the named secrets. See docs/processor.md.

locals {
  downstream_api = var.downstream_api

  downstream_secret_arns = compact([
    local.downstream_api.auth_secret_arn,
    local.downstream_api.tls_ca_secret_arn,
    local.downstream_api.tls_client_certificate_secret_arn,
  ])

  downstream_api_environment = { for name, value in {
    S3STAGGER_AUTH_MODE                 = local.downstream_api.auth_mode
    S3STAGGER_AUTH_SECRET_ID            = coalesce(local.downstream_api.auth_secret_arn, local.downstream_api.auth_parameter_arn, "-")
    S3STAGGER_AUTH_HEADER               = local.downstream_api.auth_header
    S3STAGGER_AUTH_SECRET_TTL_S         = tostring(local.downstream_api.secret_ttl_seconds)
    S3STAGGER_OAUTH_TOKEN_URL           = local.downstream_api.oauth_token_url
    S3STAGGER_OAUTH_SCOPE               = local.downstream_api.oauth_scope
    S3STAGGER_SIGV4_SERVICE             = local.downstream_api.sigv4_service
    S3STAGGER_TLS_CA_SECRET_ID          = local.downstream_api.tls_ca_secret_arn
    S3STAGGER_TLS_CLIENT_CERT_SECRET_ID = local.downstream_api.tls_client_certificate_secret_arn
    S3STAGGER_REQUEST_METHOD            = local.downstream_api.request_method
    S3STAGGER_REQUEST_HEADERS           = length(local.downstream_api.request_headers) > 0 ? jsonencode(local.downstream_api.request_headers) : null
    S3STAGGER_REQUEST_FIELDS            = local.downstream_api.request_fields == null ? null : jsonencode(local.downstream_api.request_fields)
    S3STAGGER_REQUEST_HOOK              = local.downstream_api.request_hook
    S3STAGGER_ROWS_PER_REQUEST          = tostring(local.downstream_api.rows_per_request)
    S3STAGGER_RETRYABLE_STATUSES        = join(",", [for status in local.downstream_api.retryable_statuses : tostring(status)])
    S3STAGGER_BREAKER_WINDOW            = tostring(local.downstream_api.breaker_window)
    S3STAGGER_BREAKER_RATIO             = tostring(local.downstream_api.breaker_ratio)
    S3STAGGER_BREAKER_MIN_ROWS          = tostring(local.downstream_api.breaker_min_rows)
  } : name => value if value != null && value != "" && value != "-" }
}

data "aws_iam_policy_document" "processor_downstream_api" {
  # Read the named secrets only: no wildcard, no ListSecrets, no other secret of the account.
  dynamic "statement" {
    for_each = length(local.downstream_secret_arns) > 0 ? [local.downstream_secret_arns] : []

    content {
      sid       = "ReadDownstreamSecrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = statement.value
    }
  }

  dynamic "statement" {
    for_each = local.downstream_api.auth_parameter_arn == null ? [] : [[local.downstream_api.auth_parameter_arn]]

    content {
      sid       = "ReadDownstreamParameter"
      actions   = ["ssm:GetParameter"]
      resources = statement.value
    }
  }

  # A customer-managed key of the secrets: usable only through Secrets Manager or SSM in this region.
  dynamic "statement" {
    for_each = local.downstream_api.secrets_kms_key_arn == null ? [] : [[local.downstream_api.secrets_kms_key_arn]]

    content {
      sid       = "DecryptDownstreamSecrets"
      actions   = ["kms:Decrypt"]
      resources = statement.value

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${local.region}.amazonaws.com", "ssm.${local.region}.amazonaws.com"]
      }
    }
  }

  # SigV4: the role may call the named API Gateway routes or function URLs, nothing else.
  dynamic "statement" {
    for_each = local.downstream_api.auth_mode == "sigv4" ? [local.downstream_api.sigv4_invoke_arns] : []

    content {
      sid       = "InvokeDownstreamApi"
      actions   = local.downstream_api.sigv4_service == "lambda" ? ["lambda:InvokeFunctionUrl"] : ["execute-api:Invoke"]
      resources = statement.value
    }
  }
}

resource "aws_iam_role_policy" "processor_downstream_api" {
  count = length(local.downstream_secret_arns) > 0 || local.downstream_api.auth_parameter_arn != null || local.downstream_api.auth_mode == "sigv4" ? 1 : 0

  name   = "downstream-api"
  role   = module.processor.role_name
  policy = data.aws_iam_policy_document.processor_downstream_api.json
}
