# The HTTP API: POST /webhook -> webhook function (authenticated by the
# payload's HMAC signature), /api/* -> api function (bearer tokens in the
# function, or a JWT authorizer here), throttled, with JSON access logs.

resource "aws_apigatewayv2_api" "this" {
  name          = var.name
  protocol_type = "HTTP"
  description   = "Octoscope: GitHub webhooks and the read API"

  dynamic "cors_configuration" {
    for_each = length(var.cors_allow_origins) > 0 ? [1] : []
    content {
      allow_origins = var.cors_allow_origins
      allow_methods = ["GET", "POST", "PUT", "DELETE", "OPTIONS"]
      allow_headers = ["authorization", "content-type"]
      max_age       = 3600
    }
  }

  tags = var.tags
}

resource "aws_apigatewayv2_integration" "webhook" {
  api_id                 = aws_apigatewayv2_api.this.id
  integration_type       = "AWS_PROXY"
  integration_uri        = var.webhook_function.invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = 29000
}

resource "aws_apigatewayv2_integration" "api" {
  api_id                 = aws_apigatewayv2_api.this.id
  integration_type       = "AWS_PROXY"
  integration_uri        = var.api_function.invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = 29000
}

resource "aws_apigatewayv2_authorizer" "jwt" {
  count            = var.jwt_authorizer == null ? 0 : 1
  api_id           = aws_apigatewayv2_api.this.id
  name             = "jwt"
  authorizer_type  = "JWT"
  identity_sources = ["$request.header.Authorization"]

  jwt_configuration {
    issuer   = var.jwt_authorizer.issuer
    audience = var.jwt_authorizer.audience
  }
}

resource "aws_apigatewayv2_route" "webhook" {
  #checkov:skip=CKV_AWS_309:GitHub cannot send a bearer token or JWT; every delivery is authenticated by its X-Hub-Signature-256 HMAC, verified by the function before anything is stored (401 otherwise).
  api_id             = aws_apigatewayv2_api.this.id
  route_key          = "POST /webhook"
  target             = "integrations/${aws_apigatewayv2_integration.webhook.id}"
  authorization_type = "NONE"
}

resource "aws_apigatewayv2_route" "api" {
  #checkov:skip=CKV_AWS_309:Without a JWT issuer (jwt_authorizer = null) the api function itself requires a bearer token on every /api/* call (tokens from an SSM SecureString, constant-time compare) and refuses to start without one; with jwt_authorizer set this route uses the JWT authorizer.
  for_each           = toset(var.api_route_keys)
  api_id             = aws_apigatewayv2_api.this.id
  route_key          = each.value
  target             = "integrations/${aws_apigatewayv2_integration.api.id}"
  authorization_type = var.jwt_authorizer == null ? "NONE" : "JWT"
  authorizer_id      = var.jwt_authorizer == null ? null : aws_apigatewayv2_authorizer.jwt[0].id
}

resource "aws_cloudwatch_log_group" "access" {
  #checkov:skip=CKV_AWS_338:Access logs are operational; retention is a variable (default 30 days).
  name              = "/aws/apigateway/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.this.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_burst_limit = var.throttling_burst_limit
    throttling_rate_limit  = var.throttling_rate_limit
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format = jsonencode({
      requestId          = "$context.requestId"
      ip                 = "$context.identity.sourceIp"
      requestTime        = "$context.requestTime"
      httpMethod         = "$context.httpMethod"
      routeKey           = "$context.routeKey"
      status             = "$context.status"
      responseLength     = "$context.responseLength"
      integrationLatency = "$context.integrationLatency"
      integrationError   = "$context.integrationErrorMessage"
      userAgent          = "$context.identity.userAgent"
    })
  }

  tags = var.tags
}

resource "aws_lambda_permission" "webhook" {
  statement_id  = "AllowHttpApiWebhook"
  action        = "lambda:InvokeFunction"
  function_name = var.webhook_function.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.this.execution_arn}/*/POST/webhook"
}

resource "aws_lambda_permission" "api" {
  statement_id  = "AllowHttpApiApi"
  action        = "lambda:InvokeFunction"
  function_name = var.api_function.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.this.execution_arn}/*/*/api/*"
}
