#!/usr/bin/env bash
# The script users write today (the baseline of benchmark 2): one AssumeRoleWithWebIdentity call with the
# aws CLI, then the four credential files. Debian's aws CLI by absolute path: a pyenv `aws` shim may come
# first on PATH. Inputs: STS_ENDPOINT, AWS_REGION, ROLE_ARN, TOKEN_FILE, OUT_DIR.
set -euo pipefail
out=$(/usr/bin/aws sts assume-role-with-web-identity \
  --endpoint-url "$STS_ENDPOINT" \
  --region "$AWS_REGION" \
  --role-arn "$ROLE_ARN" \
  --role-session-name bench-aws-cli \
  --web-identity-token "$(cat "$TOKEN_FILE")" \
  --duration-seconds 3600 \
  --query 'Credentials.[AccessKeyId,SecretAccessKey,SessionToken,Expiration]' \
  --output text)
read -r access_key secret_key session_token expiration <<<"$out"
umask 077
printf '%s' "$access_key" >"$OUT_DIR/access-key"
printf '%s' "$secret_key" >"$OUT_DIR/secret-key"
printf '%s' "$session_token" >"$OUT_DIR/session-token"
printf '%s' "$expiration" >"$OUT_DIR/expiration"
