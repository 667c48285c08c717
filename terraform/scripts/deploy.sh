#!/usr/bin/env bash
# make deploy [EXAMPLE=complete|minimal]: apply one example of terraform/ with
# the functions `make lambdas` built, then build and push the batch-job image
# and print what to enter on GitHub. See terraform/README.md.
#
# Environment:
#   AUTO_APPROVE=1        terraform apply -auto-approve
#   BATCH_IMAGE_TAG=...   the batch-job image tag (default: git revision)
#   SKIP_IMAGE=1          do not build/push the batch-job image
#   CARGO_TARGET_DIR      where `make lambdas` put target/lambda (as cargo does)
#   LAMBDA_DIR            the zips' directory, when build-lambdas.sh was given one
set -euo pipefail

example="${1:-complete}"
here="$(cd "$(dirname "$0")/.." && pwd)"   # terraform/
repo="$(cd "$here/.." && pwd)"
dir="$here/examples/$example"

die() { echo "deploy: $*" >&2; exit 1; }

[ -d "$dir" ] || die "no example '$example' (have: $(ls "$here/examples" | tr '\n' ' '))"

# 1. Tools and credentials, before anything changes.
command -v terraform >/dev/null 2>&1 ||
  die "terraform is not installed: install Terraform >= 1.11 (write-only arguments keep secrets out of the state)"
tf_version="$(terraform version -json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["terraform_version"])' || echo 0)"
python3 - "$tf_version" <<'PY' || die "terraform $tf_version is too old: Octoscope needs >= 1.11"
import sys
v = tuple(int(x) for x in sys.argv[1].split("-")[0].split(".")[:2])
sys.exit(0 if v >= (1, 11) else 1)
PY
command -v aws >/dev/null 2>&1 || die "the AWS CLI is not installed (needed for credentials checks, the image push and the webhook secret)"
identity="$(aws sts get-caller-identity --output text --query Arn 2>/dev/null)" ||
  die "no usable AWS credentials: set AWS_PROFILE (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and AWS_REGION, then retry"
echo "deploy: as $identity"

# 2. The Lambda artefacts from `make lambdas`.
target="${CARGO_TARGET_DIR:-$(cd "$repo" && cargo metadata --format-version 1 --no-deps 2>/dev/null |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null || echo "$repo/target")}"
zips="${LAMBDA_DIR:-$target/lambda}"
for f in webhook api integrity-check dispatcher; do
  [ -f "$zips/$f/bootstrap.zip" ] || die "$zips/$f/bootstrap.zip is missing: run 'make lambdas' first"
done
export TF_VAR_lambda_zip_dir="$zips"

# 3. The dashboard (uploaded by Terraform when built).
if [ ! -f "$repo/frontend/dist/index.html" ]; then
  echo "deploy: frontend/dist is not built: the dashboard bucket stays empty (run 'make dashboard' and deploy again)" >&2
fi

# 4. The batch-job image tag: immutable tags, so one per revision.
if [ -z "${BATCH_IMAGE_TAG:-}" ]; then
  BATCH_IMAGE_TAG="git-$(git -C "$repo" rev-parse --short=12 HEAD)"
  if [ -n "$(git -C "$repo" status --porcelain -- batch-job shared Cargo.lock 2>/dev/null)" ]; then
    BATCH_IMAGE_TAG="$BATCH_IMAGE_TAG-dirty-$(date -u +%Y%m%d%H%M%S)"
  fi
fi
export TF_VAR_batch_image_tag="$BATCH_IMAGE_TAG"

# 5. Apply.
cd "$dir"
terraform init -input=false
approve=()
[ "${AUTO_APPROVE:-0}" = 1 ] && approve=(-auto-approve)
terraform apply -input=false "${approve[@]}"

# 6. The batch-job image (the dispatcher's RunTask pulls it).
repo_url="$(terraform output -json batch | python3 -c 'import json,sys; print(json.load(sys.stdin)["repository_url"])')"
if [ "${SKIP_IMAGE:-0}" = 1 ]; then
  echo "deploy: SKIP_IMAGE=1: push $repo_url:$BATCH_IMAGE_TAG yourself before the first resync"
elif ! command -v docker >/dev/null 2>&1; then
  echo "deploy: docker is not installed: resync tasks cannot start until the image is pushed:" >&2
  echo "  docker build --platform linux/arm64 -f batch-job/Dockerfile -t $repo_url:$BATCH_IMAGE_TAG ." >&2
  echo "  aws ecr get-login-password | docker login --username AWS --password-stdin ${repo_url%%/*}" >&2
  echo "  docker push $repo_url:$BATCH_IMAGE_TAG" >&2
elif aws ecr describe-images --repository-name "${repo_url#*/}" --image-ids imageTag="$BATCH_IMAGE_TAG" >/dev/null 2>&1; then
  echo "deploy: $repo_url:$BATCH_IMAGE_TAG is already pushed"
else
  aws ecr get-login-password | docker login --username AWS --password-stdin "${repo_url%%/*}"
  docker build --platform linux/arm64 -f "$repo/batch-job/Dockerfile" -t "$repo_url:$BATCH_IMAGE_TAG" "$repo"
  docker push "$repo_url:$BATCH_IMAGE_TAG"
fi

# 7. What to do next.
echo
terraform output
secret_param="$(terraform output -raw webhook_secret_parameter_name 2>/dev/null || true)"
cat <<EOF

Register the webhook on GitHub (organisation or repository: Settings -> Webhooks -> Add webhook):
  Payload URL   $(terraform output -raw webhook_url)
  Content type  application/json
  Secret        aws ssm get-parameter --with-decryption --name '$secret_param' --query Parameter.Value --output text
  Events        Send me everything
See terraform/README.md for the API token, rotation and upgrades.
EOF
