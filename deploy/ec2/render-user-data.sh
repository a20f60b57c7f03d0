#!/usr/bin/env bash
# Print the EC2 user-data script: it installs deploy/ec2/classifier-deploy.sh on the instance
# as /usr/local/bin/classifier-deploy and runs it once (installs Docker, pulls IMAGE, starts it).
# launch.sh calls this; run it alone to read what the instance will run.
#
# Env: IMAGE (required), MODEL_S3 (optional s3://... .onnx), PORT (default 80), AWS_REGION (required)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

require IMAGE "the image URI printed by push-ecr.sh" AWS_REGION "the AWS region, e.g. eu-west-1"
if [[ -n ${MODEL_S3:-} && $MODEL_S3 != s3://* ]]; then
    die "MODEL_S3 must be an s3:// URI, got '$MODEL_S3'"
fi

cat <<HEADER
#!/bin/bash
# EC2 user-data rendered by deploy/ec2/render-user-data.sh
set -euo pipefail
exec > >(tee -a /var/log/classifier-deploy.log) 2>&1
cat >/usr/local/bin/classifier-deploy <<'CLASSIFIER_DEPLOY'
HEADER
cat "$here/classifier-deploy.sh"
cat <<FOOTER
CLASSIFIER_DEPLOY
chmod 0755 /usr/local/bin/classifier-deploy
IMAGE=$(printf %q "$IMAGE") MODEL_S3=$(printf %q "${MODEL_S3:-}") PORT=$(printf %q "${PORT:-80}") \\
    AWS_REGION=$(printf %q "$AWS_REGION") /usr/local/bin/classifier-deploy
FOOTER
