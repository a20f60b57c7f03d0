#!/usr/bin/env bash
# Build the serve image for amd64 and arm64 and push it to Amazon ECR.
#
#   AWS_REGION=eu-west-1 TAG=animals10-v1 MODEL=artifacts/animals10/model.onnx deploy/ec2/push-ecr.sh
#
# Env:
#   AWS_REGION   region of the ECR repository (required)
#   TAG          image tag, one per model version (required; the repository's tags are immutable)
#   REPOSITORY   ECR repository name (default: image-classifier; created if missing)
#   MODEL        optional: an .onnx file in the build context to bake in (else mount one at run time)
#   MODEL_PATH   optional with MODEL: its path in the image, e.g. /models/model.int8.onnx
#   PLATFORMS    default linux/amd64,linux/arm64 (c7i/c6i are amd64, Graviton c7g is arm64)
# Prints the image URI on the last line.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

require AWS_REGION "the AWS region, e.g. eu-west-1" TAG "the image tag, e.g. animals10-v1"
repository=${REPOSITORY:-image-classifier}
platforms=${PLATFORMS:-linux/amd64,linux/arm64}
build_args=()
if [[ -n ${MODEL:-} ]]; then
    [[ -f $here/../../$MODEL ]] || die "MODEL=$MODEL is not a file under the repository root"
    build_args+=(--build-arg "MODEL=$MODEL")
    [[ -z ${MODEL_PATH:-} ]] || build_args+=(--build-arg "MODEL_PATH=$MODEL_PATH")
fi
need aws docker

account=$(aws sts get-caller-identity --query Account --output text)
registry="$account.dkr.ecr.$AWS_REGION.amazonaws.com"
image="$registry/$repository:$TAG"

if ! aws ecr describe-repositories --region "$AWS_REGION" --repository-names "$repository" >/dev/null 2>&1; then
    aws ecr create-repository --region "$AWS_REGION" --repository-name "$repository" \
        --image-tag-mutability IMMUTABLE --image-scanning-configuration scanOnPush=true >/dev/null
fi
aws ecr get-login-password --region "$AWS_REGION" | docker login --username AWS --password-stdin "$registry"

cd "$here/../.."
docker buildx build --platform "$platforms" -f Dockerfile.serve \
    ${build_args[@]+"${build_args[@]}"} -t "$image" --push .
echo "$image"
